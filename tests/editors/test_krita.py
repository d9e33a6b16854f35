"""The Krita plug-in end to end, inside real Krita 5.2 under Xvfb (in the Debian 13 chroot).

The plug-in is installed the way users install it (`install_krita` into the resource folder of a
fresh HOME, enabled in its kritarc) and talks to a real Inlayer server on the host's loopback,
serving tiny random-weight models. Krita starts ONCE for the module: the extension in
krita_scenarios.py runs every scenario through `inlayer_krita.api` and the docker, and writes its
findings to JSON; each test below asserts on one scenario's part.
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inlayer.core.client.bounds import Bounds
from inlayer.core.client.protocol import DIGITAL_SOURCE_TYPES, Mode
from inlayer.packaging.plugins import install_krita
from tests.editors.chroot import ChrootWorkspace
from tests.fixtures.models import TINY_SD15
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

SCENARIOS = Path(__file__).with_name("krita_scenarios.py")
TEST_PLUGIN = "inlayer_krita_test"
KRITA_TIMEOUT = (
    300  # seconds for the whole launch: Krita starts in ~5-10 s, scenarios run CPU models
)
TEST_PLUGIN_DESKTOP = f"""[Desktop Entry]
Type=Service
ServiceTypes=Krita/PythonPlugin
X-KDE-Library={TEST_PLUGIN}
X-Python-2-Compatible=false
Name=Inlayer test scenarios
"""


def _free_port() -> int:
    """A loopback port nothing listens on (for the 'server down' case)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _enable_in_kritarc(kritarc: Path, plugin: str) -> None:
    text = kritarc.read_text(encoding="utf-8")
    kritarc.write_text(
        text.replace("[python]\n", f"[python]\nenable_{plugin}=true\n", 1), encoding="utf-8"
    )


def new_krita_home(chroot_root: Path, server: ServerProcess) -> ChrootWorkspace:
    """A fresh HOME in the chroot with the plug-in installed and enabled, the test extension
    beside it, and Inlayer's config folder pointing at `server`."""
    workspace = ChrootWorkspace(
        chroot_root, Path("/tmp") / f"inlayer-krita-{uuid.uuid4().hex[:10]}"
    )
    workspace.host_dir.mkdir(parents=True)
    kritarc = workspace.host_path(".config", "kritarc")
    resources = workspace.host_path(".local", "share", "krita")
    install_krita(resources, kritarc=kritarc)
    test_plugin = resources / "pykrita" / TEST_PLUGIN
    test_plugin.mkdir()
    shutil.copy(SCENARIOS, test_plugin / "__init__.py")
    (resources / "pykrita" / f"{TEST_PLUGIN}.desktop").write_text(TEST_PLUGIN_DESKTOP)
    _enable_in_kritarc(kritarc, TEST_PLUGIN)

    # The plug-in finds the server as a user's would: through Inlayer's config folder.
    config_dir = workspace.host_path("inlayer-config")
    config_dir.mkdir()
    for name in ("token", "server.json"):
        shutil.copy(server.config_dir / name, config_dir / name)
    workspace.host_path("run").mkdir(mode=0o700)
    return workspace


def launch_krita(
    workspace: ChrootWorkspace,
    plan_variable: str,
    plan: dict[str, Any],
    timeout: int = KRITA_TIMEOUT,
) -> dict[str, Any]:
    """Start Krita once in `workspace`'s HOME (for at most `timeout` s) with a test extension
    that reads `plan` from the file `plan_variable` names and writes its findings; return them."""
    findings_path = workspace.host_path("findings.json")
    findings_path.unlink(missing_ok=True)
    workspace.host_path("plan.json").write_text(
        json.dumps({**plan, "findings": workspace.inside("findings.json")})
    )
    for attempt in range(2):
        completed = workspace.run(
            ["timeout", str(timeout), "xvfb-run", "-a", "krita", "--nosplash"],
            env={
                "XDG_RUNTIME_DIR": workspace.inside("run"),
                "INLAYER_CONFIG_DIR": workspace.inside("inlayer-config"),
                plan_variable: workspace.inside("plan.json"),
            },
            timeout=timeout + 30,
        )
        log = (completed.stdout + completed.stderr).decode(errors="replace")[-6000:]
        # Xvfb may lose the race for a display number to one still shutting down: Krita then
        # never started, and a second launch gets a fresh display.
        if findings_path.is_file() or "could not connect to display" not in log or attempt:
            break
    if not findings_path.is_file():
        pytest.fail(f"Krita wrote no findings (exit {completed.returncode}):\n{log}")
    return json.loads(findings_path.read_text(encoding="utf-8"))


