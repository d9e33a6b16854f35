"""The engine end to end on tiny random-weight models loaded through the real loading code."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from inlayer.core.client.bounds import Bounds
from inlayer.core.client.protocol import (
    SCHEDULERS,
    Cancelled,
    EditRequest,
    FillMode,
    InvalidRequest,
    Mask,
    Mode,
    ModelNotFound,
    OutOfMemory,
    Progress,
    RGBAImage,
)
from inlayer.core.engine import Engine, image_array
from inlayer.core.geometry import blend_mask
from inlayer.core.images import full_size_images
from inlayer.core.models import ModelRegistry
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING, TINY_SD15_SINGLE, TINY_SDXL

WIDTH, HEIGHT = 128, 96
MASK_BOUNDS = Bounds(40, 30, 40, 30)


def canvas_pixels(alpha: int = 255) -> np.ndarray:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    pixels[..., 3] = alpha
    return pixels


def rectangle_mask(bounds: Bounds = MASK_BOUNDS, value: int = 255) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[bounds.slices] = value
    return mask


def make_request(mode: Mode, *, mask: np.ndarray | None = None, **fields) -> EditRequest:
    pixels = fields.pop("pixels", canvas_pixels())
    if mask is None and mode in (Mode.INPAINT, Mode.FILL):
        mask = rectangle_mask()
    defaults = {"prompt": "a red apple", "steps": 2, "seed": 1234}
    if mode == Mode.IMG2IMG:
        defaults["strength"] = 0.75
    return EditRequest(
        mode=mode,
        image=RGBAImage(WIDTH, HEIGHT, pixels.tobytes()),
        mask=None if mask is None else Mask(WIDTH, HEIGHT, mask.tobytes()),
        **(defaults | fields),
    )


@pytest.fixture(scope="module")
def engine(tiny_models_dir) -> Engine:
    return Engine(ModelRegistry([tiny_models_dir]))


@pytest.mark.parametrize("model", [TINY_SD15, TINY_SD15_INPAINTING, TINY_SD15_SINGLE, TINY_SDXL])
def test_inpaint_covers_the_mask_bounds_and_leaves_the_rest_untouched(engine, model):
    request = make_request(Mode.INPAINT, model=model, grow=2, feather=4)
    result = engine.run(request)

    blend, mask_bounds = blend_mask(rectangle_mask(), grow=2, feather=4)
    (generated,) = result.images
    assert (generated.x, generated.y) == (mask_bounds.x, mask_bounds.y)
    assert (generated.image.width, generated.image.height) == (
        mask_bounds.width,
        mask_bounds.height,
    )
    layer = image_array(generated.image)
    assert np.array_equal(layer[..., 3], blend)  # alpha is the blend mask
    assert result.model == model and result.parameters["model"] == model
    assert (result.canvas_width, result.canvas_height) == (WIDTH, HEIGHT)

    original = image_array(request.image)
    (full,) = full_size_images(request, result)
    outside = np.ones((HEIGHT, WIDTH), dtype=bool)
    outside[mask_bounds.slices] = blend == 0
    assert np.array_equal(full[outside], original[outside])
    # Inside the mask something was painted.
    assert not np.array_equal(full[MASK_BOUNDS.slices], original[MASK_BOUNDS.slices])


def test_img2img_without_mask_covers_the_canvas_and_keeps_its_alpha(engine):
    pixels = canvas_pixels()
    pixels[:10, :, 3] = 0  # a transparent band
    result = engine.run(make_request(Mode.IMG2IMG, pixels=pixels, model=TINY_SD15))
    (generated,) = result.images
    assert (generated.x, generated.y, generated.image.width, generated.image.height) == (
        0,
        0,
        WIDTH,
        HEIGHT,
    )
    assert np.array_equal(image_array(generated.image)[..., 3], pixels[..., 3])


def test_img2img_with_mask_changes_only_the_masked_part(engine):
    request = make_request(Mode.IMG2IMG, mask=rectangle_mask(), model=TINY_SD15, feather=0, grow=0)
    result = engine.run(request)
    (generated,) = result.images
    assert (generated.x, generated.y) == (MASK_BOUNDS.x, MASK_BOUNDS.y)
    (full,) = full_size_images(request, result)
    original = image_array(request.image)
    outside = rectangle_mask() == 0
    assert np.array_equal(full[outside], original[outside])


def test_txt2img_without_image_makes_an_opaque_canvas(engine):
    request = EditRequest(Mode.TXT2IMG, prompt="a cat", width=72, height=40, steps=2, seed=3)
    result = engine.run(request)
    assert list(result.timings) == ["load", "prepare", "diffusion", "finish", "total"]
    steps = [result.timings[step] for step in ("load", "prepare", "diffusion", "finish")]
    assert min(steps) >= 0 and sum(steps) <= result.timings["total"]
    (generated,) = result.images
    assert (generated.image.width, generated.image.height) == (72, 40)
    assert (generated.x, generated.y) == (0, 0)
    assert (image_array(generated.image)[..., 3] == 255).all()


def test_txt2img_into_a_selection(engine):
    request = make_request(Mode.TXT2IMG, mask=rectangle_mask(), model=TINY_SD15, feather=0)
    (generated,) = engine.run(request).images
    assert (generated.x, generated.y) == (MASK_BOUNDS.x - 4, MASK_BOUNDS.y - 4)  # grow 4


def test_soft_mask_becomes_the_alpha(engine):
    mask = rectangle_mask(value=128)
    result = engine.run(make_request(Mode.INPAINT, mask=mask, grow=0, feather=0, model=TINY_SD15))
    (generated,) = result.images
    assert set(np.unique(image_array(generated.image)[..., 3])) == {128}


def test_same_seed_same_bytes_other_seed_other_bytes(engine):
    first = engine.run(make_request(Mode.INPAINT, model=TINY_SD15, seed=42))
    again = engine.run(make_request(Mode.INPAINT, model=TINY_SD15, seed=42))
    other = engine.run(make_request(Mode.INPAINT, model=TINY_SD15, seed=43))
    assert first.images[0].image.data == again.images[0].image.data
    assert first.images[0].image.data != other.images[0].image.data


def test_variations_use_consecutive_seeds_and_reproduce_alone(engine):
    result = engine.run(make_request(Mode.TXT2IMG, model=TINY_SD15, seed=10, count=2))
    assert [image.seed for image in result.images] == [10, 11]
    assert result.images[0].image.data != result.images[1].image.data
    alone = engine.run(make_request(Mode.TXT2IMG, model=TINY_SD15, seed=11))
    assert alone.images[0].image.data == result.images[1].image.data


def test_random_seed_is_reported(engine):
    result = engine.run(make_request(Mode.INPAINT, model=TINY_SD15, seed=-1))
    seed = result.parameters["seed"]
    assert 0 <= seed < 2**32 and result.images[0].seed == seed
    again = engine.run(make_request(Mode.INPAINT, model=TINY_SD15, seed=seed))
    assert again.images[0].image.data == result.images[0].image.data


def test_progress_reaches_the_last_step_with_previews(engine):
    reports: list[Progress] = []
    request = make_request(
        Mode.IMG2IMG, model=TINY_SD15, steps=4, strength=0.5, count=2, scheduler="euler",
        preview_interval=1, refine="off",
    )  # fmt: skip
    engine.run(request, on_progress=reports.append)
    # strength 0.5 of 4 steps runs 2 steps per variation.
    assert [(p.step, p.total, p.variation) for p in reports] == [
        (1, 4, 0),
        (2, 4, 0),
        (3, 4, 1),
        (4, 4, 1),
    ]
    for report in reports:
        preview = report.preview
        assert preview is not None and preview.width > 0 and preview.height > 0
        preview.validate()


def test_previews_only_at_the_interval(engine):
    reports: list[Progress] = []
    request = make_request(Mode.TXT2IMG, model=TINY_SD15, steps=4, scheduler="euler", refine="off")
    request.preview_interval = 2
    engine.run(request, on_progress=reports.append)
    assert [p.preview is not None for p in reports] == [False, True, False, True]


def test_cancel_stops_within_one_step_and_returns_nothing(engine):
    cancel = threading.Event()
    reports: list[Progress] = []

    def cancel_after_first_step(progress: Progress) -> None:
        reports.append(progress)
        cancel.set()

    request = make_request(Mode.INPAINT, model=TINY_SD15, steps=10, count=3, scheduler="euler")
    with pytest.raises(Cancelled):
        engine.run(request, on_progress=cancel_after_first_step, cancel=cancel)
    assert len(reports) == 1
    # The engine stays usable.
    assert engine.run(make_request(Mode.INPAINT, model=TINY_SD15)).images


def test_cancel_before_start(engine):
    cancel = threading.Event()
    cancel.set()
    reports: list[Progress] = []
    with pytest.raises(Cancelled):
        engine.run(make_request(Mode.TXT2IMG, model=TINY_SD15), reports.append, cancel)
    assert reports == []


def test_switching_modes_loads_no_weights(tiny_models_dir):
    registry = ModelRegistry([tiny_models_dir])
    engine = Engine(registry)
    for mode in (Mode.INPAINT, Mode.IMG2IMG, Mode.TXT2IMG, Mode.INPAINT):
        engine.run(make_request(mode, model=TINY_SD15))
    assert registry.weight_loads == 1


def test_fill_needs_no_model():
    engine = Engine(ModelRegistry([]))
    request = make_request(Mode.FILL, fill=FillMode.TELEA, feather=0, grow=0)
    result = engine.run(request)
    (generated,) = result.images
    assert result.model == "" and engine.registry.weight_loads == 0
    assert result.timings["load"] == result.timings["diffusion"] == 0.0
    assert (generated.x, generated.y) == (MASK_BOUNDS.x, MASK_BOUNDS.y)
    layer = image_array(generated.image)
    assert (layer[..., 3] == 255).all()
    original = image_array(request.image)[MASK_BOUNDS.slices]
    assert not np.array_equal(layer[..., :3], original[..., :3])
    with pytest.raises(ModelNotFound, match="no model for inpaint"):
        engine.run(make_request(Mode.INPAINT))


def test_fill_noise_variations_differ_by_seed():
    engine = Engine(ModelRegistry([]))
    result = engine.run(make_request(Mode.FILL, fill=FillMode.NOISE, count=2, seed=5))
    assert [image.seed for image in result.images] == [5, 6]
    assert result.images[0].image.data != result.images[1].image.data


def test_mask_covering_everything_works(engine):
    full = np.full((HEIGHT, WIDTH), 255, dtype=np.uint8)
    result = engine.run(make_request(Mode.INPAINT, mask=full, model=TINY_SD15))
    (generated,) = result.images
    assert (generated.x, generated.y, generated.image.width, generated.image.height) == (
        0,
        0,
        WIDTH,
        HEIGHT,
    )


@pytest.mark.parametrize("mode", [Mode.TXT2IMG, Mode.IMG2IMG])
def test_an_inpainting_model_serves_txt2img_and_img2img_on_the_whole_canvas(engine, mode):
    request = make_request(mode, model=TINY_SD15_INPAINTING)
    result = engine.run(request)
    (generated,) = result.images
    assert (generated.x, generated.y, generated.image.width, generated.image.height) == (
        0,
        0,
        WIDTH,
        HEIGHT,
    )
    assert result.parameters["mode"] == mode.value  # what was asked, not how it ran
    (full,) = full_size_images(request, result)
    assert (full[..., :3] != canvas_pixels()[..., :3]).mean() > 0.9


def test_an_inpainting_model_makes_a_picture_from_a_prompt_alone(engine):
    request = EditRequest(
        Mode.TXT2IMG, prompt="a cat", width=40, height=32, steps=2, model=TINY_SD15_INPAINTING
    )
    (generated,) = engine.run(request).images
    assert (generated.image.width, generated.image.height) == (40, 32)
    assert (image_array(generated.image)[..., 3] == 255).all()


def test_default_model_for_inpaint_is_an_inpainting_model(engine):
    result = engine.run(make_request(Mode.INPAINT))
    assert result.model == TINY_SD15_INPAINTING


def test_every_scheduler_name_maps_to_a_class():
    import diffusers

    classes = {choice.diffusers_class for choice in SCHEDULERS.values()}
    assert {name for name in classes if not hasattr(diffusers, name)} == set()


@pytest.mark.parametrize("name", ["euler_a", "dpm++_2m_karras", "dpm++_sde_karras", "ddim"])
def test_scheduler_by_name(engine, name):
    result = engine.run(make_request(Mode.INPAINT, model=TINY_SD15, scheduler=name))
    assert result.parameters["scheduler"] == name
    pipe, _ = engine.registry.pipeline(TINY_SD15, Mode.INPAINT)
    choice = SCHEDULERS[name]
    assert type(pipe.scheduler).__name__ == choice.diffusers_class
    for key, value in choice.config.items():
        assert pipe.scheduler.config[key] == value


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"mask": np.zeros((HEIGHT, WIDTH), dtype=np.uint8)}, "mask"),
        ({"strength": 1.5}, "strength"),
        ({"strength": -0.1}, "strength"),
        ({"steps": 0}, "steps"),
        ({"steps": 10_000}, "steps"),
        ({"strength": 0.1, "steps": 2}, "strength"),  # int(2 × 0.1) = 0 steps would run
        ({"grow": -200}, "grow"),  # shrinks the mask to nothing
        ({"scheduler": "fastest"}, "scheduler"),
    ],
)
def test_bad_requests_name_the_field(engine, fields, field_name):
    with pytest.raises(InvalidRequest) as raised:
        engine.run(make_request(Mode.INPAINT, model=TINY_SD15, **fields))
    assert raised.value.field == field_name


def test_mask_of_another_size(engine):
    request = make_request(Mode.INPAINT, model=TINY_SD15)
    request.mask = Mask(10, 10, bytes(100))
    with pytest.raises(InvalidRequest, match="must match"):
        engine.run(request)


@pytest.mark.parametrize(("width", "height"), [(0, 64), (64, 0), (100_000, 100_000)])
def test_zero_or_gigantic_size(engine, width, height):
    request = EditRequest(Mode.TXT2IMG, prompt="x", width=width, height=height, steps=2)
    with pytest.raises(InvalidRequest):
        engine.run(request)


def test_unknown_model(engine):
    with pytest.raises(ModelNotFound, match="tiny-sd15"):  # the message lists what is there
        engine.run(make_request(Mode.INPAINT, model="no-such-model"))


def test_out_of_memory_during_a_run_leaves_the_engine_usable(engine, monkeypatch):
    from diffusers import UNet2DConditionModel

    def unet_forward_raising_out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with monkeypatch.context() as patch:
        patch.setattr(UNet2DConditionModel, "forward", unet_forward_raising_out_of_memory)
        with pytest.raises(OutOfMemory, match="out of memory"):
            engine.run(make_request(Mode.INPAINT, model=TINY_SD15))
    assert engine.run(make_request(Mode.INPAINT, model=TINY_SD15)).images
