"""Blend masks, working sizes, scaling and the final composite (core/geometry.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inlayer.core.client.bounds import Bounds, Extent
from inlayer.core.geometry import (
    blend_mask,
    composite,
    layer_pixels,
    nonzero_bounds,
    resize_mask,
    resize_rgb,
    working_extent,
)

SD15_PIXELS = 512 * 512
SDXL_PIXELS = 1024 * 1024


def rectangle_mask(canvas: Extent, rectangle: Bounds, value: int = 255) -> np.ndarray:
    mask = np.zeros((canvas.height, canvas.width), np.uint8)
    mask[rectangle.slices] = value
    return mask


# --------------------------------------------------------------------------------------------
# nonzero_bounds and blend_mask
# --------------------------------------------------------------------------------------------


def test_nonzero_bounds():
    assert nonzero_bounds(np.zeros((30, 40), np.uint8)) is None
    single = np.zeros((30, 40), np.uint8)
    single[7, 9] = 1
    assert nonzero_bounds(single) == Bounds(9, 7, 1, 1)
    assert nonzero_bounds(np.full((30, 40), 3, np.uint8)) == Bounds(0, 0, 40, 30)


def test_empty_mask_has_no_blend_mask():
    assert blend_mask(np.zeros((64, 64), np.uint8), 4, 8) is None


def test_grow_and_feather_widen_the_bounds_by_exactly_their_sum():
    canvas, selection = Extent(333, 517), Bounds(100, 200, 50, 30)
    blend, bounds = blend_mask(rectangle_mask(canvas, selection), 4, 8)
    assert bounds == selection.pad(12)
    assert blend.shape == (bounds.height, bounds.width)
    assert blend.dtype == np.uint8


def test_grown_area_stays_opaque_and_the_feather_ramps_down_outward():
    canvas, selection = Extent(128, 96), Bounds(40, 30, 40, 30)
    grow, feather = 4, 8
    blend, bounds = blend_mask(rectangle_mask(canvas, selection), grow, feather)
    full = np.zeros((canvas.height, canvas.width), np.uint8)
    full[bounds.slices] = blend
    # The selection itself is fully repainted; the grown ring nearly so.
    assert (full[selection.slices] == 255).all()
    assert full[selection.pad(grow).slices].min() >= 240
    # Along a row through the middle, the edge falls from 255 to near 0 across `feather` px.
    row = full[selection.y + selection.height // 2]
    ramp = row[selection.right + grow - 1 : selection.right + grow + feather + 1]
    assert (np.diff(ramp.astype(int)) <= 0).all()
    assert ramp[0] >= 240 and 0 < ramp[-2] < 40 and ramp[-1] == 0


def test_grow_without_feather_keeps_a_hard_mask():
    canvas, selection = Extent(64, 64), Bounds(20, 20, 10, 10)
    blend, bounds = blend_mask(rectangle_mask(canvas, selection), 5, 0)
    assert bounds == selection.pad(5)
    assert set(np.unique(blend)) == {0, 255}
    # Grown by a disc, not a square: the corners of the padded box stay unselected.
    assert blend[0, 0] == 0 and blend[5, 0] == 255 and blend[0, 5] == 255


def test_shrink_narrows_the_mask_and_can_remove_it():
    canvas, selection = Extent(64, 64), Bounds(20, 20, 15, 10)
    _, bounds = blend_mask(rectangle_mask(canvas, selection), -3, 0)
    assert bounds == selection.pad(-3)
    assert blend_mask(rectangle_mask(canvas, selection), -5, 0) is None
    # Feathering does not bring back what shrinking removed.
    assert blend_mask(rectangle_mask(canvas, selection), -5, 8) is None


def test_a_mask_touching_the_canvas_edges_is_not_shrunk_from_them():
    canvas = Extent(50, 40)
    touching = Bounds(0, 0, 50, 10)  # the whole top band
    _, bounds = blend_mask(rectangle_mask(canvas, touching), -3, 0)
    assert bounds == Bounds(0, 0, 50, 7)
    everything = np.full((40, 50), 255, np.uint8)
    blend, bounds = blend_mask(everything, -4, 6)
    assert bounds == Bounds(0, 0, 50, 40) and (blend == 255).all()


def test_growing_at_the_canvas_edge_is_clipped_to_the_canvas():
    canvas = Extent(333, 517)
    blend, bounds = blend_mask(rectangle_mask(canvas, Bounds(320, 0, 13, 20)), 10, 10)
    assert bounds == Bounds(300, 0, 33, 40)
    assert blend[0, -1] == 255


def test_soft_masks_keep_their_grey_levels():
    canvas, selection = Extent(64, 64), Bounds(10, 10, 30, 30)
    grey = rectangle_mask(canvas, selection, 128)
    blend, bounds = blend_mask(grey, 0, 0)
    assert bounds == selection and (blend == 128).all()
    # Growing a grey selection widens it at the same grey; feathering never makes it darker
    # than its own level inside or brighter than it anywhere.
    blend, bounds = blend_mask(grey, 3, 6)
    assert blend.max() == 128
    inside = selection.relative_to(bounds)
    assert (blend[inside.slices] == 128).all()


def test_a_feathered_selection_keeps_its_ramp():
    # A GIMP-style feathered selection: a linear ramp from 0 to 255 across 64 px.
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (16, 1))
    blend, bounds = blend_mask(ramp, 0, 0)
    assert bounds == Bounds(1, 0, 63, 16)
    np.testing.assert_array_equal(blend, ramp[:, 1:])
    blend, _ = blend_mask(ramp, 0, 4)
    assert (np.diff(blend[8].astype(int)) >= 0).all()


def test_blend_mask_is_the_same_wherever_the_selection_sits_on_a_larger_canvas():
    rng = np.random.default_rng(3)
    patch = (rng.random((40, 30)) > 0.6).astype(np.uint8) * rng.integers(1, 256, (40, 30))
    patch = patch.astype(np.uint8)
    small = np.zeros((100, 90), np.uint8)
    small[30:70, 30:60] = patch
    large = np.zeros((1000, 900), np.uint8)
    large[530:570, 430:460] = patch
    small_blend, small_bounds = blend_mask(small, 3, 7)
    large_blend, large_bounds = blend_mask(large, 3, 7)
    np.testing.assert_array_equal(small_blend, large_blend)
    assert large_bounds == small_bounds.offset(400, 500)


def test_blend_mask_works_only_on_the_selection_and_its_margin(monkeypatch):
    # A small selection on a large canvas: every OpenCV call sees a small array, so the cost
    # follows the selection, not the canvas.
    seen_sizes = []
    for name in ("morphologyEx", "GaussianBlur"):
        original = getattr(cv2, name)

        def recording(array, *args, _original=original, **kwargs):
            seen_sizes.append(array.shape[0] * array.shape[1])
            return _original(array, *args, **kwargs)

        monkeypatch.setattr(cv2, name, recording)
    canvas, selection = Extent(3000, 2000), Bounds(1400, 900, 64, 48)
    result = blend_mask(rectangle_mask(canvas, selection), 4, 8)
    assert result is not None
    assert seen_sizes and max(seen_sizes) <= selection.pad(12).extent.pixel_count


def test_blend_mask_rejects_bad_input():
    with pytest.raises(ValueError):
        blend_mask(np.zeros((4, 4, 1), np.uint8), 0, 0)
    with pytest.raises(ValueError):
        blend_mask(np.zeros((4, 4), np.float32), 0, 0)
    with pytest.raises(ValueError):
        blend_mask(np.zeros((4, 4), np.uint8), 0, -1)


# --------------------------------------------------------------------------------------------
# working_extent
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("multiple", [2, 8])
@pytest.mark.parametrize(
    "context",
    [Extent(333, 517), Extent(64, 64), Extent(512, 512), Extent(4096, 1024), Extent(3, 5)],
)
def test_working_extent_keeps_aspect_and_multiples(context, multiple):
    for target in (SD15_PIXELS, SDXL_PIXELS):
        working = working_extent(context, target_pixels=target, multiple=multiple)
        assert working.width % multiple == 0 and working.height % multiple == 0
        assert working.pixel_count == pytest.approx(target, rel=0.05)
        assert working.width / working.height == pytest.approx(
            context.width / context.height, rel=0.05
        )


def test_working_extent_for_sd15_and_sdxl():
    assert working_extent(Extent(512, 512), target_pixels=SD15_PIXELS, multiple=8) == Extent(
        512, 512
    )
    assert working_extent(Extent(512, 512), target_pixels=SDXL_PIXELS, multiple=8) == Extent(
        1024, 1024
    )
    # A 333x517 context for SD 1.5: upscaled to about 512², sides multiples of the factor.
    assert working_extent(Extent(333, 517), target_pixels=SD15_PIXELS, multiple=8) == Extent(
        408, 640
    )
    assert working_extent(Extent(333, 517), target_pixels=SD15_PIXELS, multiple=2) == Extent(
        410, 640
    )


def test_working_extent_never_below_one_multiple():
    working = working_extent(Extent(8000, 4), target_pixels=SD15_PIXELS, multiple=8)
    assert working.height == 8 and working.pixel_count == pytest.approx(SD15_PIXELS, rel=0.05)


# --------------------------------------------------------------------------------------------
# resize_rgb and resize_mask
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("target", [Extent(40, 24), Extent(333, 517)])
def test_resize_rgb_gives_the_size_and_keeps_flat_colours(channels, target):
    image = np.empty((90, 70, channels), np.uint8)
    image[...] = (10, 200, 30, 255)[:channels]
    resized = resize_rgb(image, target)
    assert resized.shape == (target.height, target.width, channels)
    assert resized.dtype == np.uint8
    assert (resized == image[0, 0]).all()


def test_resize_returns_the_input_at_its_own_size():
    image = np.zeros((10, 12, 3), np.uint8)
    mask = np.zeros((10, 12), np.uint8)
    assert resize_rgb(image, Extent(12, 10)) is image
    assert resize_mask(mask, Extent(12, 10)) is mask


def test_resize_mask_up_and_down_stays_within_its_values():
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 200
    up = resize_mask(mask, Extent(100, 77))
    down = resize_mask(mask, Extent(9, 13))
    for resized, extent in ((up, Extent(100, 77)), (down, Extent(9, 13))):
        assert resized.shape == (extent.height, extent.width)
        assert resized.min() == 0 and resized.max() == 200


def test_resize_round_trip_keeps_the_picture():
    gradient = np.dstack([np.tile(np.linspace(0, 255, 96), (64, 1))] * 3).astype(np.uint8)
    back = resize_rgb(resize_rgb(gradient, Extent(200, 134)), Extent(96, 64))
    assert np.abs(back.astype(int) - gradient).max() <= 3


# --------------------------------------------------------------------------------------------
# composite and layer_pixels
# --------------------------------------------------------------------------------------------


def random_images(shape: tuple[int, int], seed: int = 0):
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
    generated = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    blend = rng.integers(0, 256, shape, dtype=np.uint8)
    blend[rng.random(shape) < 0.3] = 0
    blend[rng.random(shape) < 0.2] = 255
    return original, generated, blend


def test_composite_leaves_unblended_pixels_bit_identical():
    original, generated, blend = random_images((51, 37))
    result = composite(original, generated, blend)
    assert result.shape == original.shape and result.dtype == np.uint8
    untouched = blend == 0
    assert untouched.any()
    np.testing.assert_array_equal(result[untouched], original[untouched])
    assert not np.array_equal(result[~untouched], original[~untouched])


def test_composite_takes_the_generated_colour_where_blend_is_full():
    original, generated, blend = random_images((20, 30), seed=1)
    result = composite(original, generated, blend)
    full = blend == 255
    np.testing.assert_array_equal(result[full][:, :3], generated[full])
    assert (result[full][:, 3] == 255).all()


def test_composite_mixes_over_an_opaque_original():
    original = np.full((4, 4, 4), (0, 100, 200, 255), np.uint8)
    generated = np.full((4, 4, 3), (200, 100, 0), np.uint8)
    blend = np.full((4, 4), 64, np.uint8)
    result = composite(original, generated, blend)
    expected = np.rint(
        np.array([0, 100, 200]) * (1 - 64 / 255) + np.array([200, 100, 0]) * 64 / 255
    )
    assert (result[..., :3] == expected).all()
    assert (result[..., 3] == 255).all()


def test_composite_over_a_transparent_original_shows_the_generated_colour():
    original = np.zeros((3, 3, 4), np.uint8)  # transparent black
    generated = np.full((3, 3, 4), (30, 60, 90, 7), np.uint8)  # generated alpha is ignored
    blend = np.full((3, 3), 128, np.uint8)
    result = composite(original, generated, blend)
    assert (result[..., :3] == (30, 60, 90)).all()
    assert (result[..., 3] == 128).all()


def test_layer_pixels_carry_the_generated_colour_with_the_blend_as_alpha():
    _, generated, blend = random_images((9, 11), seed=2)
    layer = layer_pixels(generated, blend)
    assert layer.shape == (9, 11, 4) and layer.dtype == np.uint8
    np.testing.assert_array_equal(layer[..., :3], generated)
    np.testing.assert_array_equal(layer[..., 3], blend)


def test_composite_is_the_result_layer_stacked_over_the_original():
    # What a plug-in shows (the result layer over the source) equals the composite the CLI writes.
    original, generated, blend = random_images((16, 16), seed=4)
    original[..., 3] = 255
    layer = layer_pixels(generated, blend).astype(float)
    alpha = layer[..., 3:] / 255
    shown = layer[..., :3] * alpha + original[..., :3] * (1 - alpha)
    result = composite(original, generated, blend)
    assert np.abs(result[..., :3] - shown).max() <= 0.5 + 1e-9