def run_krita(
    workspace: ChrootWorkspace, server: ServerProcess, timeout: int = KRITA_TIMEOUT, **plan: Any
) -> dict[str, Any]:
    """Start Krita once in `workspace`'s HOME (for at most `timeout` s) and return the test
    extension's findings.
    `plan` goes to the extension (`scenarios`: which ones to run; default all but the settings
    session)."""
    server_plan = {
        "url": server.url,
        "token": server.token,
        "dead_url": f"http://127.0.0.1:{_free_port()}",
    }
    return launch_krita(workspace, "INLAYER_KRITA_TEST", {**server_plan, **plan}, timeout)


@pytest.fixture(scope="module")
def findings(chroot_root: Path, inlayer_server: ServerProcess) -> Iterator[dict[str, Any]]:
    workspace = new_krita_home(chroot_root, inlayer_server)
    try:
        yield run_krita(workspace, inlayer_server)
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def scenario(findings: dict[str, Any], name: str) -> dict[str, Any]:
    found = findings[name]
    assert "crash" not in found, found.get("crash")
    return found


def assert_result_layer_around(layer: dict[str, Any], selection: Bounds, margin: int) -> None:
    """An opaque layer covering the selection, no further than `margin` px around it, whose
    transparency mask is full inside the selection and soft towards its edges."""
    x, y, width, height = layer["bounds"]
    bounds = Bounds(x, y, width, height)
    assert bounds.contains(selection), (bounds, selection)
    assert selection.pad(margin).contains(bounds), (bounds, selection)
    assert layer["type"] == "paintlayer"
    assert layer["masks"] == 1
    values = layer["mask"]["values"]
    centre_x, centre_y = selection.x + selection.width // 2, selection.y + selection.height // 2
    assert values[(centre_y - y) * width + centre_x - x] == 255
    assert values[0] < 128 and values[-1] < 128  # the corners are outside the selection


def test_inpaint_adds_one_masked_layer_above_the_source(findings: dict[str, Any]) -> None:
    found = scenario(findings, "inpaint_u8")
    [layer] = found["layers"]
    assert_result_layer_around(layer, Bounds(40, 30, 32, 24), margin=4 + 8)
    assert layer["alpha_min"] == 255  # the blend lives in the mask, not in the layer's alpha
    assert "a red apple" in layer["name"] and "seed 7" in layer["name"]
    names = found["names_after"]
    assert names.index(layer["name"]) == names.index("source") + 1
    assert layer["depth"] == "U8" and layer["parent_is_root"]
    assert found["source_unchanged"]


def test_krita_stays_responsive_while_a_job_runs(findings: dict[str, Any]) -> None:
    found = scenario(findings, "inpaint_u8")
    assert found["gui_ticks_during_job"] > 0


def test_inpaint_result_is_one_undo_step(findings: dict[str, Any]) -> None:
    found = scenario(findings, "inpaint_u8")
    names = found["names_after"]
    assert found["names_after_undo"] == [n for n in names if n != found["layers"][0]["name"]]
    assert found["source_unchanged_after_undo"]


def test_inpaint_metadata_is_stored_in_the_document(findings: dict[str, Any]) -> None:
    found = scenario(findings, "inpaint_u8")
    [entry] = found["annotation"]
    assert entry["layer"] == found["layers"][0]["name"]
    assert entry["parameters"]["prompt"] == "a red apple"
    assert entry["parameters"]["seed"] == 7
    assert entry["parameters"]["mode"] == "inpaint"
    assert entry["model"]
    assert [entry["x"], entry["y"], entry["width"], entry["height"]] == found["layers"][0]["bounds"]
    assert found["history_added"] == 1


