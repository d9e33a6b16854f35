"""The request/result contract: validation names the wrong field; parameters, job states and
errors round-trip through the wire."""

from __future__ import annotations

import pytest

from inlayer.core.client import protocol, wire
from inlayer.core.client.protocol import (
    ERRORS_BY_CODE,
    MAX_COUNT,
    MAX_STEPS,
    EditRequest,
    EditResult,
    FillMode,
    GeneratedImage,
    InlayerError,
    InvalidRequest,
    JobState,
    JobStatus,
    Mask,
    Mode,
    ModelNotFound,
    RGBAImage,
    TooLarge,
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


def test_every_error_class_has_its_own_code_in_the_table():
    """A class missing from ERRORS_BY_CODE, or sharing another's code, would reach a client as
    another class than the one the server raised."""
    classes = [
        value
        for value in vars(protocol).values()
        if isinstance(value, type) and issubclass(value, InlayerError)
    ]
    assert sorted(ERRORS_BY_CODE) == sorted(cls.code for cls in classes)
    assert all(ERRORS_BY_CODE[cls.code] is cls for cls in classes)


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("strength", "is 2; it must be in [0, 1]"),
        TooLarge("image", "is 9000x9000, more than this server's limit"),
        ModelNotFound("model 'x' not found"),
        InlayerError("internal error: RuntimeError('boom')"),
    ],
)
def test_a_failed_job_reaches_the_client_as_the_error_the_server_raised(error):
    status = JobStatus(
        "job",
        JobState.FAILED,
        error=error.message,
        error_code=error.code,
        error_field=error.field,
    )
    failure = wire.decode_status(wire.encode_status(status)).failure()
    assert type(failure) is type(error)
    assert (str(failure), failure.field, failure.message) == (
        str(error),
        error.field,
        error.message,
    )


def test_invalid_request_keeps_field_and_message_apart():
    error = InvalidRequest("strength", "is 2; it must be in [0, 1]")
    assert (error.field, error.message) == ("strength", "is 2; it must be in [0, 1]")
    assert str(error) == "strength: is 2; it must be in [0, 1]"


def test_job_status_round_trips_through_the_wire():
    pixels = RGBAImage(2, 1, bytes(range(8)))
    result = EditResult([GeneratedImage(pixels, 3, 4, seed=9)], {"mode": "fill"}, {}, 8, 8)
    status = JobStatus(
        "job",
        JobState.RUNNING,
        step=5,
        total=40,
        variation=1,
        queue_position=0,
        preview=RGBAImage(1, 1, b"\x01\x02\x03\xff"),
        result=result,
    )
    assert wire.decode_status(wire.encode_status(status)) == status


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
