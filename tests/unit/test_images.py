"""Image files coming in (the decompression-bomb guard) and results going out as the whole
canvas (core/images.py)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from inlayer.core.client.protocol import (
    MAX_PIXELS,
    MAX_SIDE,
    EditRequest,
    EditResult,
    GeneratedImage,
    InvalidRequest,
    Mask,
    Mode,
    RGBAImage,
    TooLarge,
)
from inlayer.core.engine import image_array
from inlayer.core.geometry import composite
from inlayer.core.images import full_size_images, open_image


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` and holds almost no data: what a bomb looks like
    to a reader that trusts the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))


def png_file(pixels: np.ndarray) -> io.BytesIO:
    file = io.BytesIO()
    Image.fromarray(pixels).save(file, format="PNG")
    file.seek(0)
    return file


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (9000, 9000, "is 9000x9000, larger than"),  # over MAX_PIXELS, under Pillow's own limit
        (MAX_SIDE + 1, 4, f"is {MAX_SIDE + 1}x4, larger than"),
        (20000, 20000, "too large to decode safely"),  # Pillow's own guard
    ],
)
def test_a_declared_size_over_the_limits_is_refused_before_decoding(width, height, expected):
    assert width * height > MAX_PIXELS or max(width, height) > MAX_SIDE
    with pytest.raises(TooLarge, match=expected) as raised:
        open_image(io.BytesIO(png_header(width, height)), "init_images.0")
    assert raised.value.field == "init_images.0"


def test_the_pixel_limit_is_the_callers():
    pixels = np.zeros((8, 16, 3), np.uint8)
    assert open_image(png_file(pixels), "image", max_pixels=128).size == (16, 8)
    with pytest.raises(TooLarge, match="16x8, larger than 127 pixels"):
        open_image(png_file(pixels), "image", max_pixels=127)


def test_unreadable_files_name_the_field():
    with pytest.raises(InvalidRequest, match="not an image Inlayer can read") as raised:
        open_image(io.BytesIO(b"this is not a png"), "mask")
    assert raised.value.field == "mask"
    truncated = png_file(np.full((64, 64, 3), 7, np.uint8)).getvalue()[:-40]
    with pytest.raises(InvalidRequest, match="could not be decoded"):
        open_image(io.BytesIO(truncated), "mask")


def pattern(height: int, width: int, alpha: int) -> np.ndarray:
    pixels = np.random.default_rng(height * width).integers(0, 256, (height, width, 4), np.uint8)
    pixels[..., 3] = alpha
    return pixels


def rgba(pixels: np.ndarray) -> RGBAImage:
    return RGBAImage(pixels.shape[1], pixels.shape[0], pixels.tobytes())


def test_a_masked_result_is_composited_over_the_request_image_at_its_place():
    canvas = pattern(12, 16, 255)
    mask = np.zeros((12, 16), np.uint8)
    mask[3:7, 5:11] = 255
    layer = pattern(4, 6, 255)
    layer[..., 3] = 128  # a soft blend mask
    request = EditRequest(Mode.INPAINT, image=rgba(canvas), mask=Mask(16, 12, mask.tobytes()))
    result = EditResult([GeneratedImage(rgba(layer), 5, 3, seed=1)], {}, {}, 16, 12)
    (full,) = full_size_images(request, result)
    expected = canvas.copy()
    expected[3:7, 5:11] = composite(canvas[3:7, 5:11], layer, layer[..., 3])
    assert np.array_equal(full, expected)
    assert not np.array_equal(full[3:7, 5:11], canvas[3:7, 5:11])
    assert np.array_equal(image_array(request.image), canvas)  # the request is left as it was


def test_an_unmasked_result_is_the_whole_canvas_with_its_own_alpha():
    source = pattern(12, 16, 128)  # half transparent: the result keeps the source's alpha
    generated = pattern(12, 16, 128)
    request = EditRequest(Mode.IMG2IMG, image=rgba(source), strength=0.5)
    result = EditResult([GeneratedImage(rgba(generated), 0, 0, seed=1)], {}, {}, 16, 12)
    (full,) = full_size_images(request, result)
    assert np.array_equal(full, generated)