def test_result_metadata_keeps_its_origin_in_the_kra(findings: dict[str, Any]) -> None:
    """Made with AI, in IPTC's words, saved in the .kra and read back after reopening it."""
    found = scenario(findings, "saved_and_reopened")
    assert found["saved"]
    [entry] = found["entries"]
    assert entry["digital_source_type"] == DIGITAL_SOURCE_TYPES[Mode.FILL]
    assert entry["creator_tool"].startswith("Inlayer ")
    assert entry["parameters"]["mode"] == "fill"


def test_generate_covers_the_image_and_fill_reads_the_visible_image(
    findings: dict[str, Any],
) -> None:
    found = scenario(findings, "txt2img_and_fill")
    [generated] = found["generated"]
    assert generated["bounds"] == [0, 0, 64, 64]
    assert generated["masks"] == 0 and generated["alpha_min"] == 255
    [filled] = found["filled"]
    assert_result_layer_around(filled, Bounds(16, 16, 16, 16), margin=4 + 8)


def test_u16_document_round_trip(findings: dict[str, Any]) -> None:
    found = scenario(findings, "img2img_u16")
    [transformed] = found["transformed"]
    assert transformed["bounds"] == [0, 0, 64, 48] and transformed["masks"] == 0
    assert transformed["depth"] == "U16" and found["filled"]["depth"] == "U16"
    assert found["filled"]["masks"] == 1
    # Where the blend mask is 0 the result holds the source's pixels, gone through 8-bit sRGB:
    # within half an 8-bit step of the linear 16-bit value (at most ~300 at the bright end).
    assert found["unmasked_pixels"] > 0
    assert found["round_trip_worst"] <= 400
    assert found["source_unchanged"]


@pytest.mark.parametrize("space", ["RGBA/U16", "RGBA/F16", "RGBA/F32", "GRAYA/U16"])
def test_deep_linear_documents_are_converted_to_srgb(findings: dict[str, Any], space: str) -> None:
    found = scenario(findings, "colour_conversions")[space]
    assert "g10" in found["profile"]  # Krita's default deep profiles are linear
    red, green, blue, alpha = found["rgba8"]
    assert all(abs(value - 188) <= 1 for value in (red, green, blue)), found  # sRGB of 0.5
    assert alpha == 255
    # Written back, the value comes home within half an 8-bit sRGB step (about 0.003 at 0.5).
    number = {"U16": "H", "F16": "e", "F32": "f"}[space.split("/")[1]]
    count = len(found["original"]) // struct.calcsize(number)
    original = struct.unpack(f"<{count}{number}", bytes(found["original"]))
    written = struct.unpack(f"<{count}{number}", bytes(found["written_back"]))
    scale = 65535 if number == "H" else 1.0
    assert all(abs(a - b) / scale <= 0.004 for a, b in zip(original, written, strict=True))


def test_8bit_documents_keep_their_values(findings: dict[str, Any]) -> None:
    found = scenario(findings, "colour_conversions")
    assert found["RGBA/U8"]["rgba8"] == [10, 20, 30, 255]
    assert found["RGBA/U8"]["written_back"] == found["RGBA/U8"]["original"]
    assert found["GRAYA/U8"]["rgba8"] == [188, 188, 188, 255]
    assert found["GRAYA/U8"]["written_back"] == found["GRAYA/U8"]["original"]


@pytest.mark.parametrize("space", ["CMYKA/U8", "LABA/U16"])
def test_cmyk_and_lab_are_refused_clearly(findings: dict[str, Any], space: str) -> None:
    found = scenario(findings, "colour_conversions")[f"refused {space}"]
    assert found["outcome"].startswith("UnsupportedDocument: ")
    assert space.split("/")[0] in found["outcome"]
    assert not any("(seed" in name for name in found["names"])


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("server_down", "ConnectionFailed"),
        ("wrong_token", "AuthenticationFailed"),
        # the server names the unknown model as a wrong request field (InvalidRequest)
        ("unknown_model", "InlayerError"),
    ],
)
def test_errors_leave_the_document_unchanged(
    findings: dict[str, Any], case: str, error: str
) -> None:
    found = scenario(findings, "errors")[case]
    assert error in found["error"], found  # the class or one of its bases
    assert found["message"]
    if case == "unknown_model":
        assert "no-such-model" in found["message"]
    assert found["unchanged"]


