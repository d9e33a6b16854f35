"""The arguments of Inlayer's GIMP procedures, and how the values GIMP hands back become a request.

GIMP fills a procedure's config from the caller (non-interactive), from the dialog (interactive)
or from the values it kept in the user's profile after an earlier run (the dialog's first values,
and `WITH_LAST_VALS`). What comes back is not always what the arguments declare:

- a text argument saved empty comes back as None (from the second GIMP session on);
- numbers saved by an older version of the plug-in may lie outside today's ranges;
- a model name saved last week may name a model the server no longer has;
- a choice saved by another version may be one this version does not offer.

Steps at 0 and the preset "device" leave the choice to the server, which applies the preset the
device calls for (docs/fast-edits.md): `fast` on a CPU where its pieces are installed.

Every value a procedure reads goes through `request_fields`, which turns it into a valid request
field or raises `ArgumentRefused` with a message naming the dialog field and the fix. A model the
server does not have is only known once the server answers: `explain_model_refusal` says then
which field to change.

Standard library only (with the `inlayer_client` package installed beside this file): GIMP's
Python has nothing else, and the tests run this module outside GIMP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inlayer_client.protocol import (
    MAX_COUNT,
    MAX_LORA_SCALE,
    MAX_PROMPT_CHARS,
    MAX_STEPS,
    AddOnKind,
    InlayerError,
    InvalidRequest,
    LoraChoice,
    Mode,
    ModelNotFound,
    default_strength,
)

MAX_SEED = 2**31 - 1  # GIMP's int arguments are 32-bit signed
MAX_GROW = 512  # px, either way; the protocol's limit


class ArgumentRefused(InlayerError):
    """A procedure argument holds a value no request can take; the message names the field."""


def field_label(label: str) -> str:
    """A dialog label as the user reads it: without its mnemonic underscore."""
    return label.replace("_", "")


@dataclass(frozen=True)
class TextArgument:
    name: str  # GIMP's name, which is also the config property's
    label: str  # the dialog's label, with its mnemonic
    blurb: str
    max_chars: int | None = None  # None: any length
    strip: bool = False  # a name, not prose: surrounding spaces are typing slips

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")

    def value_of(self, raw: object) -> str:
        # None is how GIMP hands back a text saved empty.
        text = raw if isinstance(raw, str) else ""
        if self.strip:
            text = text.strip()
        if self.max_chars is not None and len(text) > self.max_chars:
            raise ArgumentRefused(
                f"{field_label(self.label)} is {len(text)} characters long; Inlayer takes at most "
                f"{self.max_chars}: shorten it."
            )
        return text


@dataclass(frozen=True)
class LoraArgument(TextArgument):
    """A LoRA as a name, or NAME:SCALE as the command line writes it (empty: none). One text,
    so that scripts and last-used values keep the name; the request takes a list of them."""

    @property
    def field(self) -> str:
        return "loras"

    def value_of(self, raw: object) -> tuple[LoraChoice, ...]:  # type: ignore[override]
        text = super().value_of(raw)
        if not text:
            return ()
        lora = LoraChoice.parse(text)
        if not -MAX_LORA_SCALE <= lora.scale <= MAX_LORA_SCALE:
            raise ArgumentRefused(
                f"{field_label(self.label)}: the scale {lora.scale:g} of {lora.name} is out of "
                f"range; write NAME:SCALE with a scale from -{MAX_LORA_SCALE:g} to "
                f"{MAX_LORA_SCALE:g}."
            )
        return (lora,)


@dataclass(frozen=True)
class ListedArgument(TextArgument):
    """The name of a file the server lists: among its add-ons (/v1/add-ons) of `kinds`, or
    among the image models its request field `image_model_field` may name (/v1/image-models).
    The dialog offers `fixed` (the name a request takes, the text shown) and then those."""

    kinds: tuple[AddOnKind, ...] = ()
    image_model_field: str = ""
    fixed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IntArgument:
    name: str
    label: str
    blurb: str
    minimum: int
    maximum: int
    default: int
    unset: int | None = None  # the value that leaves the field unset (None in the request)

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")

    def value_of(self, raw: object) -> int | None:
        number = _finite_number(raw)
        # Saved by another version, whose range may have been wider: the nearest valid value.
        value = (
            self.default if number is None else min(max(round(number), self.minimum), self.maximum)
        )
        return None if value == self.unset else value


@dataclass(frozen=True)
class FloatArgument:
    name: str
    label: str
    blurb: str
    minimum: float
    maximum: float
    default: float

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")

    def value_of(self, raw: object) -> float:
        number = _finite_number(raw)
        if number is None:
            return self.default
        return min(max(float(number), self.minimum), self.maximum)


@dataclass(frozen=True)
class Choice:
    nick: str  # what GIMP stores and a script passes
    label: str  # what the dialog's combo shows
    value: str  # the request field's value


@dataclass(frozen=True)
class ChoiceArgument:
    name: str
    label: str
    blurb: str
    choices: tuple[Choice, ...]
    default: str  # a nick

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")

    def value_of(self, raw: object) -> str:
        nick = raw.strip().lower() if isinstance(raw, str) else ""
        values = {choice.nick: choice.value for choice in self.choices}
        return values.get(nick, values[self.default])


Argument = TextArgument | IntArgument | FloatArgument | ChoiceArgument


def _finite_number(raw: object) -> int | float | None:
    """`raw` when it is a finite number (not a bool, which Python counts as one), else None."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return raw if math.isfinite(raw) else None


