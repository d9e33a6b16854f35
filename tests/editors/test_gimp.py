"""End-to-end: Inlayer's GIMP plug-in inside real GIMP 3, talking to a real server.

The plug-in is installed into a fresh GIMP profile the way users install it
(`inlayer_packaging.plugins.install_gimp`); the server runs on the host's loopback with the tiny
random-weight models; GIMP runs headless in the Debian 13 chroot and calls the procedures
non-interactively. GIMP starts once for all the scenarios below (tests/editors/gimp_scenarios.py
runs them inside it and writes what it observed); each test then checks one scenario.

The interactive dialogs are built once in GIMP's interface under Xvfb; nothing clicks them.
Not observable in batch mode: GIMP has no PDB procedure that performs an undo, so the tests
cannot press Undo. They check what can be seen instead: the results are added inside one undo
group that the plug-in closes (GIMP would report an unbalanced group), and nothing else changes.
"""

from __future__ import annotations

import json
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from inlayer.core.client.bounds import Bounds
from inlayer.core.client.protocol import Cancelled, EditRequest, JobState, Mode
from inlayer.packaging.plugins import install_gimp
from tests.editors.chroot import ChrootWorkspace
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING

if TYPE_CHECKING:
    from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

SCENARIO_SCRIPT = Path(__file__).with_name("gimp_scenarios.py")
DIALOG_SCRIPT = Path(__file__).with_name("gimp_dialogs.py")
GIMP_BATCH = [
    "gimp-console",  # the installed GIMP 3.x (3.0 in Debian 13, 3.2 in sid)
    "-i",  # no interface
    "-d",  # no brushes, patterns... : faster start
    "-f",  # no fonts
    "--batch-interpreter=python-fu-eval",
    "-b",
    "-",  # the script on standard input
    "--quit",
]
GIMP_TIMEOUT = 300
# GIMP 3.0.4 says this for every text argument whose value is empty (the prompt, at first);
# the entry shows empty, as it should. And any plug-in's pipe breaks as GIMP quits.
KNOWN_GTK_COMPLAINTS = ("gtk_entry_buffer_set_text: assertion 'chars != NULL'", "Broken pipe")


def assert_no_dialog_complaints(output: str) -> None:
    """No GTK or GIMP warning from the dialogs' process in GIMP's `output`, but the known ones."""
    complaints = [
        line
        for line in output.splitlines()
        if "inlayer-dialogs" in line
        and ("CRITICAL" in line or "WARNING" in line)
        and not any(known in line for known in KNOWN_GTK_COMPLAINTS)
    ]
    assert not complaints, "\n".join(complaints)


CANCEL_WATCH = ("profile", "plug-ins", "inlayer", "cancel_watch.py")