def test_the_docker_starts_with_the_defaults_the_buttons_promise(findings: dict[str, Any]) -> None:
    """Untouched, Transform keeps part of the layer (the protocol's transform strength), Inpaint
    repaints, the steps are the preset's, and each button shows the strength it will use."""
    untouched = scenario(findings, "docker_first_use")["untouched"]
    assert untouched["transform_strength_percent"] == 60
    assert untouched["inpaint_strength_percent"] == 100
    assert untouched["buttons"] == {
        "inpaint": "Inpaint 100 %",
        "transform": "Transform 60 %",
        "generate": "Generate",
        "remove": "Remove",
        "instruct": "Instruct",
    }
    assert (untouched["preset"], untouched["steps"]) == ("", 0), "steps and preset: the device's"


def test_the_first_start_says_where_inlayer_is_and_keeps_the_active_layer(
    findings: dict[str, Any],
) -> None:
    """A fresh profile's first canvas carries Krita's floating message saying where Inlayer is
    (once: kritarc remembers it), and the first Transform still finds the layer the user
    picked (raising the docker instead took it away)."""
    found = scenario(findings, "docker_first_use")
    assert found["first_view_messages"] > scenario(findings, "docker_and_switch")["view_messages"]
    assert found["first_start_shown"] == "true"
    assert found["transform_untouched"]["error"] == "", found["transform_untouched"]


def test_transform_with_untouched_defaults_runs_at_the_transform_strength(
    findings: dict[str, Any],
) -> None:
    pressed = scenario(findings, "docker_first_use")["transform_untouched"]
    assert pressed["error"] == "" and pressed["message"].startswith("Added 1 layer"), pressed
    [stored] = pressed["stored"]
    assert stored["mode"] == "img2img"
    assert stored["strength"] == 0.6
    # Steps left to the preset: the server chose them and recorded which preset it used.
    assert stored["preset"] in ("quality", "fast")
    assert stored["steps"] == (20 if stored["preset"] == "quality" else stored["steps"])
    assert stored["steps"] >= 1


def test_each_button_uses_the_strength_the_docker_shows_for_it(findings: dict[str, Any]) -> None:
    found = scenario(findings, "docker_first_use")
    moved = found["moved"]
    assert moved["buttons"]["inpaint"] == "Inpaint 90 %"
    assert moved["buttons"]["transform"] == "Transform 45 %"
    for kind, strength in (("inpaint", 0.9), ("transform", 0.45), ("generate", 1.0)):
        pressed = found[f"{kind}_moved"]
        assert pressed["error"] == "", pressed
        [stored] = pressed["stored"]
        assert stored["strength"] == strength, (kind, stored)
        assert stored["steps"] == 4, "the steps set in the docker win over the preset's"


def test_docker_result_lands_in_the_document_that_started_it(findings: dict[str, Any]) -> None:
    found = scenario(findings, "docker_and_switch")
    assert found["dockers"] == 1
    assert found["actions"] == ["inlayer_inpaint", "inlayer_transform", "inlayer_generate"]
    assert found["status"].startswith("● Connected"), found["status"]
    assert "tiny-sd15" in found["models"]
    assert found["activated"] == ["first", "source"], found["activated"]
    assert found["start_message"] == "", found["start_message"]  # the job started
    assert found["progress"][0] == found["progress"][1] > 0
    assert found["preview_seen"]
    assert found["active_after"] == "second"
    assert "a blue door (seed 11)" in found["first_names"], found
    assert not any("(seed" in name for name in found["second_names"])


def test_docker_variations_wait_as_thumbnails(findings: dict[str, Any]) -> None:
    found = scenario(findings, "docker_variations")
    assert found["activated"] == ["third", "source"], found["activated"]
    assert found["variation_items"] == 2, found["variation_message"]
    assert found["applied"] == ["a blue door (seed 12)"]
    assert found["history_items"] >= 2
    assert found["queue_empty"]


