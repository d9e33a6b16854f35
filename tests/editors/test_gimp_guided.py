"""Guided edits in real GIMP 3: Inpaint Selection with a control layer (a pencil sketch on a
layer of its own) and Edit with Instruction on a selection each add a masked result layer and
leave the source and the sketch untouched; a hidden or empty control layer is refused with the
image as it was. One GIMP session runs every scenario (tests/editors/gimp_scenarios.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.editors.chroot import ChrootWorkspace
from tests.editors.test_gimp import (
    assert_added_above_source,
    assert_image_untouched,
    mask_at,
    new_gimp_workspace,
    run_gimp_session,
    scenario,
)
from tests.fixtures.guided_models import TINY_CONTROLNET, TINY_INSTRUCT
from tests.fixtures.models import TINY_SD15
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

SELECTION = [16, 12, 24, 20]
RUN = {"steps": 2, "seed": 1234, "preset": "quality"}


def image_with(*guides: dict) -> dict:
    return {
        "width": 64,
        "height": 48,
        "layer": {"x": 0, "y": 0, "width": 64, "height": 48},
        "selection": {"rect": SELECTION},
        "guides": list(guides),
    }


@pytest.fixture(scope="module")
def guided_run(chroot_root: Path, guided_server: ServerProcess) -> Iterator[dict]:
    workspace: ChrootWorkspace = new_gimp_workspace(chroot_root)
    good = {"url": guided_server.url, "token": guided_server.token}
    control = {
        **RUN,
        "prompt": "a portrait",
        "model": TINY_SD15,
        "control-model": TINY_CONTROLNET,
        "control-type": "scribble",
        "control-weight": 1.0,
    }
    scenarios = [
        {
            "name": "inpaint_with_control_layer",
            "server": good,
            "image": image_with({"name": "sketch"}),
            "procedure": "inlayer-inpaint",
            "args": control,
            "layer_args": {"control-layer": "sketch"},
        },
        {
            "name": "edit_with_instruction_in_selection",
            "server": good,
            "image": image_with(),
            "procedure": "inlayer-edit",
            "args": {**RUN, "prompt": "make it night", "model": TINY_INSTRUCT},
        },
        {
            "name": "hidden_control_layer",
            "server": good,
            "image": image_with({"name": "sketch", "hidden": True}),
            "procedure": "inlayer-inpaint",
            "args": control,
            "layer_args": {"control-layer": "sketch"},
        },
        {
            "name": "empty_control_layer",
            "server": good,
            "image": image_with({"name": "blank", "empty": True}),
            "procedure": "inlayer-inpaint",
            "args": control,
            "layer_args": {"control-layer": "blank"},
        },
    ]
    try:
        yield run_gimp_session(workspace, scenarios)
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def assert_masked_result(seen: dict) -> None:
    assert_added_above_source(seen, 1)
    assert seen["after"]["guides"] == seen["before"]["guides"], "a guide layer changed"
    (result,) = seen["results"]
    assert result["mask"] is not None, "the result has no layer mask"
    x, y, width, height = SELECTION
    assert mask_at(result, x + width // 2, y + height // 2) == 255
    assert mask_at(result, result["x"], result["y"]) < 255  # the feathered edge


def test_a_control_layer_guides_an_inpaint(guided_run: dict) -> None:
    seen = scenario(guided_run, "inpaint_with_control_layer")
    assert_masked_result(seen)
    (result,) = seen["results"]
    assert result["parasite"]["controls"][0]["model"] == TINY_CONTROLNET
    assert result["parasite"]["controls"][0]["preprocessor"] == "scribble"


def test_edit_with_instruction_on_a_selection(guided_run: dict) -> None:
    seen = scenario(guided_run, "edit_with_instruction_in_selection")
    assert_masked_result(seen)
    (result,) = seen["results"]
    assert result["parasite"]["mode"] == "edit"
    assert result["parasite"]["prompt"] == "make it night"


@pytest.mark.parametrize(
    ("name", "words"),
    [("hidden_control_layer", "'sketch' is hidden"), ("empty_control_layer", "'blank' is empty")],
)
def test_hidden_or_empty_control_layers_are_refused(guided_run: dict, name: str, words: str):
    seen = scenario(guided_run, name, status="EXECUTION-ERROR")
    assert words in seen["error"]
    assert_image_untouched(seen)
    assert seen["after"]["guides"] == seen["before"]["guides"]