# The server's default grow and feather (px), which the procedures keep unless told otherwise.
GROW, FEATHER = 4, 8
GIMP_FEATHER = 6  # the feather of the feathered selections below
RUN = {"steps": 2, "seed": 1234}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _scenarios(server: ServerProcess) -> list[dict]:
    good = {"url": server.url, "token": server.token}
    canvas_with_offset_layer = {
        "width": 96,
        "height": 80,
        "layer": {"x": 16, "y": 8, "width": 64, "height": 56},
    }
    return [
        {
            "name": "inpaint_offset_layer_feathered",
            "server": good,
            "image": {
                **canvas_with_offset_layer,
                "selection": {"rect": [30, 20, 20, 16], "feather": GIMP_FEATHER},
            },
            "procedure": "inlayer-inpaint",
            "args": {**RUN, "prompt": "a red door", "count": 2, "model": TINY_SD15_INPAINTING},
        },
        {
            # The selection sticks out of the layer (and the canvas) at the top left.
            "name": "fill_selection_beyond_layer",
            "server": good,
            "image": {
                "width": 96,
                "height": 80,
                "layer": {"x": 40, "y": 30, "width": 48, "height": 40},
                "selection": {"rect": [20, 10, 40, 36]},
            },
            "procedure": "inlayer-fill",
        },
        {
            "name": "remove_selection",
            "server": good,
            "image": {
                **canvas_with_offset_layer,
                "selection": {"rect": [28, 18, 24, 20], "feather": GIMP_FEATHER},
            },
            "procedure": "inlayer-remove",
        },
        {
            "name": "fill_gray16_selection",
            "server": good,
            "image": {
                "width": 64,
                "height": 48,
                "type": "gray",
                "precision": "u16",
                "layer": {"x": 0, "y": 0, "width": 64, "height": 48},
                "selection": {"rect": [12, 8, 32, 28], "feather": GIMP_FEATHER},
            },
            "procedure": "inlayer-fill",
        },
        {
            "name": "img2img_gray16_whole_layer",
            "server": good,
            "image": {
                "width": 64,
                "height": 48,
                "type": "gray",
                "precision": "u16",
                "layer": {"x": 0, "y": 0, "width": 64, "height": 48, "alpha": False},
            },
            "procedure": "inlayer-img2img",
            "args": {**RUN, "prompt": "grey stones", "strength": 0.5, "model": TINY_SD15},
        },
        {
            "name": "txt2img_into_selection_float",
            "server": good,
            "image": {
                **canvas_with_offset_layer,
                "precision": "float",
                "selection": {"rect": [24, 16, 32, 24]},
            },
            "procedure": "inlayer-txt2img",
            "args": {**RUN, "prompt": "a cat", "model": TINY_SD15},
        },
        {
            "name": "txt2img_whole_canvas",
            "server": good,
            "image": canvas_with_offset_layer,
            "procedure": "inlayer-txt2img",
            "args": {**RUN, "prompt": "a field", "model": TINY_SD15},
        },
        {
            "name": "server_down",
            "server": {"url": f"http://127.0.0.1:{_free_port()}", "token": server.token},
            "image": {**canvas_with_offset_layer, "selection": {"rect": [30, 20, 20, 16]}},
            "procedure": "inlayer-inpaint",
            "args": {**RUN, "prompt": "x"},
        },
        {
            "name": "wrong_token",
            "server": {"url": server.url, "token": "not-the-token"},
            "image": {**canvas_with_offset_layer, "selection": {"rect": [30, 20, 20, 16]}},
            "procedure": "inlayer-inpaint",
            "args": {**RUN, "prompt": "x"},
        },
        {
            "name": "unknown_model",
            "server": good,
            "image": {**canvas_with_offset_layer, "selection": {"rect": [30, 20, 20, 16]}},
            "procedure": "inlayer-inpaint",
            "args": {**RUN, "prompt": "x", "model": "no-such-model"},
        },
        {
            "name": "indexed_image",
            "server": good,
            "image": {
                "width": 32,
                "height": 32,
                "type": "indexed",
                "layer": {"x": 0, "y": 0, "width": 32, "height": 32},
                "selection": {"rect": [4, 4, 8, 8]},
            },
            "procedure": "inlayer-inpaint",
            "args": {**RUN, "prompt": "x"},
        },
        {
            "name": "img2img_selection_misses_layer",
            "server": good,
            "image": {**canvas_with_offset_layer, "selection": {"rect": [82, 66, 10, 10]}},
            "procedure": "inlayer-img2img",
            "args": {**RUN, "prompt": "x"},
        },
        {
            "name": "inpaint_without_selection",
            "server": good,
            "image": canvas_with_offset_layer,
            "procedure": "inlayer-inpaint",
            "args": {**RUN, "prompt": "x"},
        },
    ]


def new_gimp_workspace(chroot_root: Path) -> ChrootWorkspace:
    """A scratch folder in the chroot with the plug-in installed into a fresh GIMP profile."""
    workspace = ChrootWorkspace(chroot_root, Path("/tmp") / f"inlayer-gimp-{uuid.uuid4().hex[:10]}")
    workspace.host_path("config").mkdir(parents=True)
    install_gimp(workspace.host_path("profile"))
    return workspace


@pytest.fixture(scope="module")
def gimp_workspace(chroot_root: Path) -> Iterator[ChrootWorkspace]:
    workspace = new_gimp_workspace(chroot_root)
    try:
        yield workspace
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def gimp_env(workspace: ChrootWorkspace) -> dict[str, str]:
    return {
        "GIMP3_DIRECTORY": workspace.inside("profile"),
        "INLAYER_CONFIG_DIR": workspace.inside("config"),
        "INLAYER_GIMP_SCENARIOS": workspace.inside("plan.json"),
    }