def test_queued_and_running_jobs_can_be_cancelled(findings: dict[str, Any]) -> None:
    found = scenario(findings, "queue_and_cancel")
    assert found["waiting_before"] == "queued" and found["waiting_after"] == "cancelled"
    assert found["running_step_at_cancel"] >= 1
    assert found["running_after"] == "cancelled", found["running_error"]
    assert found["steps_done"][0] < found["steps_done"][1]
    assert found["queue_empty"]


# --------------------------------------------------------------------------------------------
# The docker's settings across Krita sessions
# --------------------------------------------------------------------------------------------

SETTINGS_GROUP = "Inlayer"
# What the user sets in the docker on the first day (the negative prompt left empty).
FIRST_DAY = {
    "prompt": "a blue door\nwith brass handles",
    "negative_prompt": "",
    "inpaint_strength_percent": 70,
    "transform_strength_percent": 80,
    "preset": "quality",
    "steps": 2,
    "seed": 11,
    "seed_locked": True,
    "count": 1,
    "model": TINY_SD15,
}
# Settings as an older version might have left them, or a user editing kritarc by hand.
HAND_EDITED = [
    "prompt=a red apple",
    "negative_prompt=",
    "strength_percent=30",  # a key no version reads any more
    "transform_strength_percent=250",
    "preset=turbo",
    "steps=many",
    "seed=-5",
    "seed_locked=perhaps",
    "count=0",
    "model=a-model-deleted-since",
    "read_visible=1",
]


