"""What guides a GIMP edit besides its prompt: a control layer (any layer of the image, read over
the same rectangle as the canvas, so its lines stay registered) with its type and weight for a
ControlNet, and a style layer with its strength for an IP-Adapter.

The layers themselves are GIMP layer arguments (`LAYER_ARGUMENTS`); their settings are plain
arguments (`guide_arguments`), turned into request fields by `guide_fields`. Standard library
only (with `inlayer_client` beside this file), so the tests run it outside GIMP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inlayer_arguments import Choice, ChoiceArgument, FloatArgument, TextArgument, field_label
from inlayer_client.protocol import (
    AddOnInfo,
    ControlChoice,
    InlayerError,
    Mode,
    RGBAImage,
    StyleChoice,
    controlnet_for,
)


class GuideRefused(InlayerError):
    """A guide layer cannot be used; the message names it and says what to do."""


@dataclass(frozen=True)
class LayerArgument:
    name: str
    label: str
    blurb: str


CONTROL_LAYER = LayerArgument(
    "control-layer",
    "_Control layer",
    "A layer whose drawing guides the picture through a ControlNet (none: no control)",
)
STYLE_LAYER = LayerArgument(
    "style-layer",
    "St_yle layer",
    "A layer whose look the picture takes through an IP-Adapter (none: no style)",
)
CONTROL_TYPE = ChoiceArgument(
    "control-type",
    "Control t_ype",
    "What the control layer holds: a sketch or scribble, line art, edges or depth to find in "
    "a picture, or a ready control map",
    (
        Choice("scribble", "Sketch / scribble", "scribble"),
        Choice("lineart", "Line art", "lineart"),
        Choice("canny", "Edges of a picture (canny)", "canny"),
        Choice("softedge", "Soft edges of a picture", "softedge"),
        Choice("depth", "Depth of a picture", "depth"),
        Choice("none", "A ready control map", "none"),
    ),
    "scribble",
)
CONTROL_MODEL = TextArgument(
    "control-model",
    "Control_Net",
    "A ControlNet the server lists (empty: the one named after the control type, else the first)",
    strip=True,
)
CONTROL_WEIGHT = FloatArgument(
    "control-weight", "Control _weight", "How strongly the control layer steers", 0.0, 2.0, 1.0
)
STYLE_SCALE = FloatArgument(
    "style-scale", "Style _strength", "How strongly the style layer steers", 0.0, 2.0, 0.6
)
CONTROLLED_MODES = (Mode.INPAINT, Mode.IMG2IMG, Mode.TXT2IMG)


def layer_arguments(mode: Mode) -> tuple[LayerArgument, ...]:
    if mode in CONTROLLED_MODES:
        return (CONTROL_LAYER, STYLE_LAYER)
    return (STYLE_LAYER,) if mode == Mode.EDIT else ()


def guide_arguments(mode: Mode) -> tuple[ChoiceArgument | TextArgument | FloatArgument, ...]:
    if mode in CONTROLLED_MODES:
        return (CONTROL_TYPE, CONTROL_MODEL, CONTROL_WEIGHT, STYLE_SCALE)
    return (STYLE_SCALE,) if mode == Mode.EDIT else ()


def guide_fields(
    values: Mapping[str, object],
    control_image: RGBAImage | None,
    style_image: RGBAImage | None,
    add_ons: Sequence[AddOnInfo] = (),
) -> dict[str, object]:
    """The request's `controls` and `style` from the guide arguments' values and the pixels
    read from the guide layers (None: that layer is not set)."""
    fields: dict[str, object] = {}
    if control_image is not None:
        control_type = CONTROL_TYPE.value_of(values.get(CONTROL_TYPE.name))
        model = CONTROL_MODEL.value_of(values.get(CONTROL_MODEL.name))
        control = ControlChoice(
            model or controlnet_for(add_ons, control_type),
            control_image,
            preprocessor=control_type,
            weight=CONTROL_WEIGHT.value_of(values.get(CONTROL_WEIGHT.name)),
        )
        fields["controls"] = (control,)
    if style_image is not None:
        fields["style"] = StyleChoice(
            style_image, STYLE_SCALE.value_of(values.get(STYLE_SCALE.name))
        )
    return fields


def check_guide_pixels(label: str, layer_name: str, image: RGBAImage) -> None:
    """Refuse a guide layer with nothing on it where the canvas is."""
    if image.is_transparent():
        raise GuideRefused(
            f"The {field_label(label).lower()} '{layer_name}' is empty where Inlayer works: "
            "draw on it, or pick another layer."
        )
