"""The GIMP procedures' arguments read back into a request (the plug-in's inlayer_arguments.py),
outside GIMP: whatever GIMP hands back (None for a text kept empty, numbers an older version
saved), the request is valid or the message names the field to change.

The module is imported from a plug-in folder installed the way users install it, where it finds
`inlayer_client` beside itself; no GIMP is needed.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from inlayer.packaging.plugins import install_gimp


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The installed plug-in folder on the import path, as GIMP's Python has it."""
    profile = tmp_path_factory.mktemp("gimp-profile")
    install_gimp(profile)
    folder = str(profile / "plug-ins" / "inlayer")
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)
        for name in [name for name in sys.modules if name.startswith("inlayer_")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def arguments(installed_plugin: None) -> ModuleType:
    return importlib.import_module("inlayer_arguments")


@pytest.fixture(scope="module")
def protocol(installed_plugin: None) -> ModuleType:
    """The plug-in's own copy of the protocol, whose `Mode` the arguments module speaks."""
    return importlib.import_module("inlayer_client.protocol")


def valid_request(
    arguments: ModuleType, protocol: ModuleType, mode_value: str, values: dict[str, object]
) -> None:
    """Build the request the plug-in builds from `values` and validate it."""
    mode = arguments.Mode(mode_value)
    request = protocol.EditRequest(mode=mode, **arguments.request_fields(mode, values))
    request.image = protocol.RGBAImage(8, 8, bytes(8 * 8 * 4))
    request.mask = protocol.Mask(8, 8, b"\xff" * 64)
    request.validate()


ALL_MODES = ["inpaint", "img2img", "txt2img", "fill"]


def test_each_procedure_takes_the_arguments_its_dialog_shows(arguments: ModuleType) -> None:
    def names(mode_value: str) -> list[str]:
        return [argument.name for argument in arguments.arguments_for(arguments.Mode(mode_value))]

    prompted = ["prompt", "negative-prompt"]
    generation = ["preset", "steps", "seed", "count", "model", "lora", "vae", "grow", "feather"]
    assert names("inpaint") == [*prompted, "strength", *generation]
    assert names("img2img") == [*prompted, "strength", *generation]
    assert names("txt2img") == [*prompted, *generation]
    assert names("fill") == ["grow", "feather"]


def test_strength_starts_at_the_protocol_default_of_each_mode(arguments: ModuleType) -> None:
    def strength(mode_value: str) -> float:
        return arguments.strength_argument(arguments.Mode(mode_value)).default

    assert strength("img2img") == 0.6
    assert strength("inpaint") == 1.0


@pytest.mark.parametrize("mode_value", ALL_MODES)
def test_texts_kept_empty_come_back_as_none_and_become_empty_text(
    arguments: ModuleType, protocol: ModuleType, mode_value: str
) -> None:
    """The second GIMP session: every text argument is None; numbers are as saved."""
    mode = arguments.Mode(mode_value)
    kept = {argument.name: None for argument in arguments.arguments_for(mode)}
    kept.update(steps=2, seed=5, count=1, grow=4, feather=8)
    fields = arguments.request_fields(mode, kept)
    for text in ("prompt", "negative_prompt", "model"):
        if text in fields:
            assert fields[text] == ""
    valid_request(arguments, protocol, mode_value, kept)


@pytest.mark.parametrize("mode_value", ALL_MODES)
def test_nothing_set_at_all_gives_each_argument_its_default(
    arguments: ModuleType, protocol: ModuleType, mode_value: str
) -> None:
    mode = arguments.Mode(mode_value)
    fields = arguments.request_fields(mode, {})
    assert set(fields) == {argument.field for argument in arguments.arguments_for(mode)}
    assert fields["grow"] == 4 and fields["feather"] == 8
    valid_request(arguments, protocol, mode_value, {})


def test_numbers_an_older_version_saved_out_of_range_take_the_nearest_valid_value(
    arguments: ModuleType, protocol: ModuleType
) -> None:
    saved = {"steps": 400, "seed": -7, "count": 0, "grow": -9000, "feather": 10**6, "strength": 1.7}
    fields = arguments.request_fields(arguments.Mode.IMG2IMG, saved)
    assert fields["steps"] == arguments.MAX_STEPS
    assert fields["seed"] == -1
    assert fields["count"] == 1
    assert (fields["grow"], fields["feather"]) == (-512, 512)
    assert fields["strength"] == 1.0
    valid_request(arguments, protocol, "img2img", saved)


@pytest.mark.parametrize("wrong", [None, True, "20", math.nan, math.inf, [3]])
def test_a_value_that_is_no_number_gives_the_default(arguments: ModuleType, wrong: object) -> None:
    fields = arguments.request_fields(
        arguments.Mode.IMG2IMG, {"steps": wrong, "strength": wrong, "seed": wrong}
    )
    assert (fields["steps"], fields["strength"], fields["seed"]) == (None, 0.6, -1)


@pytest.mark.parametrize("mode_value", ["inpaint", "img2img", "txt2img"])
def test_steps_and_preset_left_at_their_defaults_are_the_devices_preset(
    arguments: ModuleType, mode_value: str
) -> None:
    """Untouched, a procedure sends neither steps nor a preset: the server applies the preset
    the device calls for."""
    fields = arguments.request_fields(arguments.Mode(mode_value), {})
    assert (fields["steps"], fields["preset"]) == (None, "")
    assert arguments.request_fields(arguments.Mode(mode_value), {"steps": 0})["steps"] is None


@pytest.mark.parametrize(
    ("saved", "preset"),
    [
        ("fast", "fast"),
        ("quality", "quality"),
        (" Fast ", "fast"),
        ("device", ""),
        ("turbo", ""),
        (None, ""),
        (3, ""),
    ],
)
def test_a_preset_is_kept_by_its_nick_and_anything_else_is_the_devices(
    arguments: ModuleType, saved: object, preset: str
) -> None:
    assert arguments.request_fields(arguments.Mode.INPAINT, {"preset": saved})["preset"] == preset


def test_a_number_saved_as_a_float_where_an_integer_is_asked_rounds(arguments: ModuleType) -> None:
    fields = arguments.request_fields(arguments.Mode.INPAINT, {"steps": 12.6, "feather": 3.2})
    assert (fields["steps"], fields["feather"]) == (13, 3)
    assert isinstance(fields["steps"], int)


def test_the_model_name_loses_surrounding_spaces_and_the_prompt_keeps_them(
    arguments: ModuleType,
) -> None:
    fields = arguments.request_fields(
        arguments.Mode.TXT2IMG, {"model": "  tiny-sd15 \n", "prompt": " a cat "}
    )
    assert fields["model"] == "tiny-sd15"
    assert fields["prompt"] == " a cat "


def test_a_prompt_too_long_names_the_field_and_the_limit(arguments: ModuleType) -> None:
    too_long = "x" * (arguments.MAX_PROMPT_CHARS + 1)
    with pytest.raises(arguments.ArgumentRefused) as refused:
        arguments.request_fields(arguments.Mode.INPAINT, {"negative-prompt": too_long})
    message = str(refused.value)
    assert message.startswith("Negative prompt is 4001 characters long")
    assert "at most 4000" in message and "shorten it" in message


@pytest.mark.parametrize("refusal", ["listed", "resolved"])
def test_a_model_the_server_lacks_names_the_field_and_the_fix(
    arguments: ModuleType, protocol: ModuleType, refusal: str
) -> None:
    server_said = {
        # The server refuses a name it does not list when the job is submitted ...
        "listed": protocol.InvalidRequest(
            "model", "'old-model' is not a model this server has: ['tiny-sd15']"
        ),
        # ... and the engine when it cannot find the model it was given.
        "resolved": protocol.ModelNotFound("model 'old-model' not found (available: tiny-sd15)"),
    }[refusal]
    explained = arguments.explain_model_refusal(server_said, "old-model")
    assert isinstance(explained, arguments.ArgumentRefused)
    message = str(explained)
    assert message.startswith("Model: the server has no model 'old-model'.")
    assert "leave Model empty for its default" in message
    assert "tiny-sd15" in message, "the server's list of models stays in the message"


def test_other_errors_and_a_missing_default_model_stay_as_the_server_said(
    arguments: ModuleType, protocol: ModuleType
) -> None:
    steps = protocol.InvalidRequest("steps", "is 0; it must be in [1, 150]")
    assert arguments.explain_model_refusal(steps, "tiny-sd15") is steps
    no_default = protocol.ModelNotFound("no model for inpaint is installed; looked in /models")
    assert arguments.explain_model_refusal(no_default, "") is no_default


def test_the_lora_is_kept_as_a_name_and_read_with_its_scale(
    arguments: ModuleType, protocol: ModuleType
) -> None:
    def loras(saved: object) -> tuple:
        return arguments.request_fields(arguments.Mode.INPAINT, {"lora": saved})["loras"]

    assert loras(None) == loras("") == loras("  ") == ()
    assert loras(" tiny-style ") == (protocol.LoraChoice("tiny-style", 1.0),)
    assert loras("tiny-style:0.5") == (protocol.LoraChoice("tiny-style", 0.5),)
    with pytest.raises(arguments.ArgumentRefused, match=r"LoRA: the scale 40 of tiny-style"):
        loras("tiny-style:40")
    saved = {"lora": "tiny-style:0.7", "vae": " full "}
    fields = arguments.request_fields(arguments.Mode.IMG2IMG, saved)
    assert fields["vae"] == "full"
    valid_request(arguments, protocol, "img2img", saved)


def test_outpaint_takes_an_aspect_ratio_or_pixels_for_each_side(
    arguments: ModuleType, protocol: ModuleType
) -> None:
    mode = arguments.Mode("outpaint")
    sides = ["extend-left", "extend-top", "extend-right", "extend-bottom"]
    assert [argument.name for argument in arguments.arguments_for(mode)] == [
        "prompt", "negative-prompt", "aspect", *sides, "preset", "steps", "seed", "count", "model",
    ]  # fmt: skip
    fields = arguments.request_fields(mode, {"aspect": " 16:9 ", "extend-right": 64})
    assert fields["aspect"] == "16:9" and fields["extend"] == (0, 0, 64, 0)

    def request(values: dict[str, object]):
        built = protocol.EditRequest(mode=mode, **arguments.request_fields(mode, values))
        built.image = protocol.RGBAImage(8, 8, bytes(8 * 8 * 4))
        return built

    request({"extend-right": 64}).validate()
    with pytest.raises(protocol.InvalidRequest) as caught:
        request({}).validate()  # nothing to grow: the dialog's defaults alone
    assert caught.value.field == "extend" and "aspect ratio" in str(caught.value)


def test_upscale_takes_a_factor_an_upscaler_and_a_refine_strength(
    arguments: ModuleType, protocol: ModuleType
) -> None:
    mode = arguments.Mode("upscale")
    names = [argument.name for argument in arguments.arguments_for(mode)]
    assert names == ["scale", "upscaler", "prompt", "refine-strength"]
    untouched = arguments.request_fields(mode, {})
    assert untouched == {"scale": 2, "upscaler": "", "prompt": "", "refine": "off"}
    fields = arguments.request_fields(
        mode, {"scale": "x4", "upscaler": " Lanczos ", "refine-strength": 0.3}
    )
    assert fields == {"scale": 4, "upscaler": "Lanczos", "prompt": "", "refine": "0.3"}
    request = protocol.EditRequest(mode=mode, **fields)
    request.image = protocol.RGBAImage(8, 8, bytes(8 * 8 * 4))
    request.validate()


def test_restore_sends_each_model_with_its_number_and_needs_one(
    arguments: ModuleType, protocol: ModuleType
) -> None:
    mode = arguments.Mode("restore")
    chosen = {"restore-faces": "gfpgan", "face-fidelity": 0.5, "denoise": "drunet"}
    fields = arguments.request_fields(mode, chosen)
    assert fields["restore_faces"] == "gfpgan:0.5"
    assert fields["denoise"] == "drunet:1" and fields["colorize"] == ""
    valid_request(arguments, protocol, "restore", chosen)
    with pytest.raises(arguments.ArgumentRefused) as refused:
        arguments.request_fields(mode, {"restore-faces": None, "face-fidelity": 0.5})
    message = str(refused.value)
    assert "Face restorer, Denoise / JPEG repair, Colorize" in message, message


def test_select_subject_has_nothing_to_choose(arguments: ModuleType) -> None:
    assert arguments.arguments_for(arguments.Mode("select")) == ()
    assert arguments.request_fields(arguments.Mode("select"), {}) == {}