def kritarc_group(kritarc: Path, group: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    inside = False
    for line in kritarc.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            inside = line.strip() == f"[{group}]"
        elif inside and "=" in line:
            key, value = line.split("=", 1)
            entries[key] = value
    return entries


def replace_kritarc_group(kritarc: Path, group: str, lines: list[str]) -> None:
    kept = []
    inside = False
    for line in kritarc.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            inside = line.strip() == f"[{group}]"
        if not inside:
            kept.append(line)
    kritarc.write_text("\n".join([*kept, "", f"[{group}]", *lines]) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def krita_sessions(chroot_root: Path, inlayer_server: ServerProcess) -> Iterator[dict[str, Any]]:
    """Krita started four times on one HOME: a first day that sets up the docker and runs a
    job, a day the server is not running, a day that only runs a job, and a day after someone
    edited the settings by hand. Each session's findings, and the settings kritarc held after
    the first, the server-less and the last."""
    workspace = new_krita_home(chroot_root, inlayer_server)
    kritarc = workspace.host_path(".config", "kritarc")
    server_info = workspace.host_path("inlayer-config", "server.json")
    only_settings = {"scenarios": ["docker_settings_session"]}

    def session(**plan: Any) -> dict[str, Any]:
        found = run_krita(workspace, inlayer_server, **only_settings, **plan)
        return scenario(found, "docker_settings_session")

    try:
        sessions = {"first": session(settings_change=FIRST_DAY)}
        sessions["kept_after_first"] = kritarc_group(kritarc, SETTINGS_GROUP)
        running = server_info.read_text(encoding="utf-8")
        server_info.write_text(json.dumps({"url": f"http://127.0.0.1:{_free_port()}"}))
        sessions["server_down"] = session()
        sessions["kept_after_server_down"] = kritarc_group(kritarc, SETTINGS_GROUP)
        server_info.write_text(running, encoding="utf-8")
        sessions["second"] = session()
        replace_kritarc_group(kritarc, SETTINGS_GROUP, HAND_EDITED)
        sessions["hand_edited"] = session()
        sessions["kept_after_hand_edited"] = kritarc_group(kritarc, SETTINGS_GROUP)
        yield sessions
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def assert_job_ran(session: dict[str, Any]) -> None:
    assert session["start_message"] == "", session["start_message"]
    assert session["job_error"] == ""
    assert len(session["added"]) == 1, session["added"]
    assert session["source_unchanged"]


def test_the_first_session_keeps_the_docker_settings_in_kritarc(
    krita_sessions: dict[str, Any],
) -> None:
    assert_job_ran(krita_sessions["first"])
    kept = krita_sessions["kept_after_first"]
    assert kept["model"] == TINY_SD15
    assert (kept["steps"], kept["seed"], kept["seed_locked"]) == ("2", "11", "true")
    assert (kept["transform_strength_percent"], kept["inpaint_strength_percent"]) == ("80", "70")
    assert kept["preset"] == "quality" and kept["read_visible"] == "false"


def test_a_session_without_the_server_keeps_the_chosen_model(
    krita_sessions: dict[str, Any],
) -> None:
    """Without the server's list the docker cannot show the model, but must not forget it."""
    down = krita_sessions["server_down"]
    assert down["connected"]["model"] == TINY_SD15
    assert "not running" in down["job_error"], down["job_error"]
    assert down["added"] == [] and down["source_unchanged"]
    assert krita_sessions["kept_after_server_down"] == krita_sessions["kept_after_first"]


def test_the_second_session_restores_the_docker_and_its_job_works(
    krita_sessions: dict[str, Any],
) -> None:
    second = krita_sessions["second"]
    restored = {key: second["restored"][key] for key in FIRST_DAY}
    assert restored == FIRST_DAY
    assert second["restored"]["read_visible"] is False
    # Once the server's list is in, the model kept from the first day is the one picked there.
    assert second["connected"]["model_listed"] == TINY_SD15
    assert second["connected_message"] == ""
    assert_job_ran(second)
    assert second["job_parameters"] == {
        "prompt": "a blue door\nwith brass handles",
        "negative_prompt": "",
        "strength": 0.8,
        "preset": "quality",
        "steps": 2,
        "seed": 11,
        "count": 1,
        "model": TINY_SD15,
    }


def test_hand_edited_settings_come_back_valid_and_a_gone_model_is_named(
    krita_sessions: dict[str, Any],
) -> None:
    edited = krita_sessions["hand_edited"]
    restored = edited["connected"]
    assert restored["prompt"] == "a red apple"
    assert restored["transform_strength_percent"] == 100, "250 % is brought into range"
    assert restored["inpaint_strength_percent"] == 100, "the old shared strength is not read"
    assert restored["preset"] == "", "'turbo' is no preset: the device's"
    assert restored["steps"] == 0, "'many' is no number: the default, the preset's"
    assert restored["seed_locked"] is False, "'perhaps' is no yes or no: the default"
    assert restored["count"] == 1 and restored["read_visible"] is False
    # The model the settings name is not on the server: said, and the default used.
    assert "a-model-deleted-since" in edited["connected_message"]
    assert "Pick another under Model" in edited["connected_message"]
    assert restored["model"] == "" and restored["model_listed"] == ""
    assert_job_ran(edited)
    assert edited["job_parameters"]["model"] == ""
    assert edited["job_parameters"]["steps"] is None, "left to the preset"
    # What Krita keeps now is valid, and the stale model is gone from it.
    kept = krita_sessions["kept_after_hand_edited"]
    assert (kept["model"], kept["steps"], kept["transform_strength_percent"]) == ("", "0", "100")


@pytest.fixture(scope="module")
def remove_findings(chroot_root: Path, inlayer_server: ServerProcess) -> Iterator[dict[str, Any]]:
    """One Krita launch running only the docker's Remove."""
    workspace = new_krita_home(chroot_root, inlayer_server)
    try:
        yield run_krita(workspace, inlayer_server, scenarios=["docker_remove"])
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_the_docker_remove_gives_one_masked_layer_and_leaves_the_source(
    remove_findings: dict[str, Any],
) -> None:
    found = scenario(remove_findings, "docker_remove")
    assert found["error"] == "" and found["message"].startswith("Added 1 layer"), found
    assert found["button"] == "Remove"
    [layer] = found["layers"]
    assert_result_layer_around(layer, Bounds(20, 20, 16, 16), margin=4 + 8)
    assert layer["name"] == "Inlayer remove"
    names = found["names_after"]
    assert names.index(layer["name"]) == names.index("source") + 1
    assert found["source_unchanged"]
