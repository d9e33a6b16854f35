"""Which layers GIMP's plug-in takes as its source, in real GIMP 3.0 and 3.2.

GIMP 3.2's text, vector and link layers (and 3.0's text layers) are read as pixels, as shown;
they stay what they are (never rasterized, pixels unchanged) and the result is a new layer. A
layer group, a hidden layer and a layer in a hidden group are refused with a message saying
what to select instead, leaving the image as it was; txt2img reads no pixels, so a hidden layer
only marks where its result goes. One GIMP session (with fonts, for the text layer) per editor
generation runs every scenario.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from inlayer.core.client.bounds import Bounds
from tests.editors.chroot import ChrootWorkspace, EditorChroot
from tests.editors.test_gimp import (
    RUN,
    assert_added_above_source,
    assert_image_untouched,
    layer_bounds,
    new_gimp_workspace,
    run_gimp_session,
    scenario,
)
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING

if TYPE_CHECKING:
    from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

CANVAS = {"width": 96, "height": 80, "layer": {"x": 0, "y": 0, "width": 96, "height": 80}}
SELECTION = {"rect": [10, 6, 30, 20]}
# GIMP's class of each rendered source, and the first GIMP that has it.
RENDERED = {
    "text": ("TextLayer", (3, 0)),
    "vector": ("VectorLayer", (3, 2)),
    "link": ("LinkLayer", (3, 2)),
}
READ_AS_PIXELS = {
    # source kind: (procedure, arguments, with a selection)
    "text": ("inlayer-inpaint", {**RUN, "prompt": "letters", "model": TINY_SD15_INPAINTING}, True),
    "vector": ("inlayer-img2img", {**RUN, "prompt": "a shape", "model": TINY_SD15}, False),
    "link": ("inlayer-fill", {}, True),
}
REFUSED = {
    # source kind: (procedure, what the message says)
    "group": ("inlayer-inpaint", "'source' is a layer group: select one of its layers"),
    "hidden": ("inlayer-img2img", "The layer 'source' is hidden: show it"),
    "in_hidden_group": ("inlayer-fill", "(its group 'hidden-group' is hidden)"),
}


def gimp_version(chroot: EditorChroot) -> tuple[int, int]:
    major, minor = (chroot.package_version("gimp") or "0.0").split(".")[:2]
    return int(major), int(minor)


def _scenarios(server: ServerProcess, version: tuple[int, int]) -> list[dict]:
    good = {"url": server.url, "token": server.token}
    scenarios = []
    for kind, (procedure, args, selected) in READ_AS_PIXELS.items():
        if version < RENDERED[kind][1]:
            continue
        image = {**CANVAS, "source": kind, **({"selection": SELECTION} if selected else {})}
        scenarios.append(
            {"name": kind, "server": good, "image": image, "procedure": procedure, "args": args}
        )
    for kind, (procedure, _words) in REFUSED.items():
        image = {**CANVAS, "source": kind, "selection": SELECTION}
        args = {} if procedure == "inlayer-fill" else RUN  # fill has no steps or seed
        scenarios.append(
            {"name": kind, "server": good, "image": image, "procedure": procedure, "args": args}
        )
    scenarios.append(
        {
            "name": "hidden_txt2img",
            "server": good,
            "image": {**CANVAS, "source": "hidden", "selection": SELECTION},
            "procedure": "inlayer-txt2img",
            "args": {**RUN, "prompt": "a cat", "model": TINY_SD15},
        }
    )
    return scenarios


@pytest.fixture(scope="module")
def sources_run(editor_chroot: EditorChroot, inlayer_server: ServerProcess) -> Iterator[dict]:
    workspace: ChrootWorkspace = new_gimp_workspace(editor_chroot.root)
    try:
        scenarios = _scenarios(inlayer_server, gimp_version(editor_chroot))
        yield run_gimp_session(workspace, scenarios, fonts=True)
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


@pytest.mark.parametrize("kind", list(READ_AS_PIXELS))
def test_rendered_layers_are_read_as_pixels_and_stay_what_they_are(
    sources_run: dict, editor_chroot: EditorChroot, kind: str
) -> None:
    class_name, first_version = RENDERED[kind]
    if gimp_version(editor_chroot) < first_version:
        pytest.skip(f"GIMP {editor_chroot.package_version('gimp')} has no {kind} layers")
    seen = scenario(sources_run, kind)
    assert seen["before"]["source_kind"]["class"] == class_name, seen["before"]
    # Still a layer of its kind, not rasterized, its pixels unchanged: the result is a new layer.
    assert seen["after"]["source_kind"] == seen["before"]["source_kind"]
    assert seen["after"]["source_kind"]["rasterized"] in (False, None)
    assert_added_above_source(seen, count=1)
    (result,) = seen["results"]
    placed = layer_bounds(result)
    assert placed.width > 0 and placed.height > 0
    if READ_AS_PIXELS[kind][2]:
        assert placed.contains(Bounds(*SELECTION["rect"]).intersection(placed)), placed
        assert result["mask"] is not None, "a selection gives the result a layer mask"
    assert result["parasite"]["mode"] == READ_AS_PIXELS[kind][0].removeprefix("inlayer-")


@pytest.mark.parametrize("kind", list(REFUSED))
def test_groups_and_hidden_layers_are_refused_clearly(sources_run: dict, kind: str) -> None:
    seen = scenario(sources_run, kind, status="EXECUTION-ERROR")
    assert REFUSED[kind][1] in seen["error"], seen["error"]
    assert "Traceback" not in seen["error"]
    assert_image_untouched(seen)
    assert seen["results"] == []


def test_txt2img_on_a_hidden_layer_adds_a_visible_result(sources_run: dict) -> None:
    seen = scenario(sources_run, "hidden_txt2img")
    assert_added_above_source(seen, count=1)
    assert seen["results"][0]["parasite"]["mode"] == "txt2img"
