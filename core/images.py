"""Whole pictures at the edges of Inlayer: image files coming in (the command line's files,
the AUTOMATIC1111 routes' base64 images) and results going out as the full canvas.

- `open_image` decodes an image file only after its header has shown a size Inlayer accepts:
  a small file can declare an enormous image (a decompression bomb).
- `full_size_images` stacks each result over the request's image, as an editor shows it.
"""

from __future__ import annotations

import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .client.bounds import Bounds
from .client.protocol import (
    MAX_PIXELS,
    MAX_SIDE,
    EditRequest,
    EditResult,
    InvalidRequest,
    TooLarge,
)
from .engine import image_array
from .geometry import composite


def open_image(file: BinaryIO, field: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The decoded image in `file`, refused before decoding when its header declares more than
    `max_pixels` pixels or a side longer than MAX_SIDE.

    Raises `TooLarge` for sizes over the limits, `InvalidRequest` for anything that is not an
    image Pillow can decode; both name `field`, what the caller calls this image.
    """
    with warnings.catch_warnings():
        # Pillow only warns between its own two limits; here that is a refusal as well.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(file)  # reads the header only
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise TooLarge(field, "is too large to decode safely") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise InvalidRequest(
                field, "is not an image Inlayer can read (PNG, JPEG, WebP, …)"
            ) from None
        if image.width * image.height > max_pixels or max(image.size) > MAX_SIDE:
            raise TooLarge(
                field,
                f"is {image.width}x{image.height}, larger than {max_pixels} pixels or "
                f"{MAX_SIDE} px a side; use a smaller image",
            )
        try:
            image.load()
        except (
            OSError,
            SyntaxError,
            ValueError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
        ) as error:
            raise InvalidRequest(field, f"could not be decoded ({error})") from None
    return image


def full_size_images(request: EditRequest, result: EditResult) -> list[np.ndarray]:
    """Each variation as the whole canvas (HxWx4 uint8), as an editor shows its result layer
    over the source layer.

    With a mask, a result covers the mask bounds and its alpha is the blend mask: it is
    composited over the request's image. Without one, it covers the canvas already.
    """
    pictures = []
    for generated in result.images:
        pixels = image_array(generated.image)
        if request.image is None or request.mask is None:
            pictures.append(pixels)
            continue
        canvas = np.array(image_array(request.image))
        bounds = Bounds(generated.x, generated.y, generated.image.width, generated.image.height)
        canvas[bounds.slices] = composite(canvas[bounds.slices], pixels, pixels[..., 3])
        pictures.append(canvas)
    return pictures
