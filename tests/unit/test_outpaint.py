"""Outpaint: the grown canvas's geometry, bad input, and the engine painting the new border on a
tiny random-weight model with the original pixels kept bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

from inlayer.core.client.bounds import Bounds, Extent
from inlayer.core.client.protocol import (
    EditRequest,
    InvalidRequest,
    Mask,
    Mode,
    RGBAImage,
)
from inlayer.core.client.wire import decode_status, encode_status
from inlayer.core.engine import Engine, image_array
from inlayer.core.images import full_size_images
from inlayer.core.models import ModelRegistry
from inlayer.core.outpaint import grown_bounds
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING

WIDTH, HEIGHT = 96, 72


def picture() -> np.ndarray:
    pixels = np.random.default_rng(5).integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return pixels


def outpaint_request(**fields) -> EditRequest:
    defaults = {"prompt": "a beach", "steps": 2, "seed": 9, "model": TINY_SD15}
    return EditRequest(
        mode=Mode.OUTPAINT,
        image=RGBAImage(WIDTH, HEIGHT, picture().tobytes()),
        **(defaults | fields),
    )


@pytest.mark.parametrize(
    ("aspect", "grown", "origin"),
    [
        ("16:9", Extent(128, 72), (16, 0)),
        ("9:16", Extent(96, 171), (0, 49)),
        ("1:1", Extent(96, 96), (0, 12)),
        ("3:1", Extent(216, 72), (60, 0)),
    ],
)
def test_an_aspect_ratio_grows_the_shorter_side_evenly(aspect, grown, origin):
    size, original = grown_bounds(Extent(WIDTH, HEIGHT), (0, 0, 0, 0), aspect)
    assert size == grown and (original.x, original.y) == origin
    assert original.extent == Extent(WIDTH, HEIGHT)


def test_extend_grows_the_sides_it_names():
    size, original = grown_bounds(Extent(WIDTH, HEIGHT), (10, 0, 30, 5), "")
    assert size == Extent(WIDTH + 40, HEIGHT + 5) and original == Bounds(10, 0, WIDTH, HEIGHT)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"aspect": "0:1"}, "aspect", "W:H"),
        ({"aspect": "wide"}, "aspect", "16:9"),
        ({}, "extend", "extends by nothing"),
        ({"extend": (0, 0, 0, 0)}, "extend", "extends by nothing"),
        ({"extend": (-4, 0, 0, 0)}, "extend", "LEFT,TOP,RIGHT,BOTTOM"),
        ({"extend": (4, 0)}, "extend", "LEFT,TOP,RIGHT,BOTTOM"),
        ({"aspect": "16:9", "extend": (4, 0, 0, 0)}, "aspect", "not both"),
    ],
)
def test_bad_outpaints_name_the_field_and_the_fix(fields, field, words):
    with pytest.raises(InvalidRequest) as caught:
        outpaint_request(**fields).validate()
    assert caught.value.field == field and words in str(caught.value)


def test_other_modes_do_not_grow_the_canvas():
    request = outpaint_request(aspect="16:9")
    request.mode = Mode.IMG2IMG
    with pytest.raises(InvalidRequest) as caught:
        request.validate()
    assert caught.value.field == "aspect" and "only outpaint" in str(caught.value)


def test_outpaint_takes_no_mask():
    request = outpaint_request(aspect="16:9")
    request.mask = Mask(WIDTH, HEIGHT, b"\xff" * (WIDTH * HEIGHT))
    with pytest.raises(InvalidRequest) as caught:
        request.validate()
    assert caught.value.field == "mask"


@pytest.fixture(scope="module")
def engine(tiny_models_dir) -> Engine:
    return Engine(ModelRegistry([tiny_models_dir]))


def test_a_ratio_the_canvas_has_already_extends_by_nothing(engine):
    with pytest.raises(InvalidRequest) as caught:
        engine.run(outpaint_request(aspect="4:3"))  # 96x72 is 4:3
    assert caught.value.field == "aspect" and "already has" in str(caught.value)


def test_an_outpaint_beyond_the_size_limit_is_refused(engine):
    with pytest.raises(InvalidRequest) as caught:
        engine.run(outpaint_request(aspect="16384:1"))
    assert caught.value.field == "aspect" and "limit" in str(caught.value)


@pytest.mark.parametrize("model", [TINY_SD15, TINY_SD15_INPAINTING])
def test_outpaint_to_16_9_paints_the_border_and_keeps_the_original(engine, model):
    request = outpaint_request(aspect="16:9", model=model, refine="off")
    result = engine.run(request)
    assert (result.canvas_width, result.canvas_height) == (128, 72)
    assert (result.origin_x, result.origin_y) == (16, 0)
    assert result.parameters["mode"] == "outpaint" and result.parameters["aspect"] == "16:9"

    (layer,) = result.images
    assert (layer.x, layer.y, layer.image.width, layer.image.height) == (0, 0, 128, 72)
    alpha = image_array(layer.image)[..., 3]
    original = Bounds(16, 0, WIDTH, HEIGHT)
    assert (alpha[original.slices] == 0).all()  # the original shows through
    border = np.ones(alpha.shape, dtype=bool)
    border[original.slices] = False
    assert (alpha[border] == 255).all()

    (full,) = full_size_images(request, result)
    assert full.shape == (72, 128, 4)
    assert np.array_equal(full[original.slices], picture())
    assert (full[border][:, 3] == 255).all()  # the border is painted, opaque
    assert full[border][:, :3].std() > 0  # and not one flat colour

    # The wire carries where the original sits.
    from inlayer.core.client.protocol import JobState, JobStatus

    status = decode_status(encode_status(JobStatus("job", JobState.DONE, result=result)))
    assert status.result is not None and (status.result.origin_x, status.result.origin_y) == (
        16,
        0,
    )


def test_extend_by_pixels_with_the_refine(engine):
    request = outpaint_request(extend=(0, 40, 24, 0))
    result = engine.run(request)
    assert (result.canvas_width, result.canvas_height) == (WIDTH + 24, HEIGHT + 40)
    assert (result.origin_x, result.origin_y) == (0, 40)
    (full,) = full_size_images(request, result)
    assert np.array_equal(full[40:, :WIDTH], picture())