def run_gimp_session(
    workspace: ChrootWorkspace, scenarios: list[dict], *, fonts: bool = False
) -> dict:
    """Start GIMP once on the workspace's profile and run `scenarios` in order; return the
    observations and GIMP's output. Fonts load only when asked (text layers need them)."""
    plan = {"scenarios": scenarios, "output": workspace.inside("seen.json")}
    workspace.host_path("plan.json").write_text(json.dumps(plan))
    seen_path = workspace.host_path("seen.json")
    seen_path.unlink(missing_ok=True)
    completed = workspace.run(
        [argument for argument in GIMP_BATCH if not (fonts and argument == "-f")],
        env=gimp_env(workspace),
        stdin=SCENARIO_SCRIPT.read_bytes(),
        timeout=GIMP_TIMEOUT,
    )
    output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
    assert seen_path.exists(), f"no observations (GIMP exit {completed.returncode}):\n{output}"
    return {"seen": json.loads(seen_path.read_text()), "output": output}


@pytest.fixture(scope="module")
def gimp_run(gimp_workspace: ChrootWorkspace, inlayer_server: ServerProcess) -> dict:
    """Run every scenario in one GIMP session; return the observations and GIMP's output."""
    return run_gimp_session(gimp_workspace, _scenarios(inlayer_server))


def scenario(gimp_run: dict, name: str, status: str = "SUCCESS") -> dict:
    seen = gimp_run["seen"][name]
    assert seen["status"] == status, f"{name}: {seen['status']}: {seen['error']}"
    return seen


def layer_bounds(info: dict) -> Bounds:
    return Bounds(info["x"], info["y"], info["width"], info["height"])


def mask_at(info: dict, x: int, y: int) -> int:
    """The result layer's mask value at canvas point (x, y)."""
    mask = bytes.fromhex(info["mask"])
    return mask[(y - info["y"]) * info["width"] + (x - info["x"])]


def assert_image_untouched(seen: dict) -> None:
    assert seen["after"]["layers"] == seen["before"]["layers"]
    assert seen["after"]["source"] == seen["before"]["source"], "the source layer's pixels changed"
    assert seen["after"]["selection"] == seen["before"]["selection"], "the selection changed"


def assert_added_above_source(seen: dict, count: int) -> None:
    """`count` new layers on top, the source unchanged below them, the first one visible."""
    assert seen["after"]["layers"][count:] == seen["before"]["layers"]
    assert seen["after"]["source"] == seen["before"]["source"], "the source layer's pixels changed"
    assert seen["after"]["selection"] == seen["before"]["selection"], "the selection changed"
    assert [r["visible"] for r in seen["results"]] == [True] + [False] * (count - 1)


def test_gimp_closed_every_undo_group(gimp_run: dict) -> None:
    # GIMP closes groups a plug-in left open and says so; the results must be one closed group.
    assert "inconsistent state" not in gimp_run["output"], gimp_run["output"]
    for name, seen in gimp_run["seen"].items():
        assert seen.get("after", {}).get("undo_enabled", True), name


def test_inpaint_on_offset_layer_with_feathered_selection(gimp_run: dict) -> None:
    seen = scenario(gimp_run, "inpaint_offset_layer_feathered")
    assert_added_above_source(seen, count=2)
    first, second = seen["results"]
    layer = Bounds(16, 8, 64, 56)
    selection = Bounds(30, 20, 20, 16)
    for result in (first, second):
        placed = layer_bounds(result)
        # The blend mask's bounds: the selection, grown and feathered, inside the layer.
        assert layer.contains(placed), placed
        assert placed.contains(selection), placed
        assert selection.pad(GROW + FEATHER + GIMP_FEATHER).contains(placed), placed
        assert result["alpha_min"] == 255, "the layer must be opaque where its mask shows it"
        assert mask_at(result, 40, 28) == 255, "the centre of the selection is fully repainted"
        mask = bytes.fromhex(result["mask"])
        assert any(0 < value < 255 for value in mask), "a feathered selection gives a soft mask"
        assert mask_at(result, placed.x, placed.y) < 128, "the corner lies outside the selection"
    assert (first["x"], first["y"], first["width"]) == (second["x"], second["y"], second["width"])
    assert "a red door" in first["name"] and "1234" in first["name"]
    assert "1235" in second["name"]
    parameters = first["parasite"]
    assert parameters["prompt"] == "a red door"
    assert parameters["seed"] == 1234 and second["parasite"]["seed"] == 1235
    assert parameters["mode"] == "inpaint" and parameters["model"] == TINY_SD15_INPAINTING
    assert parameters["steps"] == 2 and parameters["count"] == 1


