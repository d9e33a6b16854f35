"""Properties of the geometry for any mask, size, grow and feather (Hypothesis).

The promise an artist relies on: an edit never touches a pixel outside the grown, feathered
selection. Checked end to end through the engine (with the weight-free fill, which needs no
model), and on the pieces it is built from: the blend mask and the composite.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from inlayer.core.client.bounds import Bounds, Extent, context_bounds
from inlayer.core.client.protocol import (
    EditRequest,
    FillMode,
    InvalidRequest,
    Mask,
    Mode,
    RGBAImage,
)
from inlayer.core.engine import Engine
from inlayer.core.geometry import blend_mask, composite, nonzero_bounds
from inlayer.core.models import ModelRegistry

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def soft_masks(draw: st.DrawFn, max_side: int = 80) -> np.ndarray:
    """An HxW uint8 mask: a rectangle of one grey value, specks elsewhere, or nothing at all."""
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    mask = np.zeros((height, width), np.uint8)
    x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
    w, h = draw(st.integers(1, width - x)), draw(st.integers(1, height - y))
    mask[y : y + h, x : x + w] = draw(st.integers(0, 255))
    for _ in range(draw(st.integers(0, 4))):
        mask[draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))] = draw(
            st.integers(1, 255)
        )
    return mask


def reach(mask: np.ndarray, grow: int, feather: int) -> np.ndarray:
    """True where an edit may change pixels: within max(grow, 0) + feather px (Chebyshev) of a
    selected pixel."""
    selected = nonzero_bounds(mask)
    allowed = np.zeros(mask.shape, bool)
    if selected is None:
        return allowed
    margin = max(grow, 0) + feather
    ys, xs = np.nonzero(mask)
    for y, x in zip(ys, xs, strict=True):
        allowed[max(y - margin, 0) : y + margin + 1, max(x - margin, 0) : x + margin + 1] = True
    return allowed


@given(mask=soft_masks(), grow=st.integers(-12, 12), feather=st.integers(0, 12))
@PROPERTY_SETTINGS
def test_the_blend_mask_stays_within_grow_plus_feather_of_the_selection(mask, grow, feather):
    blended = blend_mask(mask, grow, feather)
    full = np.zeros(mask.shape, np.uint8)
    if blended is not None:
        blend, bounds = blended
        assert bounds.clamp(Extent(mask.shape[1], mask.shape[0])) == bounds
        assert blend.shape == (bounds.height, bounds.width)
        assert nonzero_bounds(blend) == Bounds(0, 0, bounds.width, bounds.height)
        full[bounds.slices] = blend
    assert not full[~reach(mask, grow, feather)].any()
    if grow >= 0 and mask.any():  # nothing selected is lost when nothing is shrunk
        assert blended is not None


@given(
    original=hnp.arrays(np.uint8, st.tuples(st.integers(1, 24), st.integers(1, 24), st.just(4))),
    data=st.data(),
)
@PROPERTY_SETTINGS
def test_the_composite_keeps_unblended_pixels_and_takes_fully_blended_ones(original, data):
    shape = original.shape[:2]
    generated = data.draw(hnp.arrays(np.uint8, (*shape, 3)))
    blend = data.draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from([0, 255, 1, 128])))
    result = composite(original, generated, blend)
    untouched, replaced = blend == 0, blend == 255
    assert np.array_equal(result[untouched], original[untouched])
    assert np.array_equal(result[replaced][:, :3], generated[replaced])
    assert (result[replaced][:, 3] == 255).all()


@given(
    mask=soft_masks(max_side=300),
    strength=st.floats(0, 1),
    min_size=st.sampled_from([64, 512, 1024]),
    multiple=st.sampled_from([1, 2, 8, 64]),
)
@PROPERTY_SETTINGS
def test_the_context_holds_the_mask_bounds_inside_the_canvas(mask, strength, min_size, multiple):
    canvas = Extent(mask.shape[1], mask.shape[0])
    mask_bounds = nonzero_bounds(mask) or Bounds(0, 0, 0, 0)
    context = context_bounds(
        mask_bounds, canvas, strength=strength, min_size=min_size, multiple=multiple
    )
    assert context.clamp(canvas) == context
    assert context.contains(mask_bounds.clamp(canvas))
    for side, canvas_side in ((context.width, canvas.width), (context.height, canvas.height)):
        assert side == canvas_side or side % multiple == 0


_fill_engine = Engine(ModelRegistry())


@given(
    mask=soft_masks(max_side=64),
    grow=st.integers(-8, 8),
    feather=st.integers(0, 8),
    fill=st.sampled_from([FillMode.TELEA, FillMode.BLUR, FillMode.NEUTRAL, FillMode.NOISE]),
    data=st.data(),
)
@PROPERTY_SETTINGS
def test_an_edit_changes_no_pixel_outside_the_grown_feathered_selection(
    mask, grow, feather, fill, data
):
    """Through the engine, as a plug-in's request runs: the result layer, laid over the canvas,
    leaves every pixel out of reach bit-identical, wherever the mask is and whatever its size."""
    height, width = mask.shape
    canvas = data.draw(hnp.arrays(np.uint8, (height, width, 4)))
    request = EditRequest(
        Mode.FILL,
        image=RGBAImage(width, height, canvas.tobytes()),
        mask=Mask(width, height, mask.tobytes()),
        grow=grow,
        feather=feather,
        fill=fill,
        seed=data.draw(st.integers(0, 2**32 - 1)),
    )
    if not mask.any():
        return  # an empty selection is refused before any work; tests/unit/test_engine.py
    try:
        result = _fill_engine.run(request)
    except InvalidRequest as error:  # a selection shrunk to nothing is refused, naming grow
        assert grow < 0 and error.field == "grow", error
        return
    (generated,) = result.images
    layer = np.frombuffer(generated.image.data, np.uint8).reshape(
        generated.image.height, generated.image.width, 4
    )
    where = Bounds(generated.x, generated.y, generated.image.width, generated.image.height)
    shown = canvas.copy()
    shown[where.slices] = composite(canvas[where.slices], layer, layer[..., 3])
    changed = (shown != canvas).any(axis=2)
    assert not changed[~reach(mask, grow, feather)].any()
