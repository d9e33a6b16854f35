"""Weight-free fills of the masked area (core/fill.py)."""

from __future__ import annotations

import numpy as np
import pytest

from inlayer.core.client.protocol import FillMode
from inlayer.core.fill import NEUTRAL_GREY, fill_masked

FILLING_MODES = [m for m in FillMode if m != FillMode.KEEP]
FROM_SURROUNDINGS = [FillMode.BLUR, FillMode.TELEA, FillMode.NAVIER_STOKES]


def noise_image(height: int = 96, width: int = 80, seed: int = 1234) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def hole_mask(height: int = 96, width: int = 80) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[30:60, 20:50] = 255
    mask[29, 20:50] = 100  # a soft edge
    return mask


@pytest.mark.parametrize("mode", list(FillMode))
def test_each_fill_changes_only_masked_pixels(mode):
    image, mask = noise_image(), hole_mask()
    filled = fill_masked(image, mask, mode, seed=5)
    assert filled.shape == image.shape and filled.dtype == np.uint8
    np.testing.assert_array_equal(filled[mask == 0], image[mask == 0])
    changed = (filled != image).any(axis=2)
    if mode == FillMode.KEEP:
        assert not changed.any()
    else:
        # On noise, nearly every filled pixel differs from what was there.
        assert changed[mask == 255].mean() > 0.9


def test_keep_returns_a_copy_of_the_input():
    image = noise_image()
    filled = fill_masked(image, hole_mask(), FillMode.KEEP)
    np.testing.assert_array_equal(filled, image)
    assert filled is not image


@pytest.mark.parametrize("mode", FILLING_MODES)
def test_fills_leave_the_input_untouched(mode):
    image = noise_image()
    before = image.copy()
    fill_masked(image, hole_mask(), mode)
    np.testing.assert_array_equal(image, before)


def test_noise_is_the_same_for_a_seed_and_differs_for_another():
    image, mask = noise_image(), hole_mask()
    first = fill_masked(image, mask, FillMode.NOISE, seed=42)
    again = fill_masked(image, mask, FillMode.NOISE, seed=42)
    other = fill_masked(image, mask, FillMode.NOISE, seed=43)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[mask == 255], other[mask == 255])


def test_neutral_is_flat_mid_grey():
    filled = fill_masked(noise_image(), hole_mask(), FillMode.NEUTRAL)
    assert (filled[hole_mask() == 255] == NEUTRAL_GREY).all()


def test_soft_mask_mixes_the_fill_by_its_weight():
    image = np.zeros((20, 20, 3), np.uint8)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 255
    mask[12, 12] = 128
    filled = fill_masked(image, mask, FillMode.NEUTRAL)
    assert (filled[12, 12] == round(NEUTRAL_GREY * 128 / 255)).all()
    assert (filled[7, 7] == NEUTRAL_GREY).all()


@pytest.mark.parametrize("mode", FROM_SURROUNDINGS)
def test_fills_from_a_flat_surrounding_take_its_colour(mode):
    image = np.empty((64, 64, 3), np.uint8)
    image[...] = (20, 140, 230)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 10:40] = 255
    image[mask > 0] = (255, 0, 0)  # what sits under the mask must not leak into the fill
    filled = fill_masked(image, mask, mode)
    # Telea's gradient estimate wobbles by a few levels even on a flat surrounding.
    assert np.abs(filled[mask > 0].astype(int) - (20, 140, 230)).max() <= 5


@pytest.mark.parametrize("mode", [FillMode.TELEA, FillMode.NAVIER_STOKES])
def test_inpainting_continues_a_gradient(mode):
    ramp = np.linspace(0, 255, 100)
    image = np.dstack([np.tile(ramp, (60, 1))] * 3).astype(np.uint8)
    mask = np.zeros((60, 100), np.uint8)
    mask[20:40, 40:60] = 255
    damaged = image.copy()
    damaged[mask > 0] = 0
    filled = fill_masked(damaged, mask, mode)
    error = np.abs(filled[mask > 0].astype(int) - image[mask > 0]).mean()
    assert error < 12


def test_blur_reaches_the_middle_of_a_large_hole():
    image = np.empty((300, 300, 3), np.uint8)
    image[:, :150] = (250, 0, 0)
    image[:, 150:] = (0, 0, 250)
    mask = np.zeros((300, 300), np.uint8)
    mask[20:280, 20:280] = 255
    filled = fill_masked(image, mask, FillMode.BLUR)
    # Left of the hole stays reddish, right bluish, and the middle is a mix, never black.
    assert filled[150, 40, 0] > filled[150, 40, 2]
    assert filled[150, 260, 2] > filled[150, 260, 0]
    assert filled[150, 150].astype(int).sum() > 150


@pytest.mark.parametrize("mode", FROM_SURROUNDINGS)
def test_a_fully_masked_image_falls_back_to_neutral(mode):
    filled = fill_masked(noise_image(), np.full((96, 80), 255, np.uint8), mode)
    assert (filled == NEUTRAL_GREY).all()


def test_an_empty_mask_changes_nothing():
    image = noise_image()
    np.testing.assert_array_equal(
        fill_masked(image, np.zeros((96, 80), np.uint8), FillMode.TELEA), image
    )


def test_auto_is_telea():
    image, mask = noise_image(), hole_mask()
    np.testing.assert_array_equal(
        fill_masked(image, mask, FillMode.AUTO), fill_masked(image, mask, FillMode.TELEA)
    )


def test_rgba_input_keeps_its_alpha():
    rgba = np.random.default_rng(1).integers(0, 256, (40, 30, 4), dtype=np.uint8)
    mask = np.zeros((40, 30), np.uint8)
    mask[10:20, 5:15] = 255
    filled = fill_masked(rgba, mask, FillMode.NEUTRAL)
    np.testing.assert_array_equal(filled[..., 3], rgba[..., 3])
    assert (filled[10:20, 5:15, :3] == NEUTRAL_GREY).all()


def test_masks_touching_the_edges_and_odd_sizes():
    image = noise_image(517, 333)
    mask = np.zeros((517, 333), np.uint8)
    mask[:40, 300:] = 255
    mask[480:, :25] = 255
    for mode in FILLING_MODES:
        filled = fill_masked(image, mask, mode)
        np.testing.assert_array_equal(filled[mask == 0], image[mask == 0])
        assert (filled[mask > 0] != image[mask > 0]).any()


def test_fill_rejects_mismatched_input():
    with pytest.raises(ValueError):
        fill_masked(noise_image(), np.zeros((10, 10), np.uint8), FillMode.TELEA)
    with pytest.raises(ValueError):
        fill_masked(np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8), FillMode.TELEA)
