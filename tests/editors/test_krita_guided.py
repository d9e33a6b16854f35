"""Guided edits in real Krita (5.2 and 6): an inpaint guided by a control layer (a pencil sketch
on a layer of its own) and an instruction edit each add a result layer with a transparency mask
above the source, leaving the source and the sketch untouched; a hidden or an empty control
layer is refused by name. One Krita launch runs the `guided_edits` scenario
(tests/editors/krita_scenarios.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editors.test_krita import new_krita_home, run_krita, scenario
from tests.fixtures.guided_models import TINY_CONTROLNET, TINY_INSTRUCT
from tests.fixtures.models import TINY_SD15
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

SELECTION = (16, 12, 24, 20)


@pytest.fixture(scope="module")
def guided(chroot_root: Path, guided_server: ServerProcess) -> Iterator[dict[str, Any]]:
    workspace = new_krita_home(chroot_root, guided_server)
    names = {"model": TINY_SD15, "controlnet": TINY_CONTROLNET, "instruct": TINY_INSTRUCT}
    try:
        findings = run_krita(workspace, guided_server, scenarios=["guided_edits"], guided=names)
        yield scenario(findings, "guided_edits")
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def assert_masked_result_over_the_selection(layers: list[dict[str, Any]]) -> None:
    (layer,) = layers
    assert layer["masks"] == 1, "the result has no transparency mask"
    x, y, width, height = layer["bounds"]
    sx, sy, swidth, sheight = SELECTION
    assert x <= sx and y <= sy and x + width >= sx + swidth and y + height >= sy + sheight
    mask = layer["mask"]
    centre = (sy + sheight // 2 - y) * mask["width"] + (sx + swidth // 2 - x)
    assert mask["values"][centre] == 255


def test_a_control_layer_guides_an_inpaint(guided: dict[str, Any]) -> None:
    assert_masked_result_over_the_selection(guided["controlled"])


def test_an_instruction_edit_on_a_selection(guided: dict[str, Any]) -> None:
    assert_masked_result_over_the_selection(guided["instructed"])


def test_sources_and_guide_layers_stay_untouched(guided: dict[str, Any]) -> None:
    assert guided["unchanged"] == {
        "source": True,
        "sketch": True,
        "hidden sketch": True,
        "blank": True,
    }
    # Bottom first: the two results right above the source; the refused edits added nothing.
    names = guided["names_after"]
    above_source = names[names.index("source") + 1 : names.index("source") + 3]
    assert above_source == ["make it night (seed 3)", "a portrait (seed 3)"]
    assert len([name for name in names if "(seed " in name]) == 2


def test_hidden_or_empty_control_layers_are_refused(guided: dict[str, Any]) -> None:
    assert "'hidden sketch' is hidden" in guided["refusals"]["hidden sketch"]
    assert "'blank' is empty" in guided["refusals"]["blank"]
