"""Upscale…, Restore Photo… and Select Subject in real GIMP 3, through a real server whose models
folders hold a tiny ESRGAN (×2), a tiny DRUNet (denoise), a tiny DDColor (colorize), a tiny
RestoreFormer and a stand-in face detector that finds no face (tests/fixtures/image_models.py).

An upscale opens a new image and leaves the source image as it was; a restore adds one layer
above the source (colorize makes a greyscale image RGB first); a face restore of a layer
without faces adds nothing and says so; Select Subject replaces the selection and touches no
layer. One GIMP session runs every scenario (tests/editors/gimp_scenarios.py); the dialogs are
built once in GIMP's interface under Xvfb.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from inlayer.core.client.bounds import Bounds
from tests.editors.chroot import ChrootWorkspace
from tests.editors.test_gimp import (
    DIALOG_SCRIPT,
    GIMP_BATCH,
    GIMP_TIMEOUT,
    assert_added_above_source,
    assert_image_untouched,
    assert_no_dialog_complaints,
    documented_defaults,
    gimp_env,
    layer_bounds,
    mask_at,
    new_gimp_workspace,
    run_gimp_session,
    scenario,
)
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

LAYER = Bounds(8, 4, 40, 32)  # on a 64x48 canvas
SELECTION = [14, 10, 16, 12]
NO_FACES = "no faces found to restore"


def image(*, selection: list[int] | None = None, pattern: str = "") -> dict:
    spec: dict = {
        "width": 64,
        "height": 48,
        "layer": {"x": LAYER.x, "y": LAYER.y, "width": LAYER.width, "height": LAYER.height},
    }
    if pattern:
        spec["layer"]["pattern"] = pattern
    if selection:
        spec["selection"] = {"rect": selection}
    return spec


@pytest.fixture(scope="module")
def photo_server(
    tiny_models_dir: Path,
    restoration_models_dir: Path,
    colorizer_models_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    more = tmp_path_factory.mktemp("photo-models")
    save_module(build_tiny_esrgan(), more / "upscale_models" / f"{TINY_ESRGAN}.safetensors")
    write_stand_in_face_detector(more / "facedetection" / "yunet.onnx", 64, [])
    extra = ["--models-dir", str(restoration_models_dir)]
    extra += ["--models-dir", str(colorizer_models_dir), "--models-dir", str(more)]
    config = tmp_path_factory.mktemp("photo-config")
    with running_server(config, tiny_models_dir, *extra) as server:
        yield server


@pytest.fixture(scope="module")
def photo_run(chroot_root: Path, photo_server: ServerProcess) -> Iterator[dict]:
    workspace = new_gimp_workspace(chroot_root)
    good = {"url": photo_server.url, "token": photo_server.token}
    scenarios = [
        {
            "name": "upscale_layer_x2",
            "image": image(),
            "args": {"scale": "x2", "upscaler": TINY_ESRGAN},
            "procedure": "inlayer-upscale",
        },
        {
            "name": "upscale_selection_x4_lanczos",
            "image": image(selection=SELECTION),
            "args": {"scale": "x4", "upscaler": "Lanczos"},
            "procedure": "inlayer-upscale",
        },
        {
            "name": "upscale_refined",
            "image": image(),
            "args": {"upscaler": "Lanczos", "prompt": "sharp", "refine-strength": 0.5},
            "procedure": "inlayer-upscale",
        },
        {
            "name": "restore_denoise_selection",
            "image": image(selection=SELECTION),
            "args": {"denoise": DRUNET, "denoise-strength": 1.0},
            "procedure": "inlayer-restore",
        },
        {
            "name": "restore_colorize_grey_image",
            "image": {**image(), "type": "gray"},
            "args": {"colorize": TINY_DDCOLOR},
            "procedure": "inlayer-restore",
        },
        {
            "name": "restore_faces_without_faces",
            "image": image(),
            "args": {"restore-faces": RESTOREFORMER},
            "procedure": "inlayer-restore",
        },
        {
            "name": "restore_nothing_chosen",
            "image": image(),
            "procedure": "inlayer-restore",
        },
        {
            "name": "select_subject_of_layer",
            "image": image(pattern="disc"),
            "procedure": "inlayer-select-subject",
        },
        {
            "name": "select_subject_near_selection",
            "image": image(pattern="disc", selection=[16, 8, 32, 28]),
            "procedure": "inlayer-select-subject",
        },
    ]
    try:
        yield run_gimp_session(workspace, [{**spec, "server": good} for spec in scenarios])
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def assert_source_image_unchanged(seen: dict) -> None:
    assert_image_untouched(seen)
    assert seen["after"]["image_size"] == seen["before"]["image_size"]


def test_upscale_x2_opens_a_new_image_of_twice_the_size(photo_run: dict) -> None:
    seen = scenario(photo_run, "upscale_layer_x2")
    assert_source_image_unchanged(seen)
    (opened,) = seen["new_images"]
    assert opened["size"] == [LAYER.width * 2, LAYER.height * 2]
    (layer,) = opened["layers"]
    assert layer_bounds(layer) == Bounds(0, 0, LAYER.width * 2, LAYER.height * 2)
    assert layer["visible"] and layer["mask"] is None
    assert layer["parasite"]["mode"] == "upscale" and layer["parasite"]["scale"] == 2
    assert layer["parasite"]["upscaler"] == TINY_ESRGAN
    assert opened["resolution"][0] > 0


def test_upscale_of_a_selection_opens_its_rectangle_as_a_new_image(photo_run: dict) -> None:
    seen = scenario(photo_run, "upscale_selection_x4_lanczos")
    assert_source_image_unchanged(seen)
    (opened,) = seen["new_images"]
    width, height = SELECTION[2:]
    assert opened["size"] == [width * 4, height * 4]
    (layer,) = opened["layers"]
    assert layer["parasite"]["upscaler"] == "Lanczos" and layer["mask"] is None


def test_upscale_with_a_refine_strength_refines_with_the_model(photo_run: dict) -> None:
    seen = scenario(photo_run, "upscale_refined")
    assert_source_image_unchanged(seen)
    (opened,) = seen["new_images"]
    assert opened["size"] == [LAYER.width * 2, LAYER.height * 2]
    parameters = opened["layers"][0]["parasite"]
    assert parameters["refine"] == "0.5" and parameters["prompt"] == "sharp"
    assert parameters["model"], "the refine ran a diffusion model (an upscale alone names none)"


def test_restore_adds_one_masked_layer_and_leaves_the_source(photo_run: dict) -> None:
    seen = scenario(photo_run, "restore_denoise_selection")
    assert_added_above_source(seen, count=1)
    assert seen["new_images"] == []
    (result,) = seen["results"]
    placed = layer_bounds(result)
    x, y, width, height = SELECTION
    assert placed.contains(Bounds(x, y, width, height)) and LAYER.contains(placed), placed
    assert mask_at(result, x + width // 2, y + height // 2) == 255
    assert result["parasite"]["mode"] == "restore"
    assert result["parasite"]["denoise"] == f"{DRUNET}:1"
    assert result["name"] == "Inlayer restore"


def test_colorize_makes_a_greyscale_image_rgb_and_adds_a_colour_layer(photo_run: dict) -> None:
    seen = scenario(photo_run, "restore_colorize_grey_image")
    before, after = seen["before"], seen["after"]
    assert after["layers"][1:] == before["layers"]
    assert after["base_type"] == "rgb", "the colours went into a grey image"
    # Converted to RGB, the source keeps its 8-bit values (its float values move a little).
    assert after["source_u8"] == before["source_u8"], "the source layer's pixels changed"
    assert after["selection"] == before["selection"]
    (result,) = seen["results"]
    assert not result["gray"] and layer_bounds(result) == LAYER
    assert result["parasite"]["colorize"] == f"{TINY_DDCOLOR}:1"
    assert result["mask"] is None  # the whole layer: nothing was selected


def test_restoring_faces_where_there_are_none_says_so_and_adds_nothing(photo_run: dict) -> None:
    seen = scenario(photo_run, "restore_faces_without_faces")
    assert_source_image_unchanged(seen)
    assert seen["results"] == [] and seen["new_images"] == []
    assert NO_FACES in photo_run["output"], photo_run["output"]


def test_restore_with_nothing_chosen_names_the_fields(photo_run: dict) -> None:
    seen = scenario(photo_run, "restore_nothing_chosen", status="EXECUTION-ERROR")
    assert "Face restorer, Denoise / JPEG repair, Colorize" in seen["error"], seen["error"]
    assert_source_image_unchanged(seen)


@pytest.mark.parametrize("name", ["select_subject_of_layer", "select_subject_near_selection"])
def test_select_subject_replaces_the_selection_and_touches_no_layer(
    photo_run: dict, name: str
) -> None:
    seen = scenario(photo_run, name)
    before, after = seen["before"], seen["after"]
    assert after["layers"] == before["layers"] and seen["results"] == []
    assert after["source"] == before["source"], "the source layer's pixels changed"
    assert seen["selected_layers"] == ["source"]
    assert after["selection"] != before["selection"], "the selection did not change"
    assert after["selection_bounds"] is not None, "the selection is empty"
    selected = Bounds(*after["selection_bounds"])
    assert LAYER.contains(selected), selected
    # The disc (radius a third of the layer's shorter side) lies inside what was selected.
    centre_x, centre_y = LAYER.x + LAYER.width // 2, LAYER.y + LAYER.height // 2
    assert selected.contains(Bounds(centre_x - 4, centre_y - 4, 8, 8)), selected
    assert seen["new_images"] == []


def test_the_results_are_closed_undo_groups(photo_run: dict) -> None:
    assert "inconsistent state" not in photo_run["output"], photo_run["output"]


@pytest.fixture
def dialogs(chroot_root: Path, photo_server: ServerProcess) -> Iterator[tuple[dict, str]]:
    """The procedures' dialogs, built in GIMP's interface with the server above named in the
    Inlayer config folder."""
    workspace: ChrootWorkspace = new_gimp_workspace(chroot_root)
    for name in ("server.json", "token"):
        shutil.copy(photo_server.config_dir / name, workspace.host_path("config", name))
    env = {
        **gimp_env(workspace),
        "INLAYER_GIMP_DIALOGS": workspace.inside("dialogs.json"),
        "XDG_RUNTIME_DIR": workspace.inside(),
    }
    gui = ["xvfb-run", "-a", "gimp", *GIMP_BATCH[2:]]
    try:
        completed = workspace.run(
            gui, env=env, stdin=DIALOG_SCRIPT.read_bytes(), timeout=GIMP_TIMEOUT
        )
        output = completed.stdout.decode() + completed.stderr.decode(errors="replace")
        found_path = workspace.host_path("dialogs.json")
        assert found_path.exists(), f"no dialogs (GIMP exit {completed.returncode}):\n{output}"
        yield json.loads(found_path.read_text()), output
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_the_dialogs_list_the_servers_models_and_keep_the_documented_defaults(
    dialogs: tuple[dict, str],
) -> None:
    found, output = dialogs
    common = ["run-mode", "image", "drawables"]
    upscale, restore = found["inlayer-upscale"], found["inlayer-restore"]
    assert upscale["arguments"] == [*common, "scale", "upscaler", "prompt", "refine-strength"]
    assert upscale["defaults"] == documented_defaults("Upscale")
    assert restore["defaults"] == documented_defaults("Restore Photo")
    upscalers = next(names for names in upscale["lists"].values() if TINY_ESRGAN in names)
    assert upscalers[:2] == ["", "Lanczos"]
    assert DRUNET not in upscalers  # a repair model, told from its tensors: no upscaler
    faces = next(names for names in restore["lists"].values() if RESTOREFORMER in names)
    assert faces == ["", RESTOREFORMER]
    assert sum(DRUNET in names for names in restore["lists"].values()) == 2  # denoise, colorize
    assert "GtkTextView" in upscale["widgets"] or "TextView" in upscale["widgets"]
    for procedure in (upscale, restore):
        assert procedure["menu_paths"] == ["<Image>/Filters/Inlayer"]
    assert_no_dialog_complaints(output)
