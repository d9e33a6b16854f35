"""The screenshots in the README and docs/, taken from real GIMP and real Krita under Xvfb.

This test is the script that makes them: it runs both editors with the plug-ins installed and a
server with the tiny test models, and checks each picture is there and of a sensible size. It
writes into a temporary folder; to refresh the pictures in the repository, point it at them:

    export INLAYER_CHROOT=$(bash tests/editors/build_chroot.sh | tail -n1)
    INLAYER_SCREENSHOTS_DIR=docs/images .venv/bin/python -m pytest tests/editors/test_screenshots.py
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.editors.test_gimp import (
    DIALOG_SCRIPT,
    GIMP_BATCH,
    GIMP_TIMEOUT,
    gimp_env,
    new_gimp_workspace,
)
from tests.editors.test_krita import KRITA_TIMEOUT, _enable_in_kritarc, _free_port, new_krita_home
from tests.fixtures.server import running_server

if TYPE_CHECKING:
    from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

XVFB_SCREEN = ("-s", "-screen 0 1280x800x24")  # room for Krita's window and its dockers
KRITA_SCRIPT = Path(__file__).with_name("krita_screenshots.py")
SCREENSHOT_PLUGIN = "inlayer_krita_screenshots"
SCREENSHOT_DESKTOP = f"""[Desktop Entry]
Type=Service
ServiceTypes=Krita/PythonPlugin
X-KDE-Library={SCREENSHOT_PLUGIN}
X-Python-2-Compatible=false
Name=Inlayer screenshots
"""
# Each picture, and the least and most width and height it may have, in pixels.
PICTURES = {
    "gimp-inlayer-inpaint.png": (250, 1000),
    "gimp-inlayer-img2img.png": (250, 1000),
    "gimp-inlayer-txt2img.png": (250, 1000),
    "gimp-inlayer-fill.png": (120, 1000),
    # The docker's pictures hold all its rows, taller than the scroll area shows them on a
    # small screen.
    "krita-docker.png": (150, 1400),
    "krita-result-layer.png": (400, 2000),
    "krita-message-empty-selection.png": (150, 1400),
    "krita-message-no-server.png": (150, 1400),
    "krita-message-no-model.png": (150, 1400),
}


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is no PNG"
    return struct.unpack(">II", header[16:24])


def gimp_screenshots(chroot_root: Path, server: ServerProcess, output: Path) -> str:
    workspace = new_gimp_workspace(chroot_root)
    try:
        for name in ("token", "server.json"):  # the dialogs ask the server for its models
            shutil.copy(server.config_dir / name, workspace.host_path("config", name))
        workspace.host_path("shots").mkdir()
        env = {
            **gimp_env(workspace),
            "INLAYER_GIMP_DIALOGS": workspace.inside("dialogs.json"),
            "INLAYER_GIMP_SCREENSHOTS": workspace.inside("shots"),
            "XDG_RUNTIME_DIR": workspace.inside(),
        }
        # With the interface, and fonts: the dialogs show text.
        gui = ["xvfb-run", "-a", "gimp", *(arg for arg in GIMP_BATCH[1:] if arg != "-f")]
        completed = workspace.run(
            gui, env=env, stdin=DIALOG_SCRIPT.read_bytes(), timeout=GIMP_TIMEOUT
        )
        for picture in workspace.host_path("shots").glob("*.png"):
            shutil.copy(picture, output / picture.name)
        return (completed.stdout + completed.stderr).decode(errors="replace")[-4000:]
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def krita_screenshots(
    chroot_root: Path,
    server: ServerProcess,
    empty_server: ServerProcess,
    output: Path,
    findings: Path,
) -> str:
    """The Krita pictures into `output`, and what the first messages said into `findings`."""
    workspace = new_krita_home(chroot_root, server)
    try:
        resources = workspace.host_path(".local", "share", "krita", "pykrita")
        (resources / SCREENSHOT_PLUGIN).mkdir()
        shutil.copy(KRITA_SCRIPT, resources / SCREENSHOT_PLUGIN / "__init__.py")
        (resources / f"{SCREENSHOT_PLUGIN}.desktop").write_text(SCREENSHOT_DESKTOP)
        kritarc = workspace.host_path(".config", "kritarc")
        # Only the screenshots run: the test scenarios' extension stays off.
        kritarc.write_text(kritarc.read_text().replace("enable_inlayer_krita_test=true\n", ""))
        _enable_in_kritarc(kritarc, SCREENSHOT_PLUGIN)
        workspace.host_path("shots").mkdir()
        workspace.host_path("shots.json").write_text(
            json.dumps(
                {
                    "output": workspace.inside("shots"),
                    "server_info": workspace.inside("inlayer-config", "server.json"),
                    "empty_server_url": empty_server.url,
                    "findings": workspace.inside("findings.json"),
                    "dead_url": f"http://127.0.0.1:{_free_port()}",
                }
            )
        )
        completed = workspace.run(
            ["timeout", str(KRITA_TIMEOUT), "xvfb-run", "-a", *XVFB_SCREEN, "krita", "--nosplash"],
            env={
                "XDG_RUNTIME_DIR": workspace.inside("run"),
                "INLAYER_CONFIG_DIR": workspace.inside("inlayer-config"),
                "INLAYER_KRITA_SCREENSHOTS": workspace.inside("shots.json"),
            },
            timeout=KRITA_TIMEOUT + 30,
        )
        for picture in workspace.host_path("shots").glob("*.png"):
            shutil.copy(picture, output / picture.name)
        if workspace.host_path("findings.json").is_file():
            shutil.copy(workspace.host_path("findings.json"), findings)
        return (completed.stdout + completed.stderr).decode(errors="replace")[-4000:]
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_the_screenshots_are_taken_from_both_editors(
    chroot_root: Path, inlayer_server: ServerProcess, tmp_path: Path
) -> None:
    output = Path(os.environ.get("INLAYER_SCREENSHOTS_DIR") or tmp_path).resolve()
    output.mkdir(parents=True, exist_ok=True)
    logs = gimp_screenshots(chroot_root, inlayer_server, output)
    # A server without models, with the same token, for the first message a new user meets.
    empty_models = tmp_path / "no-models"
    empty_models.mkdir()
    with running_server(
        tmp_path / "empty-config", empty_models, token=inlayer_server.token
    ) as empty_server:
        logs += krita_screenshots(
            chroot_root, inlayer_server, empty_server, output, tmp_path / "krita-findings.json"
        )
    for name, (least, most) in PICTURES.items():
        path = output / name
        assert path.is_file(), f"no {name}:\n{logs}"
        width, height = png_size(path)
        assert least <= width <= most and 60 <= height <= most, (name, width, height)
        assert path.stat().st_size > 2000, f"{name} is nearly empty"
    # Without a model, the first press gives the next step, not an error.
    findings = json.loads((tmp_path / "krita-findings.json").read_text())
    assert "inlayer models pull" in findings["no_model"]["status"]
    assert findings["no_model"]["message"].startswith("No model installed yet"), findings
    # The result's picture shows the Layers panel listing the new layer and its mask.
    shown = findings["result_layer"]
    assert (shown["panel_rows"], shown["mask_rows"]) == (1, 1), shown