def test_fill_with_selection_beyond_the_layer(gimp_run: dict) -> None:
    seen = scenario(gimp_run, "fill_selection_beyond_layer")
    assert_added_above_source(seen, count=1)
    (result,) = seen["results"]
    layer = Bounds(40, 30, 48, 40)
    placed = layer_bounds(result)
    assert layer.contains(placed), placed
    # Selected part of the layer: x 40..60, y 30..46.
    assert placed.contains(Bounds(20, 10, 40, 36).intersection(layer)), placed
    assert (placed.x, placed.y) == (40, 30), "the mask starts at the layer's corner"
    assert mask_at(result, 45, 35) == 255
    assert mask_at(result, placed.right - 1, placed.bottom - 1) < 128
    assert result["parasite"]["mode"] == "fill"


def test_remove_selection_gives_one_masked_layer_and_leaves_the_source(gimp_run: dict) -> None:
    seen = scenario(gimp_run, "remove_selection")
    assert_added_above_source(seen, count=1)
    (result,) = seen["results"]
    placed = layer_bounds(result)
    assert placed.contains(Bounds(28, 18, 24, 20)), placed
    assert mask_at(result, 40, 28) == 255, "the middle of the selection is removed"
    assert mask_at(result, placed.x, placed.y) < 128, "the corner lies outside the selection"
    assert result["parasite"]["mode"] == "remove"
    assert result["name"] == "Inlayer remove"


def test_fill_on_a_16_bit_grayscale_layer_with_a_feathered_selection(gimp_run: dict) -> None:
    seen = scenario(gimp_run, "fill_gray16_selection")
    assert_added_above_source(seen, count=1)
    (result,) = seen["results"]
    placed = layer_bounds(result)
    layer = Bounds(0, 0, 64, 48)
    selection = Bounds(12, 8, 32, 28)
    assert placed.contains(selection), placed
    assert selection.pad(GROW + FEATHER + GIMP_FEATHER).intersection(layer).contains(placed)
    assert result["gray"] and result["bytes_per_pixel"] == 4, "grey with alpha at 16 bits"
    assert result["alpha_min"] == 255 and mask_at(result, 28, 22) == 255
    assert any(0 < value < 255 for value in bytes.fromhex(result["mask"]))


def test_img2img_on_a_16_bit_grayscale_layer(gimp_run: dict) -> None:
    seen = scenario(gimp_run, "img2img_gray16_whole_layer")
    assert_added_above_source(seen, count=1)
    (result,) = seen["results"]
    assert layer_bounds(result) == Bounds(0, 0, 64, 48), "the whole layer, at its place"
    assert result["mask"] is None, "no selection: no layer mask"
    assert result["alpha_min"] == 255, "an opaque source gives an opaque result"
    # Grey with alpha at 16 bits: written back in the image's own mode and precision.
    assert result["gray"] and result["bytes_per_pixel"] == 4
    assert result["parasite"]["strength"] == 0.5 and result["parasite"]["seed"] == 1234


def test_txt2img_into_a_selection_of_a_float_image(gimp_run: dict) -> None:
    seen = scenario(gimp_run, "txt2img_into_selection_float")
    assert_added_above_source(seen, count=1)
    (result,) = seen["results"]
    placed = layer_bounds(result)
    selection = Bounds(24, 16, 32, 24)
    assert placed.contains(selection) and selection.pad(GROW + FEATHER).contains(placed), placed
    assert mask_at(result, 40, 28) == 255
    assert not result["gray"] and result["bytes_per_pixel"] == 16, "RGBA at 32-bit float"
    assert result["parasite"]["mode"] == "txt2img" and result["parasite"]["model"] == TINY_SD15


def test_txt2img_without_selection_fills_the_canvas(gimp_run: dict) -> None:
    seen = scenario(gimp_run, "txt2img_whole_canvas")
    assert_added_above_source(seen, count=1)
    (result,) = seen["results"]
    assert layer_bounds(result) == Bounds(0, 0, 96, 80), "the whole canvas, not the layer"
    assert result["mask"] is None and result["alpha_min"] == 255


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("server_down", "not running"),
        ("wrong_token", "token"),
        ("unknown_model", "Model: the server has no model 'no-such-model'"),
        ("indexed_image", "indexed"),
        ("img2img_selection_misses_layer", "does not touch the layer"),
        ("inpaint_without_selection", "selection is empty"),
    ],
)
def test_errors_leave_the_image_as_it_was(gimp_run: dict, name: str, words: str) -> None:
    seen = scenario(gimp_run, name, status="EXECUTION-ERROR")
    assert words in seen["error"], seen["error"]
    assert "Traceback" not in seen["error"]
    assert_image_untouched(seen)


