"""GIMP result layers say they were made with AI in a layer parasite, and keep saying it after
the image is saved as .xcf and opened again. (Krita's .kra: tests/editors/test_krita.py.)"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from inlayer.core.client.protocol import DIGITAL_SOURCE_TYPES, Mode
from tests.editors.chroot import EditorChroot
from tests.editors.test_gimp import RUN, new_gimp_workspace, run_gimp_session, scenario
from tests.fixtures.models import TINY_SD15_INPAINTING

if TYPE_CHECKING:
    from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors


@pytest.fixture(scope="module")
def gimp_saved_run(editor_chroot: EditorChroot, inlayer_server: ServerProcess) -> Iterator[dict]:
    workspace = new_gimp_workspace(editor_chroot.root)
    good = {"url": inlayer_server.url, "token": inlayer_server.token}
    image = {
        "width": 64,
        "height": 48,
        "layer": {"x": 0, "y": 0, "width": 64, "height": 48},
        "selection": {"rect": [16, 12, 24, 16]},
    }
    plan = [
        {
            "name": "inpaint_saved",
            "server": good,
            "image": image,
            "procedure": "inlayer-inpaint",
            "args": {**RUN, "prompt": "a door", "model": TINY_SD15_INPAINTING},
            "save_and_reopen": True,
        },
        {
            "name": "fill_saved",
            "server": good,
            "image": image,
            "procedure": "inlayer-fill",
            "args": {},
            "save_and_reopen": True,
        },
    ]
    try:
        yield run_gimp_session(workspace, plan)
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


@pytest.mark.parametrize(
    ("name", "mode"), [("inpaint_saved", Mode.INPAINT), ("fill_saved", Mode.FILL)]
)
def test_gimp_result_layers_keep_their_origin_in_the_xcf(
    gimp_saved_run: dict, name: str, mode: Mode
) -> None:
    seen = scenario(gimp_saved_run, name)
    for results in (seen["results"], seen["reopened_results"]):
        [layer] = results
        origin = layer["origin"]
        assert origin["digital_source_type"] == DIGITAL_SOURCE_TYPES[mode]
        assert origin["creator_tool"].startswith("Inlayer ")
        assert origin["seed"] == str(layer["parasite"]["seed"])
    assert seen["reopened_results"][0]["parasite"] == seen["results"][0]["parasite"]
