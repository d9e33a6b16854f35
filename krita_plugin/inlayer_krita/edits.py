"""From a Krita document to an Inlayer request, and from its result back to new layers.

An `Edit` remembers the document and layer a request was read from, so that the result lands
there even when the user has switched documents or layers while it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from krita import Document, Krita, Node

from . import document as pixels
from .history import is_live_preview, session_history
from .inlayer_client.bounds import Bounds
from .inlayer_client.canvas import check_mask, plan_canvas
from .inlayer_client.protocol import (
    EditRequest,
    EditResult,
    GeneratedImage,
    InlayerError,
    Mode,
    default_strength,
)
from .outpaint import grow_canvas

_NAME_PROMPT_CHARS = 48


@dataclass
class Edit:
    """One request and where its results go."""

    document: Document
    source: Node | None  # the layer read; results go right above it (on top when None)
    origin: tuple[int, int]  # where the request's canvas lies in the image
    request: EditRequest

    @property
    def label(self) -> str:
        prompt = self.request.prompt or "(no prompt)"
        return f"{self.request.mode.value}: {prompt[:_NAME_PROMPT_CHARS]}"


def _layer_of(node: Node | None) -> Node | None:
    """The layer a node belongs to: a mask's parent layer, else the node itself."""
    if node is not None and node.type().endswith("mask"):
        return node.parentNode()
    return node


def prepare(
    document: Document,
    mode: Mode,
    prompt: str = "",
    *,
    node: Node | None = None,
    visible: bool = False,
    guides: Callable[[Bounds], dict[str, Any]] | None = None,
    **options: Any,
) -> Edit:
    """Read what `mode` needs from `document` and build the request.

    `node` is the layer to read (default: the active layer); `visible` reads the visible image
    instead. The selection, when there is one, becomes the mask, and only the rectangle the
    engine's context needs is read (`plan_canvas` decides which); `guides(rect)` gives the
    request fields of guide layers read over that rectangle (`guides.guide_fields`). `options`
    are `EditRequest` fields
    (negative_prompt, strength, steps, seed, count, model, grow, feather, fill, ...).
    """
    pixels.check_colour_space(document)
    source = _layer_of(node or document.activeNode())
    if source is not None and is_live_preview(document, source):
        raise InlayerError("That layer is Inlayer's live preview: select the layer to edit.")
    options.setdefault("strength", default_strength(mode))
    parameters = {"mode": mode.value, "prompt": prompt, **options}
    # Validate the options before reading any pixels: a typo fails fast, naming the field.
    defaults = EditRequest.from_parameters(parameters)

    canvas = pixels.canvas_bounds(document)
    if visible:
        readable = canvas
    elif source is not None:
        # What lies outside the image is not part of the picture.
        readable = pixels.layer_bounds(source).intersection(canvas)
    else:
        readable = None
    plan = plan_canvas(
        mode,
        image=canvas.extent,
        source=readable,
        selection=pixels.selection_bounds(document),
        # A Krita layer covers the whole image, transparent where nothing is painted.
        selection_reach=canvas,
        grow=defaults.grow,
        feather=defaults.feather,
        strength=defaults.strength,
    )
    rect = plan.bounds
    if not plan.read_pixels:
        parameters.update(width=rect.width, height=rect.height)
        request = EditRequest.from_parameters(parameters)
    else:
        mask = check_mask(pixels.read_selection(document, rect)) if plan.read_mask else None
        if visible:
            image = pixels.read_visible(document, rect)
        else:
            image = pixels.read_layer(document, source, rect)
        request = EditRequest.from_parameters(parameters, image=image, mask=mask)
    if guides is not None:
        for name, value in guides(rect).items():
            setattr(request, name, value)
    request.validate()
    return Edit(document, source, (rect.x, rect.y), request)


def apply(edit: Edit, result: EditResult, images: list[GeneratedImage] | None = None) -> list[Node]:
    """Add `images` (default: every variation of `result`) as new layers above the edit's source,
    each one undo step, with its metadata recorded; returns the new layers."""
    document = edit.document
    if document not in Krita.instance().documents():
        raise InlayerError("The document this edit was made for has been closed.")
    source = edit.source
    if source is not None and source.parentNode() is None:
        source = None  # the source layer was deleted meanwhile: put the result on top
    origin = edit.origin
    if edit.request.mode == Mode.OUTPAINT:  # the canvas grows first; the layers move with it
        shift = grow_canvas(document, edit.origin, result)
        # The result is placed on the grown canvas, whose corner is the origin's left and above.
        origin = (origin[0] + shift[0] - result.origin_x, origin[1] + shift[1] - result.origin_y)
    layers = []
    for image in result.images if images is None else images:
        position = (origin[0] + image.x, origin[1] + image.y)
        layer = pixels.add_result_layer(
            document,
            source,
            image.image,
            position,
            result.layer_name(image),
            alpha_as_mask=edit.request.mask is not None,
        )
        session_history.record(document, layer, result, image, position)
        layers.append(layer)
    return layers