PROMPT = TextArgument("prompt", "_Prompt", "What to paint", MAX_PROMPT_CHARS)
NEGATIVE_PROMPT = TextArgument(
    "negative-prompt", "_Negative prompt", "What to avoid", MAX_PROMPT_CHARS
)
PRESET_STEPS = 0  # steps at 0: the preset's
STEPS = IntArgument(
    "steps",
    "S_teps (0: the preset's)",
    "Denoising steps (0: the preset's)",
    PRESET_STEPS,
    MAX_STEPS,
    PRESET_STEPS,
    unset=PRESET_STEPS,
)
PRESET = ChoiceArgument(
    "preset",
    "P_reset",
    "Fast: few steps with a speed LoRA, seconds on a CPU. Quality: 20 steps with guidance. "
    "For this device: fast on a CPU where its pieces are installed, else quality",
    (
        Choice("device", "For this device", ""),
        Choice("fast", "Fast", "fast"),
        Choice("quality", "Quality", "quality"),
    ),
    "device",
)
SEED = IntArgument("seed", "S_eed", "Random seed (-1: a new one each time)", -1, MAX_SEED, -1)
COUNT = IntArgument("count", "_Variations", "How many result layers", 1, MAX_COUNT, 1)
MODEL = TextArgument("model", "_Model", "A model the server lists (empty: the default)", strip=True)
LORA = LoraArgument(
    "lora",
    "_LoRA",
    "A LoRA the server lists, as NAME or NAME:SCALE (scale 1 when left out; empty: none)",
    strip=True,
)
VAE = TextArgument(
    "vae",
    "_Autoencoder",
    "Empty: the preset's; full: the model's own; tiny: the installed tiny one; or an "
    "autoencoder the server lists",
    strip=True,
)
GROW = IntArgument(
    "grow", "_Grow selection", "Pixels to grow the selection by", -MAX_GROW, MAX_GROW, 4
)
FEATHER = IntArgument(
    "feather", "_Feather", "Pixels of soft edge around the selection", 0, MAX_GROW, 8
)


ASPECT = TextArgument(
    "aspect",
    "_Aspect ratio",
    "Grow the canvas to W:H (16:9, 4:3, 1:1, 9:16 …); empty: by the pixels below",
    32,
    strip=True,
)
EXTEND = tuple(
    IntArgument(f"extend-{side}", label, f"Pixels to add on the {side}", 0, 16384, 0)
    for side, label in (
        ("left", "_Left"),
        ("top", "T_op"),
        ("right", "_Right"),
        ("bottom", "_Bottom"),
    )
)


def strength_argument(mode: Mode) -> FloatArgument:
    return FloatArgument(
        "strength",
        "_Strength",
        "How much to change: 1 repaints from noise, lower keeps more of the original",
        0.0,
        1.0,
        default_strength(mode),
    )


def arguments_for(mode: Mode) -> tuple[Argument, ...]:
    """The arguments of `mode`'s procedure, in the order its dialog shows them."""
    if mode in (Mode.FILL, Mode.REMOVE):  # no prompt: only where to fill
        return (GROW, FEATHER)
    if mode == Mode.OUTPAINT:  # the whole layer, grown: no selection, no strength
        return (PROMPT, NEGATIVE_PROMPT, ASPECT, *EXTEND, PRESET, STEPS, SEED, COUNT, MODEL)
    if mode == Mode.EDIT:
        # Its own module (it imports the arguments above), so imported only when asked for.
        from inlayer_instruct import INSTRUCT_ARGUMENTS

        return INSTRUCT_ARGUMENTS
    if mode == Mode.SELECT:  # the layer, and the selection to look under: nothing to choose
        return ()
    if mode == Mode.UPSCALE:
        from inlayer_upscale import UPSCALE_ARGUMENTS

        return UPSCALE_ARGUMENTS
    if mode == Mode.RESTORE:
        from inlayer_restore import RESTORE_ARGUMENTS

        return RESTORE_ARGUMENTS
    strength = (strength_argument(mode),) if mode in (Mode.INPAINT, Mode.IMG2IMG) else ()
    return (
        PROMPT, NEGATIVE_PROMPT, *strength, PRESET, STEPS, SEED, COUNT, MODEL, LORA, VAE, GROW,
        FEATHER,
    )  # fmt: skip


def request_fields(mode: Mode, values: Mapping[str, object]) -> dict[str, Any]:
    """The `EditRequest` fields from a config's values (argument name → what GIMP handed back);
    an argument missing from `values` takes its default."""
    fields = {
        argument.field: argument.value_of(values.get(argument.name))
        for argument in arguments_for(mode)
    }
    if mode == Mode.OUTPAINT:  # four arguments, one field
        fields["extend"] = tuple(fields.pop(side.field) for side in EXTEND)
    if mode == Mode.RESTORE:  # a model and its number, one field
        from inlayer_restore import model_fields

        fields = model_fields(fields)
    return fields


def explain_model_refusal(error: InlayerError, model: str) -> InlayerError:
    """`error` in terms of the Model field when it says the server has no such model (it refuses
    a name it does not list; a path or a download can fail later), else `error` as it is."""
    names_the_model = isinstance(error, ModelNotFound) or (
        isinstance(error, InvalidRequest) and error.field == "model"
    )
    if not names_the_model:
        return error
    if not model:  # the mode has no default model: the server's message says what to install
        return error
    label = field_label(MODEL.label)
    return ArgumentRefused(
        f"{label}: the server has no model {model!r}. Enter a name it lists, or leave {label} "
        f"empty for its default. (The server said: {error})"
    )
