"""The full-resolution refine: tiles and their feathered blend, and the engine's second pass on a
tiny random-weight model whose native side (128 px) keeps a 1500×1000 selection to ~180 tiles,
each a fraction of a second (attention only at the UNet's lower resolution, a VAE scaling by 4)."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from inlayer.core.client.bounds import Bounds, Extent
from inlayer.core.client.protocol import (
    Cancelled,
    EditRequest,
    InvalidRequest,
    Mask,
    Mode,
    Progress,
    RGBAImage,
)
from inlayer.core.engine import Engine, image_array
from inlayer.core.images import full_size_images
from inlayer.core.models import ModelRegistry
from inlayer.core.tiled_refine import (
    OVERLAP_SHARE,
    blend_tiles,
    plan_refine,
    plan_tiles,
    refine_plan,
    tile_weights,
)
from tests.fixtures import models as tiny

TILE_MODEL = "tiny-sd15-tile128"
TILE_SIDE = 128
CANVAS = Extent(1600, 1100)
SELECTION = Bounds(50, 50, 1500, 1000)


def high_frequency_energy(rgb: np.ndarray) -> float:
    """Mean absolute Laplacian: how much detail at the pixel scale a picture has."""
    import cv2

    grey = rgb[..., :3].astype(np.float32).mean(axis=2)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


# --- tiles and blending ------------------------------------------------------------------------


@pytest.mark.parametrize("length", [128, 129, 300, 1000, 1537])
def test_tiles_cover_the_region_with_at_least_the_overlap(length):
    region = Bounds(7, 3, length, 200)
    tiles = plan_tiles(region, Extent(128, 128), 32)
    covered = np.zeros((region.bottom, region.right), dtype=bool)
    for tile in tiles:
        assert tile.width == min(128, length) and tile.height == 128
        assert region.contains(tile)
        covered[tile.slices] = True
    assert covered[region.slices].all()
    starts = sorted({tile.x for tile in tiles})
    for left, right in itertools.pairwise(starts):
        assert left + 128 - right >= 32  # neighbours share at least the overlap


def test_refine_plan_follows_the_threshold_and_the_choice():
    context, working = Extent(1000, 1000), Extent(512, 512)
    mask = Bounds(100, 100, 800, 800)
    plan = refine_plan("auto", context, mask, working, tile_side=512, steps=20)
    assert plan is not None and plan.steps_per_tile == 6 and len(plan.tiles) == 9
    assert refine_plan("off", context, mask, working, tile_side=512, steps=20) is None
    small = Extent(600, 600)  # 1.37× the working pixels: below the threshold
    assert refine_plan("auto", small, mask, working, tile_side=512, steps=20) is None
    # A few steps still run one a tile.
    assert plan_refine(context, mask, tile_side=512, steps=1, strength=0.3).steps_per_tile == 1


def test_unchanged_tiles_blend_back_to_the_picture_exactly():
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    plan = plan_refine(Extent(400, 300), Bounds(50, 40, 300, 200), tile_side=128, steps=4,
                       strength=0.3)  # fmt: skip
    assert len(plan.tiles) > 4
    assert np.array_equal(blend_tiles(picture, plan, lambda pixels, index: pixels), picture)


def test_overlaps_fade_from_one_tile_into_the_next():
    """Each tile paints its own flat grey: across an overlap the result ramps from one to the
    next in steps of at most the difference / overlap, where a hard cut would jump by it all."""
    picture = np.zeros((128, 400, 3), dtype=np.uint8)
    plan = plan_refine(Extent(400, 128), Bounds(0, 0, 400, 128), tile_side=128, steps=4,
                       strength=0.3)  # fmt: skip
    greys = [40 + 60 * index for index in range(len(plan.tiles))]
    blended = blend_tiles(
        picture, plan, lambda pixels, index: np.full_like(pixels, greys[index])
    ).astype(int)
    row = blended[64, :, 0]
    assert row[0] == greys[0] and row[-1] == greys[-1]
    steps = np.abs(np.diff(row))
    assert steps.max() <= 60 / (TILE_SIDE // OVERLAP_SHARE) + 1
    assert (np.diff(row) >= 0).all()  # a ramp, no overshoot


def test_weights_ramp_only_towards_neighbours():
    area = Bounds(0, 0, 300, 128)
    first = tile_weights(Bounds(0, 0, 128, 128), area, 32)
    assert (first[:, 0] == 1).all() and (first[0] == first[-1]).all()
    assert first[0, -1] < 0.05 and first[0, 95] == 1


# --- the engine's second pass -----------------------------------------------------------------


def build_tile_model():
    """A tiny SD 1.5-shaped pipeline with a native side of 128 px (a 32² latent, a VAE that
    scales by 4), cheap at that size."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=TILE_SIDE // 4,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        norm_num_groups=16,
        mid_block_add_attention=False,
    )
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=tiny._text_encoder(),
        tokenizer=tiny._tokenizer(),
        scheduler=tiny._scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    import torch

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tile-models")
    build_tile_model().save_pretrained(folder / TILE_MODEL)
    return Engine(ModelRegistry([folder]))


