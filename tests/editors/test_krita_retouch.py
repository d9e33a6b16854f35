"""The docker's Retouch row in real Krita (5.2 and 6), through a real server with tiny
random-weight image models: Upscale ×2 opens a new document of twice the size and leaves the
source document as it was; Restore (denoise) adds one masked layer above the source, whose
pixels stay bit-identical; Restore of faces where none are found answers with a message and no
layer; Select subject sets a selection and changes no pixels. One Krita launch runs the
`docker_retouch` scenario (tests/editors/krita_scenarios.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editors.test_gimp import DEFAULTS_DOC
from tests.editors.test_krita import new_krita_home, run_krita, scenario
from tests.fixtures.image_models import (
    DRUNET,
    RESTOREFORMER,
    TINY_DDCOLOR,
    TINY_ESRGAN,
    build_tiny_esrgan,
    save_module,
    write_stand_in_face_detector,
)
from tests.fixtures.server import ServerProcess, running_server

pytestmark = pytest.mark.editors

SIDE = 64  # the scenario's document
SELECTION = (20, 20, 16, 16)


@pytest.fixture(scope="module")
def retouch_server(
    tiny_models_dir: Path,
    restoration_models_dir: Path,
    colorizer_models_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """A server with a tiny ESRGAN ×2, the tiny restoration models, a tiny DDColor and a
    stand-in face detector that finds no face."""
    extra = tmp_path_factory.mktemp("retouch-models")
    save_module(build_tiny_esrgan(), extra / "upscale_models" / f"{TINY_ESRGAN}.safetensors")
    write_stand_in_face_detector(extra / "facedetection" / "yunet.onnx", SIDE, [])
    more = ("--models-dir", str(restoration_models_dir), "--models-dir", str(colorizer_models_dir))
    more += ("--models-dir", str(extra))
    with running_server(
        tmp_path_factory.mktemp("retouch-config"), tiny_models_dir, *more
    ) as server:
        yield server


RETOUCH_SCENARIOS = [
    "docker_upscale",
    "docker_restore",
    "docker_no_faces",
    "docker_colorize",
    "docker_select",
    "docker_retouch_kept",  # last: it leaves a choice in kritarc
]


@pytest.fixture(scope="module")
def retouch(chroot_root: Path, retouch_server: ServerProcess) -> Iterator[dict[str, Any]]:
    """The findings of the four scenarios, from one Krita launch."""
    workspace = new_krita_home(chroot_root, retouch_server)
    names = {
        "upscaler": TINY_ESRGAN,
        "denoise": DRUNET,
        "faces": RESTOREFORMER,
        "colorize": TINY_DDCOLOR,
    }
    try:
        findings = run_krita(workspace, retouch_server, scenarios=RETOUCH_SCENARIOS, retouch=names)
        yield findings
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_the_row_lists_what_the_server_has_and_restores_faces_first(
    retouch: dict[str, Any],
) -> None:
    untouched = scenario(retouch, "docker_upscale")["untouched"]
    assert untouched["row"] == ["Upscale ▾", "Restore", "Select subject"]
    assert untouched["settings"] == {
        "upscaler": "Lanczos",
        "refine": False,
        "restore_faces": RESTOREFORMER,  # the first face restorer listed
        "denoise": "",
        "colorize": "",
        "chosen": False,
    }
    # Upscalers, denoise and colorize models share upscale_models/; each list leaves out what
    # is told (from its tensors) to be of another purpose: DRUNet is no upscaler, ESRGAN no
    # repair model. DDColor cannot be told without its weights and is in both. In the order of
    # the models folders, each folder's files by name.
    assert untouched["upscalers"] == ["Lanczos", TINY_DDCOLOR, TINY_ESRGAN]
    assert untouched["restore_lists"]["restore_faces"] == ["", RESTOREFORMER]
    assert untouched["restore_lists"]["denoise"] == ["", DRUNET, TINY_DDCOLOR]
    assert untouched["restore_lists"]["colorize"] == untouched["restore_lists"]["denoise"]


def documented_retouch_defaults() -> dict[str, str]:
    """The Retouch table of docs/defaults.md: setting → default."""
    text = DEFAULTS_DOC.read_text(encoding="utf-8").split("The Retouch row", 1)[1]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.split("\n\n", 2)[1].splitlines()
        if line.startswith("|") and "---" not in line
    ]
    return {row[0]: row[1] for row in rows[1:]}


def test_the_dialog_shows_the_documented_defaults(retouch: dict[str, Any]) -> None:
    documented = documented_retouch_defaults()
    shown = scenario(retouch, "docker_upscale")["untouched"]["shown"]
    assert set(shown) == set(documented)
    faces = documented.pop("Restore: Faces")
    assert faces.startswith("the first face restorer the server lists")
    assert shown.pop("Restore: Faces") == RESTOREFORMER
    assert shown == documented


def test_upscale_opens_a_new_document_of_twice_the_size(retouch: dict[str, Any]) -> None:
    found = scenario(retouch, "docker_upscale")
    assert found["error"] == "", found
    (new,) = found["new_documents"]
    assert new["size"] == [2 * SIDE, 2 * SIDE]
    (layer,) = new["layers"]
    assert layer["bounds"] == [0, 0, 2 * SIDE, 2 * SIDE]
    assert layer["alpha_min"] == 255  # the opaque source stays opaque
    assert new["colour"] == ["RGBA", "U8"]
    assert found["message"].startswith("Opened ") and f"{2 * SIDE}x{2 * SIDE}" in found["message"]
    assert found["after"] == found["before"], "the source document changed"


def test_restore_adds_one_masked_layer_and_keeps_the_source(retouch: dict[str, Any]) -> None:
    found = scenario(retouch, "docker_restore")
    assert found["error"] == "", found
    (layer,) = found["layers"]
    before, after = found["before"], found["after"]
    names = after["names"]
    assert [name for name in names if name != layer["name"]] == before["names"]
    assert names.index(layer["name"]) == names.index("source") + 1, "not above the source"
    assert after["source"] == before["source"], "the source's pixels changed"
    assert layer["masks"] == 1, "a selection's restore is masked to it"
    x, y, width, height = layer["bounds"]
    sx, sy, swidth, sheight = SELECTION
    assert x <= sx and y <= sy and x + width >= sx + swidth and y + height >= sy + sheight
    # One Ctrl+Z takes the layer (and its mask) away; the next one the step before it.
    marker_gone = [name for name in before["names"] if name != "marker"]
    assert found["undone"] == [before["names"], marker_gone], "the result is not one undo step"


def test_colorize_adds_a_layer_and_is_refused_in_a_greyscale_image(
    retouch: dict[str, Any],
) -> None:
    found = scenario(retouch, "docker_colorize")
    rgb, grey = found["rgb"], found["grey"]
    assert rgb["error"] == "", rgb
    added = [name for name in rgb["after"]["names"] if name not in rgb["before"]["names"]]
    assert len(added) == 1 and f"colorize with {TINY_DDCOLOR}" in rgb["message"], rgb
    assert rgb["after"]["source"] == rgb["before"]["source"], "the source's pixels changed"
    # Greyscale: refused before anything ran, naming the way out; the image as it was.
    assert grey["colour"] == ["GRAYA", "U8"]
    assert "greyscale" in grey["message"] and "Convert Image Color Space" in grey["message"]
    assert grey["after"] == grey["before"]


def test_restore_with_no_face_found_says_so_and_adds_no_layer(retouch: dict[str, Any]) -> None:
    found = scenario(retouch, "docker_no_faces")
    assert found["error"] == "", found
    assert "no faces found" in found["message"], found["message"]
    assert found["after"]["names"] == found["before"]["names"]
    assert found["after"]["source"] == found["before"]["source"]


def test_select_subject_sets_a_selection_and_changes_no_pixels(retouch: dict[str, Any]) -> None:
    found = scenario(retouch, "docker_select")
    assert found["error"] == "", found
    assert found["after"]["names"] == found["before"]["names"]
    assert found["after"]["source"] == found["before"]["source"]
    assert found["selected_pixels"] > 0
    assert found["centre"] == 255 and found["corner"] == 0  # the disc, not its ground


def test_a_retouch_choice_is_kept_for_the_next_session(retouch: dict[str, Any]) -> None:
    found = scenario(retouch, "docker_retouch_kept")
    chosen = {
        "upscaler": TINY_ESRGAN,
        "refine": True,
        "restore_faces": "",  # None chosen: not replaced by the first face restorer again
        "denoise": DRUNET,
        "colorize": "",
        "chosen": True,
    }
    assert found["read_back"] == chosen
    assert found["filled"] == chosen  # the server still lists them all
    assert found["stored"]["refine"] == "true" and found["stored"]["upscaler"] == TINY_ESRGAN
