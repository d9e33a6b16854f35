"""The request/result contract: validation names the wrong field; parameters round-trip."""

from __future__ import annotations

import pytest

from inlayer.core.client.protocol import (
    ERRORS_BY_CODE,
    MAX_COUNT,
    MAX_STEPS,
    EditRequest,
    EditResult,
    FillMode,
    GeneratedImage,
    InvalidRequest,
    Mask,
    Mode,
    ModelLoadError,
    RGBAImage,
)


def image(width: int = 8, height: int = 6) -> RGBAImage:
    return RGBAImage(width, height, bytes(width * height * 4))


def mask(width: int = 8, height: int = 6, value: int = 255) -> Mask:
    return Mask(width, height, bytes([value]) * (width * height))


def test_a_complete_request_is_valid():
    EditRequest(Mode.INPAINT, image=image(), mask=mask(), prompt="a cat").validate()
    EditRequest(Mode.TXT2IMG, width=64, height=32).validate()
    EditRequest(Mode.IMG2IMG, image=image(), strength=0.4).validate()
    EditRequest(Mode.FILL, image=image(), mask=mask(value=1)).validate()


@pytest.mark.parametrize(
    ("request_fields", "field_name"),
    [
        ({"mode": Mode.INPAINT}, "image"),
        ({"mode": Mode.INPAINT, "image": image()}, "mask"),
        ({"mode": Mode.INPAINT, "image": image(), "mask": mask(value=0)}, "mask"),
        ({"mode": Mode.FILL, "image": image(), "mask": mask(4, 4)}, "mask"),
        ({"mode": Mode.IMG2IMG, "image": RGBAImage(8, 6, b"short")}, "image"),
        ({"mode": Mode.IMG2IMG, "image": RGBAImage(0, 6, b"")}, "image"),
        ({"mode": Mode.IMG2IMG, "image": RGBAImage(20000, 2, b"")}, "image"),
        ({"mode": Mode.IMG2IMG, "image": image(), "strength": 0.0}, "strength"),
        ({"mode": Mode.IMG2IMG, "image": image(), "strength": 1.01}, "strength"),
        ({"mode": Mode.TXT2IMG}, "width"),
        ({"mode": Mode.TXT2IMG, "width": 64, "height": 0}, "width"),
        ({"mode": Mode.TXT2IMG, "width": 64, "height": 64, "steps": 0}, "steps"),
        ({"mode": Mode.TXT2IMG, "width": 64, "height": 64, "steps": MAX_STEPS + 1}, "steps"),
        ({"mode": Mode.TXT2IMG, "width": 64, "height": 64, "count": MAX_COUNT + 1}, "count"),
        ({"mode": Mode.TXT2IMG, "width": 64, "height": 64, "seed": 2**32}, "seed"),
        ({"mode": Mode.TXT2IMG, "width": 64, "height": 64, "guidance": 99.0}, "guidance"),
        ({"mode": Mode.TXT2IMG, "width": 64, "height": 64, "scheduler": "nope"}, "scheduler"),
        ({"mode": Mode.TXT2IMG, "width": 64, "height": 64, "feather": -1}, "feather"),
        (
            {"mode": Mode.TXT2IMG, "width": 64, "height": 64, "preview_interval": -1},
            "preview_interval",
        ),
        ({"mode": Mode.TXT2IMG, "width": 64, "height": 64, "prompt": "x" * 5000}, "prompt"),
    ],
)
def test_invalid_requests_name_the_field(request_fields, field_name):
    with pytest.raises(InvalidRequest) as raised:
        EditRequest(**request_fields).validate()
    assert raised.value.field == field_name
    assert str(raised.value).startswith(f"{field_name}: ")


def test_parameters_round_trip():
    request = EditRequest(
        Mode.INPAINT, prompt="p", strength=0.5, seed=7, count=2, fill=FillMode.BLUR, grow=-3
    )
    parameters = request.parameters()
    assert parameters["mode"] == "inpaint" and parameters["fill"] == "blur"
    assert "image" not in parameters and "mask" not in parameters
    assert EditRequest.from_parameters(parameters) == request


@pytest.mark.parametrize(
    ("parameters", "field_name"),
    [
        ({"mode": "inpaint", "colour": "red"}, "colour"),
        ({"prompt": "no mode"}, "mode"),
        ({"mode": "paint"}, "mode"),
        ({"mode": "inpaint", "fill": "glitter"}, "fill"),
    ],
)
def test_bad_parameters_name_the_field(parameters, field_name):
    with pytest.raises(InvalidRequest) as raised:
        EditRequest.from_parameters(parameters)
    assert raised.value.field == field_name


def test_error_codes_map_back_to_their_classes():
    assert ERRORS_BY_CODE[ModelLoadError.code] is ModelLoadError
    assert len({cls.code for cls in ERRORS_BY_CODE.values()}) == len(ERRORS_BY_CODE)


def test_result_names_and_reproduces_each_variation() -> None:
    request = EditRequest(Mode.TXT2IMG, prompt="a  red\napple " + "x" * 60, width=8, height=8)
    pixels = RGBAImage(1, 1, bytes(4))
    first, second = GeneratedImage(pixels, 0, 0, seed=7), GeneratedImage(pixels, 0, 0, seed=8)
    result = EditResult(
        [first, second], {**request.parameters(), "seed": 7, "count": 2}, {}, 8, 8, "tiny-sd15"
    )
    name = result.layer_name(second)
    assert name.startswith("a red apple x") and name.endswith("… (seed 8)")
    assert len(name) == 48 + len(" (seed 8)")
    again = EditRequest.from_parameters(result.parameters_of(second))
    assert (again.seed, again.count, again.model) == (8, 1, "tiny-sd15")
    assert again.prompt == request.prompt
    fill = EditResult([first], {**request.parameters(), "mode": "fill"}, {}, 8, 8)
    assert fill.layer_name(first) == "Inlayer fill"
