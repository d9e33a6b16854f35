"""Outpaint: grow the canvas on chosen sides or to an aspect ratio, and paint the new border.

An outpaint runs as an inpaint of the grown canvas (`border_inpaint`): the original pixels
placed where they were, the new border masked, pre-filled by the weight-free fill (Telea unless
the request picks another) and repainted by the model with the original as its context. The mask
is neither grown nor feathered, so the result's alpha is 0 over every original pixel: stacked
over the source, the original shows bit-identical. The result's canvas is the grown one, and its
`origin_x`, `origin_y` say where the request's canvas sits on it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .client.bounds import Bounds, Extent
from .client.protocol import (
    MAX_PIXELS,
    MAX_SIDE,
    EditRequest,
    FillMode,
    InvalidRequest,
    Mask,
    Mode,
    RGBAImage,
    parse_aspect,
)


def grown_bounds(canvas: Extent, extend: tuple[int, ...], aspect: str) -> tuple[Extent, Bounds]:
    """The grown canvas and where the original sits on it: by `extend` (left, top, right,
    bottom px) or, with `aspect`, by growing the shorter side evenly on both ends."""
    if aspect:
        ratio_w, ratio_h = parse_aspect(aspect)
        width = max(canvas.width, round(canvas.height * ratio_w / ratio_h))
        height = max(canvas.height, round(canvas.width * ratio_h / ratio_w))
        left, top = (width - canvas.width) // 2, (height - canvas.height) // 2
        extend = (left, top, width - canvas.width - left, height - canvas.height - top)
        if not any(extend):
            raise InvalidRequest(
                "aspect",
                f"the canvas ({canvas.width}x{canvas.height}) already has the aspect ratio "
                f"{aspect}; choose another ratio or extend by pixels",
            )
    left, top, right, bottom = extend
    grown = Extent(canvas.width + left + right, canvas.height + top + bottom)
    return grown, Bounds(left, top, canvas.width, canvas.height)


def border_inpaint(request: EditRequest) -> tuple[EditRequest, Bounds]:
    """The inpaint of the new border that an outpaint request runs as, and where the original
    canvas sits on the grown one. Raises `InvalidRequest` when the canvas would not grow, or
    grow beyond the size limit."""
    assert request.image is not None  # validate() checked
    canvas = Extent(request.image.width, request.image.height)
    grown, original = grown_bounds(canvas, request.extend, request.aspect)
    if max(grown.width, grown.height) > MAX_SIDE or grown.pixel_count > MAX_PIXELS:
        raise InvalidRequest(
            "aspect" if request.aspect else "extend",
            f"would grow the canvas to {grown.width}x{grown.height}, more than the limit "
            f"({MAX_SIDE} px a side, {MAX_PIXELS // 1_000_000} megapixels); extend by less",
        )
    pixels = grown_canvas(request.image, grown, original)
    mask = np.full((grown.height, grown.width), 255, dtype=np.uint8)
    mask[original.slices] = 0
    fill = FillMode.TELEA if request.fill == FillMode.AUTO else request.fill
    inpaint = dataclasses.replace(
        request,
        mode=Mode.INPAINT,
        image=RGBAImage(grown.width, grown.height, pixels.tobytes()),
        mask=Mask(grown.width, grown.height, mask.tobytes()),
        grow=0,
        feather=0,
        fill=fill,
        strength=1.0,
        extend=(0, 0, 0, 0),
        aspect="",
    )
    return inpaint, original


def grown_canvas(image: RGBAImage, grown: Extent, original: Bounds) -> np.ndarray:
    """HxWx4 `image` on a transparent canvas of size `grown`, at `original`: what an editor
    shows under an outpaint's result layer."""
    pixels = np.zeros((grown.height, grown.width, 4), dtype=np.uint8)
    pixels[original.slices] = np.frombuffer(image.data, dtype=np.uint8).reshape(
        image.height, image.width, 4
    )
    return pixels
