"""Rectangles, the context around a selection, and what the plug-ins read (core/bounds.py)."""

from __future__ import annotations

import ast
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from inlayer.core.client import bounds as bounds_module
from inlayer.core.client.bounds import Bounds, Extent, context_bounds, context_padding, read_bounds
from inlayer.core.geometry import blend_mask

VAE_FACTORS = (1, 2, 4, 8, 16, 64)


def test_bounds_module_needs_only_the_standard_library():
    # The plug-ins carry this module into editors whose Python has no numpy.
    tree = ast.parse(Path(bounds_module.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)


# --------------------------------------------------------------------------------------------
# Extent and Bounds
# --------------------------------------------------------------------------------------------


def test_extent_rounds_up_to_multiples_and_raises_to_a_minimum():
    assert Extent(333, 517).multiple_of(8) == Extent(336, 520)
    assert Extent(512, 512).multiple_of(8) == Extent(512, 512)
    assert Extent(333, 517).multiple_of(2) == Extent(334, 518)
    assert Extent(100, 700).at_least(512) == Extent(512, 700)


def test_scale_keep_aspect_keeps_a_size_already_at_the_target():
    assert Extent(512, 512).scale_keep_aspect(512 * 512, 8) == Extent(512, 512)
    assert Extent(256, 256).scale_keep_aspect(512 * 512, 8) == Extent(512, 512)
    assert Extent(2048, 1024).scale_keep_aspect(512 * 512, 8) == Extent(728, 360)


def test_scale_keep_aspect_never_goes_below_one_multiple():
    assert Extent(4000, 3).scale_keep_aspect(64 * 64, 8) == Extent(512, 8)
    assert Extent(1, 900).scale_keep_aspect(64 * 64, 2) == Extent(2, 2048)


def test_scale_keep_aspect_refuses_empty_sizes():
    with pytest.raises(ValueError):
        Extent(0, 10).scale_keep_aspect(512 * 512, 8)
    with pytest.raises(ValueError):
        Extent(10, 10).scale_keep_aspect(512 * 512, 0)


def test_bounds_edges_padding_and_slices():
    box = Bounds(10, 20, 30, 40)
    assert (box.right, box.bottom, box.extent) == (40, 60, Extent(30, 40))
    assert box.pad(5) == Bounds(5, 15, 40, 50)
    assert box.pad(-15) == Bounds(25, 35, 0, 10) and box.pad(-15).is_empty
    grid = np.arange(100 * 100).reshape(100, 100)
    assert grid[box.slices].shape == (40, 30)
    assert grid[box.slices][0, 0] == grid[20, 10]


def test_bounds_intersection_union_clamp_and_contains():
    a, b = Bounds(0, 0, 10, 10), Bounds(5, 5, 10, 10)
    assert a.intersection(b) == Bounds(5, 5, 5, 5)
    assert a.intersection(Bounds(20, 20, 5, 5)).is_empty
    assert a.union(b) == Bounds(0, 0, 15, 15)
    assert a.union(Bounds(50, 50, 0, 0)) == a
    assert Bounds(0, 0, 0, 0).union(b) == b
    assert Bounds(-5, -5, 20, 8).clamp(Extent(12, 12)) == Bounds(0, 0, 12, 3)
    assert a.union(b).contains(a) and not a.contains(b)
    assert a.contains(Bounds(99, 99, 0, 0))
    assert b.relative_to(a.offset(2, 3)) == Bounds(3, 2, 10, 10)
    assert Bounds.of(Extent(7, 9)) == Bounds(0, 0, 7, 9)


# --------------------------------------------------------------------------------------------
# context_bounds
# --------------------------------------------------------------------------------------------


def assert_valid_context(context: Bounds, mask: Bounds, canvas: Extent, multiple: int) -> None:
    assert Bounds.of(canvas).contains(context)
    assert context.contains(mask.clamp(canvas))
    # A side is a multiple of the VAE factor unless it is the whole canvas side.
    assert context.width % multiple == 0 or context.width == canvas.width
    assert context.height % multiple == 0 or context.height == canvas.height


def test_small_mask_at_full_strength_gets_the_minimum_context_centred_on_it():
    mask = Bounds(1000, 2000, 64, 64)
    context = context_bounds(mask, Extent(4096, 4096), strength=1.0, min_size=512)
    assert context.extent == Extent(512, 512)
    assert context.x + context.width // 2 == pytest.approx(mask.x + mask.width // 2, abs=1)
    assert context.y + context.height // 2 == pytest.approx(mask.y + mask.height // 2, abs=1)


def test_context_at_the_canvas_corner_moves_inside_instead_of_shrinking():
    canvas = Extent(2000, 1500)
    top_left = context_bounds(Bounds(0, 0, 40, 40), canvas)
    assert top_left == Bounds(0, 0, 512, 512)
    bottom_right = context_bounds(Bounds(1960, 1460, 40, 40), canvas)
    assert bottom_right == Bounds(2000 - 512, 1500 - 512, 512, 512)


def test_context_on_an_odd_canvas_smaller_than_the_minimum():
    canvas = Extent(333, 517)
    mask = Bounds(300, 500, 33, 17)  # touching the right and bottom edges
    context = context_bounds(mask, canvas, strength=1.0, multiple=8)
    # 512 does not fit across 333: the whole width; 512 fits in 517: a multiple of 8, moved in.
    assert context == Bounds(0, 5, 333, 512)
    assert_valid_context(context, mask, canvas, 8)


def test_context_on_a_canvas_smaller_than_one_multiple_is_the_canvas():
    assert context_bounds(Bounds(1, 1, 2, 2), Extent(5, 6), multiple=8) == Bounds(0, 0, 5, 6)


def test_empty_mask_bounds_mean_the_whole_canvas():
    assert context_bounds(Bounds(0, 0, 0, 0), Extent(300, 200)) == Bounds(0, 0, 300, 200)
    outside = Bounds(400, 400, 10, 10)
    assert context_bounds(outside, Extent(300, 200)) == Bounds(0, 0, 300, 200)


def test_mask_bounds_sticking_out_of_the_canvas_are_clamped_first():
    canvas = Extent(1000, 1000)
    context = context_bounds(Bounds(-50, 900, 200, 300), canvas)
    assert_valid_context(context, Bounds(-50, 900, 200, 300), canvas, 8)
    assert context.x == 0 and context.bottom == 1000


def test_context_grows_with_strength():
    canvas, mask = Extent(4096, 4096), Bounds(1500, 1500, 300, 200)
    sizes = [
        context_bounds(mask, canvas, strength=s).extent.pixel_count for s in (0.0, 0.3, 0.7, 1.0)
    ]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert context_padding(mask, 1.0) > context_padding(mask, 0.0) > 0


def test_context_padding_grows_with_the_mask():
    small, large = Bounds(0, 0, 100, 100), Bounds(0, 0, 2000, 1000)
    assert context_padding(large, 1.0) > context_padding(small, 1.0)
    # At full strength a large mask gets at least 10 % + 6 % of its diagonal on each side.
    assert context_padding(large, 1.0) >= 0.16 * large.extent.diagonal
    # Small masks still get the minimum padding at full strength.
    assert context_padding(Bounds(0, 0, 4, 4), 1.0) >= 32


def test_low_strength_keeps_the_context_close_to_the_mask():
    context = context_bounds(Bounds(1000, 1000, 256, 256), Extent(4096, 4096), strength=0.0)
    assert context.width < 256 + 2 * 32
    assert context.contains(Bounds(1000, 1000, 256, 256))


@pytest.mark.parametrize("multiple", VAE_FACTORS)
def test_context_invariants_over_many_masks_and_canvases(multiple):
    rng = random.Random(multiple)
    for _ in range(400):
        canvas = Extent(rng.randint(1, 3000), rng.randint(1, 3000))
        mask = Bounds(
            rng.randint(-100, canvas.width),
            rng.randint(-100, canvas.height),
            rng.randint(1, 1200),
            rng.randint(1, 1200),
        )
        strength = rng.choice([0.0, 0.25, 0.5, 0.8, 1.0])
        context = context_bounds(mask, canvas, strength=strength, multiple=multiple)
        if mask.clamp(canvas).is_empty:
            assert context == Bounds.of(canvas)
            continue
        assert_valid_context(context, mask, canvas, multiple)
        # The minimum size is honoured wherever the canvas has room for it.
        min_side = round(512 * strength)
        assert context.width >= min(min_side, canvas.width)
        assert context.height >= min(min_side, canvas.height)


def test_context_multiple_must_be_positive():
    with pytest.raises(ValueError):
        context_bounds(Bounds(0, 0, 10, 10), Extent(100, 100), multiple=0)


# --------------------------------------------------------------------------------------------
# read_bounds: what a plug-in reads holds what the engine needs
# --------------------------------------------------------------------------------------------


def test_read_bounds_are_in_layer_coordinates_and_inside_the_layer():
    layer = Bounds(100, 50, 6000, 4000)  # layer offsets in the image
    selection = Bounds(1100, 1050, 64, 64)  # image coordinates
    read = read_bounds(selection, layer, grow=4, feather=8, strength=1.0)
    assert Bounds.of(layer.extent).contains(read)
    assert read.contains(Bounds(1000, 1000, 64, 64).pad(12))
    # Far smaller than the layer: only the neighbourhood of the selection travels.
    assert read.extent.pixel_count < layer.extent.pixel_count / 8


def test_read_bounds_are_empty_when_the_selection_misses_the_layer():
    read = read_bounds(
        Bounds(0, 0, 50, 50), Bounds(500, 500, 100, 100), grow=4, feather=8, strength=1.0
    )
    assert read.is_empty


def _selection_mask(rng: random.Random, layer: Bounds) -> tuple[np.ndarray, Bounds]:
    """A soft mask of one or two rectangles (some partly off the layer) and the selection's
    bounds in image coordinates, as GIMP or Krita report them."""
    mask = np.zeros((layer.height, layer.width), np.uint8)
    selection = Bounds(0, 0, 0, 0)
    for _ in range(rng.randint(1, 2)):
        rectangle = Bounds(
            rng.randint(layer.x - 60, layer.right - 1),
            rng.randint(layer.y - 60, layer.bottom - 1),
            rng.randint(1, 300),
            rng.randint(1, 300),
        )
        selection = selection.union(rectangle)
        on_layer = rectangle.relative_to(layer).clamp(layer.extent)
        mask[on_layer.slices] = rng.choice([255, 128, 20])
    return mask, selection


def test_read_bounds_hold_the_engine_context_for_every_vae_factor_and_model_size():
    rng = random.Random(7)
    checked = 0
    for _ in range(250):
        layer = Bounds(
            rng.randint(-200, 200),
            rng.randint(-200, 200),
            rng.randint(16, 2500),
            rng.randint(16, 2500),
        )
        mask, selection = _selection_mask(rng, layer)
        grow = rng.choice([-12, -3, 0, 4, 10])
        feather = rng.choice([0, 1, 8, 25])
        strength = rng.choice([0.0, 0.4, 1.0])
        blended = blend_mask(mask, grow, feather)
        if blended is None:
            continue
        _, mask_bounds = blended
        read = read_bounds(selection, layer, grow=grow, feather=feather, strength=strength)
        for multiple in VAE_FACTORS:
            for native_side in (512, 768, 1024):
                engine_context = context_bounds(
                    mask_bounds,
                    layer.extent,
                    strength=strength,
                    min_size=native_side,
                    multiple=multiple,
                )
                assert read.contains(engine_context), (layer, selection, grow, feather, multiple)
                checked += 1
    assert checked > 500


def test_sending_only_the_read_bounds_gives_the_same_context_as_the_whole_layer():
    rng = random.Random(11)
    for _ in range(150):
        layer = Bounds(0, 0, rng.randint(16, 2500), rng.randint(16, 2500))
        mask, selection = _selection_mask(rng, layer)
        grow, feather, strength = rng.choice([0, 4, -6]), rng.choice([0, 8]), rng.random()
        whole = blend_mask(mask, grow, feather)
        if whole is None:
            continue
        read = read_bounds(selection, layer, grow=grow, feather=feather, strength=strength)
        sent = blend_mask(np.ascontiguousarray(mask[read.slices]), grow, feather)
        assert sent is not None
        assert sent[1].offset(read.x, read.y) == whole[1]
        np.testing.assert_array_equal(sent[0], whole[0])
        for multiple, native_side in ((2, 512), (8, 512), (8, 1024)):
            sizing = {"strength": strength, "min_size": native_side, "multiple": multiple}
            on_layer = context_bounds(whole[1], layer.extent, **sizing)
            on_sent = context_bounds(sent[1], read.extent, **sizing)
            assert on_sent.offset(read.x, read.y) == on_layer
