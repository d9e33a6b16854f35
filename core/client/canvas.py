"""Which part of an image a plug-in reads for a request: the editor-independent half of reading.

Standard library only; the GIMP and Krita plug-ins carry this module. Each plug-in describes its
image in rectangles (image coordinates: the image's top-left pixel is 0, 0) and `plan_canvas`
decides what the request's canvas is; the plug-in then only reads those pixels and that mask in
its editor's own way, and puts results at the canvas's corner.

- Without a selection, inpaint and fill have nothing to repaint: refused.
- Without a selection, txt2img generates a picture the size of the image: nothing is read.
- Without a selection, img2img transforms the whole source.
- With a selection, every mode reads the rectangle around it that the engine's context needs
  (`read_bounds`), and the selection there as the mask; a selection that misses the source is
  refused.

Refusals raise `CanvasRefused`, whose message says what to select or pick instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bounds import Bounds, Extent, read_bounds
from .protocol import InlayerError, Mask, Mode

NO_SELECTION = "The selection is empty: select the area to repaint first."
NO_LAYER = "No layer is active: select the layer to work on."
EMPTY_LAYER = "The layer is empty inside the image: paint on it, or pick another layer."
SELECTION_MISSES_LAYER = (
    "The selection does not touch the layer: select inside the layer, or pick the layer "
    "under the selection."
)


class CanvasRefused(InlayerError):
    """The layer and selection give this request nothing to work on; the message says what to
    select or pick instead."""


@dataclass(frozen=True)
class CanvasPlan:
    """What a plug-in reads for one request.

    `bounds` is the request's canvas in image coordinates: results are placed relative to its
    corner. Without `read_pixels` (txt2img without a selection) nothing is read and the request
    asks for a picture of the canvas's size.
    """

    bounds: Bounds
    read_pixels: bool
    read_mask: bool  # read the selection inside `bounds` as the request's mask

    @property
    def size(self) -> Extent:
        return self.bounds.extent


def plan_canvas(
    mode: Mode,
    *,
    image: Extent,
    source: Bounds | None,
    selection: Bounds | None,
    selection_reach: Bounds | None = None,
    grow: int,
    feather: int,
    strength: float,
) -> CanvasPlan:
    """Decide what to read for a `mode` request; raise `CanvasRefused` when nothing fits.

    All rectangles are in image coordinates:
    - `image`: the image's size.
    - `source`: what an edit without a selection transforms (a GIMP layer's rectangle, the
      painted part of a Krita layer inside the image, or the whole image when reading what is
      visible); None when there is no layer to read.
    - `selection`: the rectangle around the selection, None when nothing is selected.
    - `selection_reach`: how far reading around a selection may go; by default `source`, for
      editors whose layers end at their rectangle. Krita's layers cover the whole image
      (transparent where unpainted), so it passes the image.
    - `grow`, `feather`, `strength`: the request's, which decide how much context it needs.
    """
    if selection is None or mode == Mode.OUTPAINT:  # an outpaint grows the whole layer
        if mode in (Mode.INPAINT, Mode.FILL, Mode.REMOVE):
            raise CanvasRefused(NO_SELECTION)
        if mode == Mode.TXT2IMG:
            return CanvasPlan(Bounds.of(image), read_pixels=False, read_mask=False)
        whole = _require(source)
        if whole.is_empty:
            raise CanvasRefused(EMPTY_LAYER)
        return CanvasPlan(whole, read_pixels=True, read_mask=False)

    layer = _require(source)  # the pixels around the selection come from it
    reach = selection_reach or layer
    area = read_bounds(selection, reach, grow=grow, feather=feather, strength=strength)
    if area.is_empty:
        raise CanvasRefused(SELECTION_MISSES_LAYER)
    # read_bounds answers relative to the reach's corner; plug-ins place things on the image.
    return CanvasPlan(area.offset(reach.x, reach.y), read_pixels=True, read_mask=True)


def _require(source: Bounds | None) -> Bounds:
    if source is None:
        raise CanvasRefused(NO_LAYER)
    return source


def check_mask(mask: Mask) -> Mask:
    """The mask a plug-in read, or `CanvasRefused` when no selected pixel lies in it: the
    selection's bounding box can touch the layer while every selected pixel lies beside it."""
    if mask.is_empty():
        raise CanvasRefused(SELECTION_MISSES_LAYER)
    return mask
