"""End-to-end: outpaint to 16:9 in real GIMP 3 and real Krita, through a real server with the
tiny random-weight models. The canvas grows to 16:9 around the layer, one result layer covers
the grown canvas, transparent over the original, and the source layer keeps its pixels."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.editors.test_gimp import (
    RUN,
    new_gimp_workspace,
    run_gimp_session,
    scenario,
)
from tests.editors.test_krita import new_krita_home, run_krita
from tests.fixtures.models import TINY_SD15

if TYPE_CHECKING:
    from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

# A 96x72 (4:3) layer grown to 16:9: 128x72, 16 px on the left and on the right.
WIDTH, HEIGHT = 96, 72
GROWN = [128, 72]
LEFT = 16


@pytest.fixture(scope="module")
def gimp_outpaint(chroot_root: Path, inlayer_server: ServerProcess) -> Iterator[dict]:
    workspace = new_gimp_workspace(chroot_root)
    image = {"width": WIDTH, "height": HEIGHT, "layer": {"x": 0, "y": 0, "width": 96, "height": 72}}
    scenarios = [
        {
            "name": "outpaint_16_9",
            "server": {"url": inlayer_server.url, "token": inlayer_server.token},
            "image": image,
            "procedure": "inlayer-outpaint",
            "args": {**RUN, "prompt": "a beach", "aspect": "16:9", "model": TINY_SD15},
        },
        {
            "name": "outpaint_wide",
            "image": image,
            "procedure": "inlayer-outpaint",
            "args": {**RUN, "prompt": "a beach", "aspect": "wide", "model": TINY_SD15},
        },
    ]
    try:
        yield run_gimp_session(workspace, scenarios)
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_gimp_outpaint_to_16_9_grows_the_canvas_and_adds_one_layer(gimp_outpaint: dict) -> None:
    seen = scenario(gimp_outpaint, "outpaint_16_9")
    assert seen["before"]["image_size"] == [WIDTH, HEIGHT]
    assert seen["after"]["image_size"] == GROWN
    # One layer added on top; the source's pixels unchanged (the selection grew with the canvas).
    assert seen["after"]["layers"][1:] == seen["before"]["layers"]
    assert seen["after"]["source"] == seen["before"]["source"], "the source layer's pixels changed"
    assert seen["after"]["source_offsets"] == [LEFT, 0]  # moved with the canvas
    (result,) = seen["results"]
    assert [result["x"], result["y"], result["width"], result["height"]] == [0, 0, *GROWN]
    assert result["parasite"]["mode"] == "outpaint"
    assert "inconsistent state" not in gimp_outpaint["output"]  # one closed undo group


def test_gimp_outpaint_to_a_word_is_refused_and_changes_nothing(gimp_outpaint: dict) -> None:
    seen = scenario(gimp_outpaint, "outpaint_wide", status="EXECUTION-ERROR")
    assert "aspect" in seen["error"] and "16:9" in seen["error"], seen["error"]
    assert seen["after"]["image_size"] == [WIDTH, HEIGHT]
    assert seen["after"]["layers"] == seen["before"]["layers"]


@pytest.fixture(scope="module")
def krita_outpaint(chroot_root: Path, inlayer_server: ServerProcess) -> Iterator[dict[str, Any]]:
    workspace = new_krita_home(chroot_root, inlayer_server)
    try:
        found = run_krita(workspace, inlayer_server, scenarios=["outpaint_16_9"])
        yield found["outpaint_16_9"]
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_krita_outpaint_to_16_9_grows_the_canvas_and_adds_one_layer(
    krita_outpaint: dict[str, Any],
) -> None:
    found = krita_outpaint
    assert "crash" not in found, found.get("crash")
    assert found["size"] == GROWN
    assert found["names_after"] == [*found["names_before"], found["layers"][0]["name"]]
    (layer,) = found["layers"]
    assert layer["bounds"] == [0, 0, *GROWN] and layer["type"] == "paintlayer"
    assert found["source_unchanged"]
    assert found["source_bounds"] == [LEFT, 0, WIDTH, HEIGHT]


def test_krita_outpaint_is_two_undo_steps_the_layer_then_the_canvas(
    krita_outpaint: dict[str, Any],
) -> None:
    """Krita's Python API has no undo grouping (docs/canvas.md): one Ctrl+Z takes the result
    layer away, the next one gives the canvas its size back."""
    first, second = krita_outpaint["undone"]
    assert first == {"size": GROWN, "names": krita_outpaint["names_before"]}
    assert second == {"size": [WIDTH, HEIGHT], "names": krita_outpaint["names_before"]}