def test_cancel_watcher_cancels_the_job_when_the_plug_in_goes_away(
    gimp_workspace: ChrootWorkspace, inlayer_server: ServerProcess
) -> None:
    """GIMP's Cancel ends the plug-in process; its watcher must then cancel the server's job.

    The watcher runs with GIMP's Python in the chroot, from the installed plug-in folder."""
    client = inlayer_server.client()
    long_job = EditRequest(
        Mode.TXT2IMG, prompt="x", width=512, height=512, steps=150, count=16, model=TINY_SD15
    )
    job_id = client.submit(long_job)
    watcher = ["python3", gimp_workspace.inside(*CANCEL_WATCH), job_id]
    env = {"INLAYER_SERVER": inlayer_server.url, "INLAYER_TOKEN": inlayer_server.token}

    finished = gimp_workspace.run(watcher, env=env, stdin=b"done\n", timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert client.status(job_id).state in (JobState.QUEUED, JobState.RUNNING)

    ended = gimp_workspace.run(watcher, env=env, stdin=b"", timeout=60)  # the pipe just closes
    assert ended.returncode == 0, ended.stderr
    with pytest.raises(Cancelled):
        client.wait(job_id)


DEFAULTS_DOC = Path(__file__).parents[2] / "docs" / "defaults.md"


def documented_defaults(procedure_column: str) -> dict[str, object]:
    """The GIMP table of docs/defaults.md: argument → default of the named procedure's column."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in DEFAULTS_DOC.read_text(encoding="utf-8").split("## GIMP", 1)[1].splitlines()
        if line.startswith("|") and "---" not in line
    ]
    header, *body = rows[: next(i for i, row in enumerate(rows) if row[0] == "feather") + 1]
    column = header.index(procedure_column)
    return {row[0]: _cell_value(row[column].strip("`")) for row in body if row[column]}


def _cell_value(text: str) -> object:
    """A number or `""` as JSON reads it; a choice's name as it is."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def test_interactive_dialogs_build_from_the_procedures(gimp_workspace: ChrootWorkspace) -> None:
    """Each procedure's dialog builds in GIMP's interface, with the arguments listed in the
    issue, under Filters ▸ Inlayer, and without GTK warnings about its widgets."""
    env = {
        **gimp_env(gimp_workspace),
        "INLAYER_GIMP_DIALOGS": gimp_workspace.inside("dialogs.json"),
        "XDG_RUNTIME_DIR": gimp_workspace.inside(),
    }
    gui = ["xvfb-run", "-a", "gimp", *GIMP_BATCH[2:]]  # as GIMP_BATCH, with the interface
    completed = gimp_workspace.run(
        gui, env=env, stdin=DIALOG_SCRIPT.read_bytes(), timeout=GIMP_TIMEOUT
    )
    output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
    found_path = gimp_workspace.host_path("dialogs.json")
    assert found_path.exists(), f"no dialogs built (GIMP exit {completed.returncode}):\n{output}"
    found = json.loads(found_path.read_text())
    common = ["run-mode", "image", "drawables"]
    prompted = ["prompt", "negative-prompt"]
    generation = ["preset", "steps", "seed", "count", "model", "lora", "vae", "grow", "feather"]
    guides = ["control-type", "control-model", "control-weight", "style-scale"]
    guides += ["control-layer", "style-layer"]
    inpaint = [*common, *prompted, "strength", *generation, *guides]
    assert found["inlayer-inpaint"]["arguments"] == inpaint
    img2img = [*common, *prompted, "strength", *generation, *guides]
    assert found["inlayer-img2img"]["arguments"] == img2img
    assert found["inlayer-txt2img"]["arguments"] == [*common, *prompted, *generation, *guides]
    assert found["inlayer-fill"]["arguments"] == [*common, "grow", "feather"]
    edit = [*common, *prompted, "image-guidance", *generation, "style-scale", "style-layer"]
    assert found["inlayer-edit"]["arguments"] == edit
    assert found["inlayer-edit"]["defaults"] == documented_defaults("Edit with Instruction")
    assert found["inlayer-img2img"]["defaults"] == documented_defaults("Transform Layer")
    assert found["inlayer-inpaint"]["defaults"] == documented_defaults("Inpaint Selection")
    assert found["inlayer-txt2img"]["defaults"] == documented_defaults("Generate")
    assert found["inlayer-fill"]["defaults"] == documented_defaults("Fill Selection")
    # The dialog: a multi-line prompt, the model picked from a list, the last result's seed.
    inpaint = found["inlayer-inpaint"]
    assert "GtkTextView" in inpaint["widgets"] or "TextView" in inpaint["widgets"]
    assert "Use seed 1234 of “a lighthouse (seed 1234)”" in inpaint["texts"]
    for procedure in found.values():
        assert procedure["menu_paths"] == ["<Image>/Filters/Inlayer"]
        assert procedure["image_types"] == "RGB*, GRAY*"
    assert_no_dialog_complaints(output)


# --------------------------------------------------------------------------------------------
# The values GIMP keeps in the profile: a user's second day
# --------------------------------------------------------------------------------------------

SELECTED = {
    "width": 96,
    "height": 80,
    "layer": {"x": 16, "y": 8, "width": 64, "height": 56},
    "selection": {"rect": [30, 20, 20, 16], "feather": GIMP_FEATHER},
}
# Each procedure as a script calls it, with only a few arguments set; img2img's prompt fields
# set empty on purpose.
EVERYDAY_CALLS = {
    "inlayer-inpaint": {"prompt": "a red door", "steps": 2, "model": TINY_SD15_INPAINTING},
    "inlayer-img2img": {"prompt": "", "negative-prompt": "", "steps": 2, "model": TINY_SD15},
    "inlayer-txt2img": {"prompt": "a cat", "steps": 2, "model": TINY_SD15},
    "inlayer-fill": {},
}


def _everyday_scenarios(server: ServerProcess) -> list[dict]:
    """Every procedure called non-interactively, then again as Filters ▸ Repeat does it
    (`WITH_LAST_VALS`), each on a new image with a feathered selection."""
    good = {"url": server.url, "token": server.token}
    scenarios = []
    for procedure, args in EVERYDAY_CALLS.items():
        common = {"server": good, "image": SELECTED, "procedure": procedure}
        scenarios.append({**common, "name": procedure, "args": args})
        scenarios.append({**common, "name": f"{procedure} again", "run_mode": "with-last-vals"})
    return scenarios


@pytest.fixture(scope="module")
def two_gimp_sessions(chroot_root: Path, inlayer_server: ServerProcess) -> Iterator[list[dict]]:
    """The same calls in two GIMP sessions, one after the other, on one fresh profile."""
    workspace = new_gimp_workspace(chroot_root)
    try:
        scenarios = _everyday_scenarios(inlayer_server)
        yield [run_gimp_session(workspace, scenarios) for _day in range(2)]
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


@pytest.mark.parametrize("day", [1, 2])
@pytest.mark.parametrize("run_mode", ["", " again"], ids=["noninteractive", "with-last-vals"])
@pytest.mark.parametrize("procedure", list(EVERYDAY_CALLS))
def test_every_procedure_works_in_every_session_on_one_profile(
    two_gimp_sessions: list[dict], day: int, run_mode: str, procedure: str
) -> None:
    seen = scenario(two_gimp_sessions[day - 1], procedure + run_mode)
    assert_added_above_source(seen, count=1)
    (result,) = seen["results"]
    parameters = result["parasite"]
    assert parameters["mode"] == procedure.removeprefix("inlayer-")
    if procedure != "inlayer-fill":
        # What GIMP handed back as None arrived at the server as empty text.
        assert isinstance(parameters["negative_prompt"], str)
        assert isinstance(parameters["prompt"], str)


def test_the_second_session_hands_back_empty_texts_as_none(two_gimp_sessions: list[dict]) -> None:
    """The situation the sessions test is about: on the second day GIMP's new configs hold None
    for text arguments nobody set (the plug-in must turn them into empty text)."""
    second_day = two_gimp_sessions[1]["seen"]["inlayer-inpaint"]
    assert second_day["texts_before"]["negative-prompt"] is None, second_day["texts_before"]
