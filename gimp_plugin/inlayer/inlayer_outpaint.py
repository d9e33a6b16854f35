"""Outpaint in GIMP: grow the image's canvas to hold an outpaint's result.

The server answers an outpaint with the grown canvas's size and where the layer it read sits on
it (`EditResult.origin_x`, `origin_y`). The image grows to cover that canvas as well as its own;
its layers keep their pixels and sizes and move with the canvas where it grew on the left or the
top. The caller adds the result layer inside the same undo group, so one undo takes both back.
"""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402
from inlayer_client.bounds import Bounds  # noqa: E402
from inlayer_client.protocol import EditResult  # noqa: E402


def grow_image(image: Gimp.Image, read: Bounds, result: EditResult) -> tuple[int, int]:
    """Resize `image`'s canvas to cover the grown canvas of `result`, for a request whose canvas
    was `read` (image coordinates); return how far the existing layers moved (x, y)."""
    grown = Bounds(
        read.x - result.origin_x,
        read.y - result.origin_y,
        result.canvas_width,
        result.canvas_height,
    )
    covered = grown.union(Bounds(0, 0, image.get_width(), image.get_height()))
    shift_x, shift_y = -covered.x, -covered.y
    image.resize(covered.width, covered.height, shift_x, shift_y)
    return shift_x, shift_y
