"""ControlNets end to end on tiny random-weight models: every mode, both families, a single
file, several at once, the control maps, registration under crop and scale, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inlayer.core.client.bounds import Bounds
from inlayer.core.client.protocol import (
    AddOnKind,
    ControlChoice,
    EditRequest,
    FillMode,
    InvalidRequest,
    Mask,
    Mode,
    RGBAImage,
)
from inlayer.core.client.wire import decode_request, encode_request
from inlayer.core.controlnets import control_pixels
from inlayer.core.engine import Engine, prepare
from inlayer.core.models import ModelRegistry
from inlayer.core.preprocessors import control_map
from tests.fixtures.guided_models import (
    TINY_CONTROLNET,
    TINY_CONTROLNET_SDXL,
    TINY_CONTROLNET_SINGLE,
)
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING, TINY_SDXL

WIDTH, HEIGHT = 64, 48
MASK_BOUNDS = Bounds(16, 10, 24, 20)


def canvas() -> RGBAImage:
    pixels = np.random.default_rng(3).integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return RGBAImage(WIDTH, HEIGHT, pixels.tobytes())


def sketch(width: int = WIDTH, height: int = HEIGHT) -> RGBAImage:
    """Dark pencil lines on white paper: a cross."""
    pixels = np.full((height, width, 4), 255, dtype=np.uint8)
    pixels[height // 4 : 3 * height // 4, width // 2 - 1 : width // 2 + 1, :3] = 20
    pixels[height // 2 - 1 : height // 2 + 1, width // 4 : 3 * width // 4, :3] = 20
    return RGBAImage(width, height, pixels.tobytes())


def request_of(mode: Mode, model: str, controls: tuple[ControlChoice, ...] = ()) -> EditRequest:
    mask = None
    if mode == Mode.INPAINT:
        pixels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
        pixels[MASK_BOUNDS.slices] = 255
        mask = Mask(WIDTH, HEIGHT, pixels.tobytes())
    return EditRequest(
        mode=mode,
        image=canvas(),
        mask=mask,
        prompt="a portrait",
        steps=2,
        seed=5,
        model=model,
        strength=0.8 if mode == Mode.IMG2IMG else 1.0,
        preset="quality",
        controls=controls,
    )


@pytest.fixture(scope="module")
def engine(tiny_models_dir, tiny_guides_dir) -> Engine:
    return Engine(ModelRegistry([tiny_models_dir, tiny_guides_dir]))


def pixels_of(engine: Engine, request: EditRequest) -> bytes:
    result = engine.run(request)
    assert len(result.images) == 1
    return result.images[0].image.data


MODELS_AND_CONTROLNETS = [
    (TINY_SD15, TINY_CONTROLNET),
    (TINY_SD15_INPAINTING, TINY_CONTROLNET_SINGLE),
    (TINY_SDXL, TINY_CONTROLNET_SDXL),
]


@pytest.mark.parametrize(("model", "controlnet"), MODELS_AND_CONTROLNETS)
@pytest.mark.parametrize("mode", [Mode.TXT2IMG, Mode.IMG2IMG, Mode.INPAINT])
def test_a_control_changes_the_result_and_weight_zero_is_no_control(
    engine, mode, model, controlnet
):
    plain = pixels_of(engine, request_of(mode, model))
    control = ControlChoice(controlnet, sketch(), preprocessor="scribble")
    guided_request = request_of(mode, model, (control,))
    guided = engine.run(guided_request)
    zero = pixels_of(
        engine, request_of(mode, model, (ControlChoice(controlnet, sketch(), "scribble", 0.0),))
    )
    assert guided.images[0].image.data != plain
    assert zero == plain
    if mode == Mode.INPAINT:  # the result still covers only the mask bounds
        image = guided.images[0]
        assert (image.image.width, image.image.height) != (WIDTH, HEIGHT)
    assert guided.parameters["controls"][0]["model"] == controlnet
    json.dumps(guided.parameters)  # JSON-ready: the control image described, not inlined


def test_two_controls_act_together(engine):
    one = ControlChoice(TINY_CONTROLNET, sketch(), "scribble")
    two = ControlChoice(TINY_CONTROLNET_SINGLE, sketch(), "canny", 0.8, 0.0, 0.5)
    alone = pixels_of(engine, request_of(Mode.TXT2IMG, TINY_SD15, (one,)))
    both = pixels_of(engine, request_of(Mode.TXT2IMG, TINY_SD15, (one, two)))
    assert alone != both


def test_control_steps_window_matters(engine):
    control = ControlChoice(TINY_CONTROLNET, sketch(), "scribble")
    late = ControlChoice(TINY_CONTROLNET, sketch(), "scribble", 1.0, 0.5, 1.0)
    whole = pixels_of(engine, request_of(Mode.TXT2IMG, TINY_SD15, (control,)))
    assert pixels_of(engine, request_of(Mode.TXT2IMG, TINY_SD15, (late,))) != whole


def test_control_image_of_another_size_is_scaled_and_said_so(engine):
    control = ControlChoice(TINY_CONTROLNET, sketch(WIDTH * 2, HEIGHT * 2), "scribble")
    result = engine.run(request_of(Mode.TXT2IMG, TINY_SD15, (control,)))
    assert "controls[0].image 128x96 was scaled to the canvas's 64x48" in result.hint


def test_controlnets_are_listed(engine):
    listed = {a.name: a for a in engine.registry.add_ons() if a.kind == AddOnKind.CONTROLNET}
    assert listed[TINY_CONTROLNET].family == "sd15"
    assert listed[TINY_CONTROLNET_SINGLE].family == "sd15"
    assert listed[TINY_CONTROLNET_SDXL].family == "sdxl"


def test_a_controlnet_of_another_family_is_refused_naming_both(engine):
    control = ControlChoice(TINY_CONTROLNET_SDXL, sketch())
    with pytest.raises(InvalidRequest) as caught:
        engine.run(request_of(Mode.TXT2IMG, TINY_SD15, (control,)))
    assert caught.value.field == "controls[0].model"
    assert TINY_CONTROLNET_SDXL in caught.value.message and "sdxl" in caught.value.message
    assert TINY_SD15 in caught.value.message and "sd15" in caught.value.message


def test_an_unknown_controlnet_says_what_is_installed(engine):
    control = ControlChoice("no-such-controlnet", sketch())
    with pytest.raises(InvalidRequest) as caught:
        engine.run(request_of(Mode.TXT2IMG, TINY_SD15, (control,)))
    assert caught.value.field == "controls[0].model"
    assert TINY_CONTROLNET in caught.value.message


@pytest.mark.parametrize(
    ("control", "field"),
    [
        (ControlChoice(TINY_CONTROLNET, sketch(), preprocessor="hed"), "controls[0].preprocessor"),
        (ControlChoice(TINY_CONTROLNET, RGBAImage(4, 4, bytes(64))), "controls[0].image"),
        (
            ControlChoice(TINY_CONTROLNET, RGBAImage(4, 4, b"\xff" * 64)),
            "controls[0].image",
        ),
        (ControlChoice(TINY_CONTROLNET, sketch(), weight=3.0), "controls[0].weight"),
        (ControlChoice(TINY_CONTROLNET, sketch(), start=0.6, end=0.5), "controls[0].start"),
        (ControlChoice("", sketch()), "controls[0].model"),
    ],
)
def test_bad_controls_name_the_field(control, field):
    with pytest.raises(InvalidRequest) as caught:
        request_of(Mode.TXT2IMG, TINY_SD15, (control,)).validate()
    assert caught.value.field == field


def test_fill_takes_no_control():
    request = request_of(Mode.INPAINT, TINY_SD15, (ControlChoice(TINY_CONTROLNET, sketch()),))
    with pytest.raises(InvalidRequest) as caught:
        EditRequest(**{**request.__dict__, "mode": Mode.FILL}).validate()
    assert caught.value.field == "controls"


def test_controls_travel_in_the_envelope_as_blobs():
    controls = (
        ControlChoice(TINY_CONTROLNET, sketch(), "canny", 0.7, 0.1, 0.9),
        ControlChoice(TINY_CONTROLNET_SINGLE, sketch(32, 24), "scribble"),
    )
    request = request_of(Mode.INPAINT, TINY_SD15, controls)
    envelope = encode_request(request)
    header_length = int.from_bytes(envelope[4:8], "little")
    assert b"control_images" in envelope[8 : 8 + header_length]
    assert len(envelope) > len(sketch().data) + len(sketch(32, 24).data)
    assert decode_request(envelope).controls == controls


def test_a_control_without_its_image_is_refused_on_the_wire():
    params = request_of(Mode.TXT2IMG, TINY_SD15, (ControlChoice(TINY_CONTROLNET, sketch()),))
    with pytest.raises(InvalidRequest) as caught:
        EditRequest.from_parameters(params.parameters(), image=canvas())
    assert caught.value.field == "controls[0].image"


# --- registration and control maps ------------------------------------------------------------


@pytest.mark.parametrize("mode", [Mode.INPAINT, Mode.IMG2IMG, Mode.TXT2IMG])
def test_the_control_image_stays_registered_with_the_canvas_under_crop_and_scale(mode):
    """A control image equal to the canvas comes out pixel for pixel equal to what the pipeline
    gets of the canvas: the same context, the same working extent, the same resizing."""
    width, height = 300, 200
    pixels = np.random.default_rng(9).integers(0, 256, (height, width, 4), dtype=np.uint8)
    image = RGBAImage(width, height, pixels.tobytes())
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[120:150, 200:260] = 255
    request = EditRequest(
        mode=mode,
        image=image,
        mask=Mask(width, height, mask.tobytes()),
        strength=0.7 if mode == Mode.IMG2IMG else 1.0,
        fill=FillMode.KEEP,
        controls=(ControlChoice(TINY_CONTROLNET, image),),
    )
    placement, pipeline_input = prepare(
        request, multiple=8, native_side=64, fill=FillMode.KEEP, seed=0
    )
    assert placement.context.extent != pipeline_input.working  # scaled
    assert placement.context != Bounds(0, 0, width, height)  # cropped
    control = control_pixels(
        request.controls[0], placement.canvas, placement.context.slices, pipeline_input.working
    )
    assert control.shape[:2] == (pipeline_input.working.height, pipeline_input.working.width)
    if pipeline_input.image is not None:
        np.testing.assert_array_equal(control[..., :3], pipeline_input.image)
    # A mark at one canvas pixel lands where that pixel lands in the working image.
    marked = np.zeros((height, width, 4), dtype=np.uint8)
    marked[135, 230] = 255
    choice = ControlChoice(TINY_CONTROLNET, RGBAImage(width, height, marked.tobytes()))
    moved = control_pixels(
        choice, placement.canvas, placement.context.slices, pipeline_input.working
    )
    row, column = np.unravel_index(np.argmax(moved[..., 0]), moved.shape[:2])
    context = placement.context
    scale_x = pipeline_input.working.width / context.width
    scale_y = pipeline_input.working.height / context.height
    assert abs(column - (230 - context.x + 0.5) * scale_x) <= 1.0
    assert abs(row - (135 - context.y + 0.5) * scale_y) <= 1.0


def drawing() -> np.ndarray:
    pixels = np.frombuffer(sketch(128, 96).data, dtype=np.uint8).reshape(96, 128, 4)
    return pixels.copy()


@pytest.mark.parametrize(
    ("preprocessor", "reach"), [("canny", 6), ("scribble", 6), ("lineart", 6), ("softedge", 12)]
)
def test_line_maps_put_white_lines_on_black_where_the_drawing_has_its_lines(preprocessor, reach):
    """The cross of `sketch` spans rows 24-72 at columns 63-64 and columns 32-96 at rows
    47-48; a map is bright on it and dark further than `reach` px from it (soft edges fade)."""
    result = control_map(drawing(), preprocessor, [], "controls[0].preprocessor")
    assert result.shape == (96, 128, 3) and result.dtype == np.uint8
    lines = result[..., 0]
    near_the_cross = np.zeros(lines.shape, dtype=bool)
    near_the_cross[24 - reach : 72 + reach, 63 - reach : 65 + reach] = True
    near_the_cross[47 - reach : 49 + reach, 32 - reach : 96 + reach] = True
    assert lines[near_the_cross].max() >= 200
    assert lines[~near_the_cross].max() <= 60  # nothing far from the lines
    assert (lines > 127).mean() < 0.2


def test_scribble_strokes_are_bolder_than_line_art():
    scribble = control_map(drawing(), "scribble", [], "f")[..., 0]
    lineart = control_map(drawing(), "lineart", [], "f")[..., 0]
    assert (scribble > 127).sum() > (lineart > 127).sum() > 0


def test_none_takes_the_map_as_it_is_with_transparency_black():
    pixels = drawing()
    pixels[:10, :, 3] = 0
    result = control_map(pixels, "none", [], "f")
    np.testing.assert_array_equal(result[10:], pixels[10:, :, :3])
    assert result[:10].max() == 0


def test_depth_uses_the_installed_estimator(tiny_guides_dir):
    result = control_map(drawing(), "depth", [tiny_guides_dir], "controls[0].preprocessor")
    assert result.shape == (96, 128, 3)
    assert result.max() == 255 and result.min() == 0  # normalised, near = bright


def test_depth_without_an_estimator_says_how_to_get_one(tmp_path):
    with pytest.raises(InvalidRequest) as caught:
        control_map(drawing(), "depth", [tmp_path], "controls[0].preprocessor")
    assert caught.value.field == "controls[0].preprocessor"
    assert "inlayer models pull depth-anything-small" in caught.value.message
