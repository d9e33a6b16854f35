"""Whole pictures at the edges of Inlayer: image files coming in (the command line's files,
the AUTOMATIC1111 routes' base64 images) and results going out as the full canvas.

- `open_image` decodes an image file only after its header has shown a size Inlayer accepts:
  a small file can declare an enormous image (a decompression bomb).
- `full_size_images` stacks each result over the request's image, as an editor shows it.
- `encode_image` / `write_image_file` write results as image files that say they were made
  with AI (provenance.py), signed with Content Credentials when asked.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .client.bounds import Bounds, Extent
from .client.protocol import (
    MAX_PIXELS,
    MAX_SIDE,
    EditRequest,
    EditResult,
    InvalidRequest,
    Mode,
    TooLarge,
)
from .content_credentials import sign_bytes
from .engine import image_array
from .geometry import composite
from .outpaint import grown_canvas
from .provenance import pillow_save_options


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
    composited over the request's image. Without one, it covers the canvas already. An
    outpaint's is composited over the request's image on the grown canvas.
    """
    pictures = []
    for generated in result.images:
        pixels = image_array(generated.image)
        if request.image is not None and request.mode == Mode.OUTPAINT:
            grown = Extent(result.canvas_width, result.canvas_height)
            original = Bounds(
                result.origin_x, result.origin_y, request.image.width, request.image.height
            )
            canvas = grown_canvas(request.image, grown, original)
        elif request.image is None or request.mask is None:
            pictures.append(pixels)
            continue
        else:
            canvas = np.array(image_array(request.image))
        bounds = Bounds(generated.x, generated.y, generated.image.width, generated.image.height)
        canvas[bounds.slices] = composite(canvas[bounds.slices], pixels, pixels[..., 3])
        pictures.append(canvas)
    return pictures


def encode_image(
    pixels: np.ndarray,
    image_format: str,
    parameters: dict[str, Any],
    *,
    content_credentials: bool = False,
) -> bytes:
    """An HxWx4 result as a file of `image_format` (PNG, JPEG, WebP, …) that says it was made
    with AI (provenance.py), with signed Content Credentials when asked.

    Alpha is dropped where the format has none (JPEG) or where the picture is opaque anyway."""
    mode = "RGBA" if (pixels[..., 3] != 255).any() else "RGB"
    image = Image.fromarray(pixels if mode == "RGBA" else np.ascontiguousarray(pixels[..., :3]))
    options = pillow_save_options(image_format, parameters, image.size)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=image_format, **options)
    except OSError:  # a format without alpha
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=image_format, **options)
    data = buffer.getvalue()
    if content_credentials:
        mime_type = Image.MIME.get(image_format.upper(), "")
        data = sign_bytes(data, mime_type, parameters, f"Inlayer {parameters.get('mode', '')}")
    return data


def write_image_file(
    pixels: np.ndarray, path: Path, parameters: dict[str, Any], *, content_credentials: bool
) -> None:
    """`encode_image` into `path`, its format chosen by the extension."""
    image_format = Image.registered_extensions()[path.suffix.lower()]
    data = encode_image(pixels, image_format, parameters, content_credentials=content_credentials)
    path.write_bytes(data)
