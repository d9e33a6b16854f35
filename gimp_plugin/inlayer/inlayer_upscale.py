"""Filters ▸ Inlayer ▸ Upscale…: the active layer, or the rectangle around the selection, scaled
×2 or ×4 by an upscaler the server has (Lanczos without a model), then, with a refine strength
above 0, refined in tiles by the diffusion model with the prompt.

The canvas changes size, so the result is a new image (in a new display when run from the
menu) holding it as its one layer; the source image is not touched (`inlayer.open_upscaled`).
This module holds the procedure's arguments. Standard library only, with the `inlayer_client`
package beside this file, so the tests read it outside GIMP.
"""

from __future__ import annotations

from dataclasses import dataclass

from inlayer_arguments import (
    PROMPT,
    Choice,
    ChoiceArgument,
    FloatArgument,
    ListedArgument,
)
from inlayer_client.protocol import REFINE_OFF, AddOnKind

UPSCALE_PROCEDURE = "inlayer-upscale"
UPSCALE_LABEL = "_Upscale..."
UPSCALE_BLURB = (
    "Scale the active layer (the rectangle around the selection when there is one) ×2 or ×4 "
    "into a new image, optionally refined with the prompt"
)
LANCZOS = "Lanczos"  # the upscaler without a model, by the name the server takes


@dataclass(frozen=True)
class ScaleArgument(ChoiceArgument):
    """The factor, chosen by name (x2, x4); the request takes the number."""

    def value_of(self, raw: object) -> int:  # type: ignore[override]
        return int(super().value_of(raw))


@dataclass(frozen=True)
class RefineArgument(FloatArgument):
    """The strength of the tiled refine after the upscale; 0 turns it off."""

    @property
    def field(self) -> str:
        return "refine"

    def value_of(self, raw: object) -> str:  # type: ignore[override]
        strength = super().value_of(raw)
        return f"{strength:g}" if strength > 0 else REFINE_OFF


SCALE = ScaleArgument(
    "scale",
    "_Scale",
    "How many times larger each side becomes",
    (Choice("x2", "×2", "2"), Choice("x4", "×4", "4")),
    "x2",
)
UPSCALER = ListedArgument(
    "upscaler",
    "_Upscaler",
    "An upscaler model the server lists, or Lanczos (no model); empty: the server's first "
    "installed model, else Lanczos",
    strip=True,
    kinds=(AddOnKind.UPSCALER,),
    fixed=(("", "The server's first model, else Lanczos"), (LANCZOS, "Lanczos (no model)")),
)
REFINE = RefineArgument(
    "refine-strength",
    "_Refine strength (0: off)",
    "After the upscale, repaint details with the diffusion model and the prompt at this "
    "strength, tile by tile (0: no refine, no diffusion model needed; 0.2-0.4 keeps the picture)",
    0.0,
    1.0,
    0.0,
)
UPSCALE_ARGUMENTS = (SCALE, UPSCALER, PROMPT, REFINE)
