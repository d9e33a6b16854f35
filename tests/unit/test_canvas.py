"""What the plug-ins read for a request (core/client/canvas.py), for every mode and situation."""

from __future__ import annotations

import pytest

from inlayer.core.client.bounds import Bounds, Extent, read_bounds
from inlayer.core.client.canvas import (
    EMPTY_LAYER,
    NO_LAYER,
    NO_SELECTION,
    SELECTION_MISSES_LAYER,
    CanvasPlan,
    CanvasRefused,
    check_mask,
    plan_canvas,
)
from inlayer.core.client.protocol import InlayerError, Mask, Mode

IMAGE = Extent(400, 300)
# A GIMP-style layer: offset into the image and reaching past its right edge.
OFFSET_LAYER = Bounds(100, 60, 360, 200)
GROWTH = {"grow": 4, "feather": 8, "strength": 1.0}


def plan(mode: Mode, **situation: object) -> CanvasPlan:
    return plan_canvas(mode, image=IMAGE, **{**GROWTH, **situation})


@pytest.mark.parametrize("mode", [Mode.INPAINT, Mode.FILL, Mode.REMOVE])
def test_modes_that_repaint_a_selection_refuse_without_one(mode: Mode) -> None:
    with pytest.raises(CanvasRefused, match="selection is empty") as refused:
        plan(mode, source=OFFSET_LAYER, selection=None)
    assert str(refused.value) == NO_SELECTION
    assert isinstance(refused.value, InlayerError)  # plug-ins show every InlayerError as it is


def test_txt2img_without_selection_generates_the_image_size_and_reads_nothing() -> None:
    for source in (OFFSET_LAYER, None):  # no layer is needed: nothing is read
        generated = plan(Mode.TXT2IMG, source=source, selection=None)
        assert generated == CanvasPlan(Bounds(0, 0, 400, 300), read_pixels=False, read_mask=False)
        assert generated.size == IMAGE


def test_img2img_without_selection_reads_the_whole_source_where_it_lies() -> None:
    whole = plan(Mode.IMG2IMG, source=OFFSET_LAYER, selection=None)
    # The whole layer, also the part past the image's edge: the result covers the layer.
    assert whole == CanvasPlan(OFFSET_LAYER, read_pixels=True, read_mask=False)


def test_img2img_without_selection_refuses_an_empty_or_missing_source() -> None:
    with pytest.raises(CanvasRefused) as empty:
        plan(Mode.IMG2IMG, source=Bounds(500, 10, 0, 0), selection=None)
    assert str(empty.value) == EMPTY_LAYER
    with pytest.raises(CanvasRefused) as missing:
        plan(Mode.IMG2IMG, source=None, selection=None)
    assert str(missing.value) == NO_LAYER


@pytest.mark.parametrize("mode", list(Mode))
def test_a_selection_needs_a_layer_to_read_in_every_mode(mode: Mode) -> None:
    with pytest.raises(CanvasRefused) as missing:
        plan(mode, source=None, selection=Bounds(10, 10, 20, 20), selection_reach=Bounds.of(IMAGE))
    assert str(missing.value) == NO_LAYER


@pytest.mark.parametrize("mode", [mode for mode in Mode if mode != Mode.OUTPAINT])
def test_a_selection_reads_the_context_around_it_and_the_mask(mode: Mode) -> None:
    selection = Bounds(150, 100, 40, 30)
    around = plan(mode, source=OFFSET_LAYER, selection=selection)
    assert around.read_pixels and around.read_mask
    # read_bounds answers in the layer's coordinates; the plan in the image's.
    expected = read_bounds(selection, OFFSET_LAYER, **GROWTH).offset(100, 60)
    assert around.bounds == expected
    assert OFFSET_LAYER.contains(around.bounds)
    assert around.bounds.contains(selection)


def test_an_outpaint_reads_the_whole_layer_whatever_the_selection() -> None:
    whole = plan(Mode.OUTPAINT, source=OFFSET_LAYER, selection=Bounds(150, 100, 40, 30))
    assert whole == CanvasPlan(OFFSET_LAYER, read_pixels=True, read_mask=False)


def test_reading_around_a_selection_uses_the_request_growth_and_strength() -> None:
    selection = Bounds(300, 200, 8, 8)
    layer = Bounds(0, 0, 2000, 2000)
    light = plan(Mode.IMG2IMG, source=layer, selection=selection, grow=0, feather=0, strength=0.2)
    full = plan(Mode.IMG2IMG, source=layer, selection=selection, grow=40, feather=40, strength=1)
    assert full.bounds.contains(light.bounds) and full.bounds != light.bounds


def test_a_selection_partly_off_the_layer_reads_only_the_layer() -> None:
    # Sticks out of the offset layer at its top-left corner.
    selection = Bounds(80, 40, 60, 50)
    partly = plan(Mode.FILL, source=OFFSET_LAYER, selection=selection)
    assert OFFSET_LAYER.contains(partly.bounds)
    assert (partly.bounds.x, partly.bounds.y) == (100, 60), "it starts at the layer's corner"
    assert partly.bounds.contains(selection.intersection(OFFSET_LAYER))


def test_a_selection_missing_the_layer_is_refused() -> None:
    # Below and right of the layer, further than growing and feathering reach.
    with pytest.raises(CanvasRefused) as missed:
        plan(Mode.INPAINT, source=Bounds(0, 0, 100, 80), selection=Bounds(150, 120, 20, 20))
    assert str(missed.value) == SELECTION_MISSES_LAYER
    assert "select inside the layer" in str(missed.value)


def test_growing_and_feathering_can_bring_a_nearby_selection_onto_the_layer() -> None:
    layer = Bounds(0, 0, 100, 80)
    nearby = Bounds(105, 10, 10, 10)  # 5 px right of the layer
    touching = plan(Mode.INPAINT, source=layer, selection=nearby, grow=4, feather=8)
    assert layer.contains(touching.bounds) and not touching.bounds.is_empty
    with pytest.raises(CanvasRefused):
        plan(Mode.INPAINT, source=layer, selection=nearby, grow=0, feather=4)


def test_selection_reach_replaces_the_source_around_a_selection() -> None:
    # A Krita layer painted only at the top left still covers the image: reading around a
    # selection elsewhere reaches the whole image, and the source's own bounds do not matter.
    painted = Bounds(0, 0, 50, 40)
    selection = Bounds(200, 150, 30, 30)
    canvas = Bounds.of(IMAGE)
    krita = plan(Mode.INPAINT, source=painted, selection=selection, selection_reach=canvas)
    assert krita.bounds == read_bounds(selection, canvas, **GROWTH)
    assert krita.read_mask
    # ... and a selection outside the image is refused there.
    with pytest.raises(CanvasRefused):
        plan(
            Mode.INPAINT, source=painted, selection=Bounds(450, 10, 20, 20), selection_reach=canvas
        )


def test_check_mask_keeps_a_mask_with_a_selected_pixel_and_refuses_an_empty_one() -> None:
    touched = Mask(3, 2, bytes([0, 0, 0, 0, 1, 0]))
    assert check_mask(touched) is touched
    with pytest.raises(CanvasRefused) as empty:
        check_mask(Mask(3, 2, bytes(6)))
    assert str(empty.value) == SELECTION_MISSES_LAYER
