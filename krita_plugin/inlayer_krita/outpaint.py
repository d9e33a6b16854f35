"""Outpaint in Krita: grow the document's canvas to hold an outpaint's result.

The server answers an outpaint with the grown canvas's size and where the rectangle it read sits
on it (`EditResult.origin_x`, `origin_y`). The document grows to cover that canvas as well as its
own; its layers keep their pixels and move with the canvas where it grew on the left or the top.
"""

from __future__ import annotations

from krita import Document

from .document import canvas_bounds
from .inlayer_client.bounds import Bounds
from .inlayer_client.protocol import EditResult


def grow_canvas(document: Document, read: tuple[int, int], result: EditResult) -> tuple[int, int]:
    """Resize `document`'s canvas to cover the grown canvas of `result`, for a request whose
    canvas started at `read` (image coordinates); return how far the layers moved (x, y)."""
    grown = Bounds(
        read[0] - result.origin_x,
        read[1] - result.origin_y,
        result.canvas_width,
        result.canvas_height,
    )
    covered = grown.union(canvas_bounds(document))
    # Krita takes the new canvas's corner in the old canvas's coordinates.
    document.resizeImage(covered.x, covered.y, covered.width, covered.height)
    document.waitForDone()
    return -covered.x, -covered.y
