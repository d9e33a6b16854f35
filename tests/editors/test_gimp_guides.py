"""The GIMP plug-in's guide and instruction arguments (inlayer_guides.py, inlayer_instruct.py)
read back into a request, outside GIMP, from a plug-in folder installed as users install it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from inlayer.core.client.protocol import AddOnInfo, AddOnKind, Mode, RGBAImage
from inlayer.packaging.plugins import install_gimp

SKETCH = RGBAImage(2, 1, bytes((0, 0, 0, 255, 255, 255, 255, 0)))


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    profile = tmp_path_factory.mktemp("gimp-profile")
    install_gimp(profile)
    folder = str(profile / "plug-ins" / "inlayer")
    sys.path.insert(0, folder)
    try:
        yield {
            name: importlib.import_module(name)
            for name in (
                "inlayer_guides",
                "inlayer_instruct",
                "inlayer_arguments",
                "inlayer_client.protocol",
            )
        }
    finally:
        sys.path.remove(folder)
        for name in [name for name in sys.modules if name.startswith("inlayer_")]:
            del sys.modules[name]


def controlnets(*names: str) -> list:
    return [AddOnInfo(name, AddOnKind.CONTROLNET, "sd15", name) for name in names]


def test_a_control_layer_becomes_a_control_with_its_type_and_weight(plugin):
    guides = plugin["inlayer_guides"]
    values = {"control-type": "lineart", "control-model": "", "control-weight": 0.7}
    add_ons = controlnets("control_v11p_sd15_scribble", "control_v11p_sd15_lineart")
    fields = guides.guide_fields(values, SKETCH, None, add_ons)
    (control,) = fields["controls"]
    assert (control.model, control.preprocessor, control.weight) == (
        "control_v11p_sd15_lineart",
        "lineart",
        0.7,
    )
    assert "style" not in fields


def test_values_gimp_hands_back_empty_or_out_of_range_take_defaults(plugin):
    guides = plugin["inlayer_guides"]
    values = {"control-type": None, "control-model": None, "control-weight": 9.0}
    fields = guides.guide_fields(values, SKETCH, SKETCH, controlnets("only-one"))
    (control,) = fields["controls"]
    assert (control.model, control.preprocessor, control.weight) == ("only-one", "scribble", 2.0)
    assert fields["style"].scale == 0.6 and fields["style"].image == SKETCH


def test_a_control_layer_without_any_controlnet_on_the_server_is_refused(plugin):
    guides = plugin["inlayer_guides"]
    refused = plugin["inlayer_client.protocol"].InvalidRequest
    with pytest.raises(refused, match="inlayer models pull controlnet-scribble-sd15"):
        guides.guide_fields({}, SKETCH, None, [])


def test_an_empty_guide_layer_is_refused_by_name(plugin):
    guides = plugin["inlayer_guides"]
    with pytest.raises(guides.GuideRefused, match="control layer 'sketch' is empty"):
        guides.check_guide_pixels("_Control layer", "sketch", RGBAImage(1, 1, bytes(4)))


def test_which_procedures_take_which_guides(plugin):
    guides = plugin["inlayer_guides"]
    for mode in (Mode.INPAINT, Mode.IMG2IMG, Mode.TXT2IMG):
        assert [a.name for a in guides.layer_arguments(mode)] == ["control-layer", "style-layer"]
    assert [a.name for a in guides.layer_arguments(Mode.EDIT)] == ["style-layer"]
    assert guides.layer_arguments(Mode.FILL) == ()


def test_the_instruction_procedure_reads_into_an_edit_request(plugin):
    arguments = plugin["inlayer_arguments"]
    instruct = plugin["inlayer_instruct"]
    names = [a.name for a in arguments.arguments_for(Mode.EDIT)]
    assert names[:3] == ["prompt", "negative-prompt", "image-guidance"]
    fields = arguments.request_fields(
        Mode.EDIT, {"prompt": "turn it into night", "image-guidance": 99.0, "steps": 2}
    )
    assert fields["prompt"] == "turn it into night" and fields["steps"] == 2
    assert fields["image_guidance"] == instruct.IMAGE_GUIDANCE.maximum