def selection_request(
    canvas: Extent = CANVAS, selection: Bounds = SELECTION, **fields
) -> EditRequest:
    import cv2

    rng = np.random.default_rng(3)
    # A smooth picture: a plain upscale of the first pass stays smooth too.
    low = rng.integers(0, 256, (11, 16, 4), dtype=np.uint8)
    pixels = cv2.resize(low, (canvas.width, canvas.height), interpolation=cv2.INTER_CUBIC)
    pixels[..., 3] = 255
    mask = np.zeros((canvas.height, canvas.width), dtype=np.uint8)
    mask[selection.slices] = 255
    defaults = {"prompt": "a stone wall", "steps": 4, "seed": 21, "grow": 0, "feather": 0}
    return EditRequest(
        mode=Mode.IMG2IMG,
        image=RGBAImage(canvas.width, canvas.height, pixels.tobytes()),
        mask=Mask(canvas.width, canvas.height, mask.tobytes()),
        model=TILE_MODEL,
        strength=0.75,
        guidance=1.0,  # one UNet evaluation a step: the test is about tiles, not guidance
        **(defaults | fields),
    )


def test_a_large_selection_is_refined_at_full_resolution(engine):
    request = selection_request()
    reports: list[Progress] = []
    refined = engine.run(request, on_progress=reports.append)
    plain = engine.run(selection_request(refine="off"))

    (layer,) = refined.images
    assert (layer.x, layer.y, layer.image.width, layer.image.height) == (
        SELECTION.x, SELECTION.y, SELECTION.width, SELECTION.height,
    )  # fmt: skip
    refined_rgb = image_array(layer.image)[..., :3]
    plain_rgb = image_array(plain.images[0].image)[..., :3]
    # The plain result is the first pass scaled up ~10×: smooth. The refine painted detail.
    assert high_frequency_energy(refined_rgb) > 2 * high_frequency_energy(plain_rgb)

    # Progress counts every tile's steps and ends at its total.
    assert reports[-1].step == reports[-1].total > 100
    assert [p.step for p in reports] == sorted(p.step for p in reports)

    # Pixels outside the selection are untouched.
    (full,) = full_size_images(request, refined)
    original = image_array(request.image)
    outside = np.ones((CANVAS.height, CANVAS.width), dtype=bool)
    outside[SELECTION.slices] = False
    assert np.array_equal(full[outside], original[outside])

    # No seams: across the columns where tiles begin or end, neighbouring pixels differ as
    # much as they do anywhere else in the layer.
    column_steps = np.abs(np.diff(refined_rgb.astype(np.int16), axis=1)).mean(axis=(0, 2))
    # The context is the whole canvas here.
    plan = plan_refine(CANVAS, SELECTION, tile_side=TILE_SIDE, steps=4, strength=0.3)
    edges = {t.x - SELECTION.x for t in plan.tiles} | {t.right - SELECTION.x for t in plan.tiles}
    at_edges = [column_steps[x - 1] for x in edges if 1 <= x < SELECTION.width]
    assert at_edges and max(at_edges) < 1.5 * float(np.median(column_steps))


SMALL = Extent(400, 300)
SMALL_SELECTION = Bounds(30, 20, 340, 250)


def test_the_refine_is_seeded_per_tile(engine):
    first = engine.run(selection_request(SMALL, SMALL_SELECTION)).images[0].image.data
    again = engine.run(selection_request(SMALL, SMALL_SELECTION)).images[0].image.data
    other = engine.run(selection_request(SMALL, SMALL_SELECTION, seed=22)).images[0].image.data
    assert first == again and first != other


def test_cancel_stops_the_refine_between_steps(engine):
    cancel = threading.Event()
    reports: list[Progress] = []

    def cancel_in_the_refine(progress: Progress) -> None:
        reports.append(progress)
        if len(reports) == 5:  # the first pass runs 3 steps, the refine one a tile
            cancel.set()

    request = selection_request(SMALL, SMALL_SELECTION)
    with pytest.raises(Cancelled):
        engine.run(request, on_progress=cancel_in_the_refine, cancel=cancel)
    assert len(reports) == 5


def test_an_unknown_refine_choice_names_the_field():
    with pytest.raises(InvalidRequest) as caught:
        selection_request(refine="always").validate()
    assert caught.value.field == "refine" and "'off'" in str(caught.value)
