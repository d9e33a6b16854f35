"""Real GIMP: the dialog lists the LoRAs and autoencoders the server has (/v1/add-ons), keeps the
arguments names (a kept name the server lacks stays, marked), and a scale typed into the LoRA's
entry reaches the argument."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.editors.chroot import ChrootWorkspace
from tests.editors.test_gimp import (
    DIALOG_SCRIPT,
    GIMP_BATCH,
    GIMP_TIMEOUT,
    gimp_env,
    new_gimp_workspace,
)
from tests.fixtures.models import TINY_FULL_VAE, TINY_LORA, TINY_SD15, TINY_TAESD
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

LORA_BLURB = "A LoRA the server lists, as NAME or NAME:SCALE (scale 1 when left out; empty: none)"


@pytest.fixture
def workspace(chroot_root: Path, add_ons_server: ServerProcess) -> Iterator[ChrootWorkspace]:
    """A fresh GIMP profile whose Inlayer config folder names the server above."""
    workspace = new_gimp_workspace(chroot_root)
    for name in ("server.json", "token"):
        shutil.copy(add_ons_server.config_dir / name, workspace.host_path("config", name))
    try:
        yield workspace
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_the_dialog_lists_the_servers_loras_and_autoencoders(workspace: ChrootWorkspace) -> None:
    env = {
        **gimp_env(workspace),
        "INLAYER_GIMP_DIALOGS": workspace.inside("dialogs.json"),
        "INLAYER_GIMP_TYPE_LORA": f"{TINY_LORA}:0.5",
        "XDG_RUNTIME_DIR": workspace.inside(),
    }
    gui = ["xvfb-run", "-a", "gimp", *GIMP_BATCH[2:]]
    completed = workspace.run(gui, env=env, stdin=DIALOG_SCRIPT.read_bytes(), timeout=GIMP_TIMEOUT)
    output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
    found_path = workspace.host_path("dialogs.json")
    assert found_path.exists(), f"no dialogs built (GIMP exit {completed.returncode}):\n{output}"
    inpaint = json.loads(found_path.read_text())["inlayer-inpaint"]
    lists = inpaint["lists"]
    model_list = next(names for names in lists.values() if TINY_SD15 in names)
    assert model_list[0] == ""  # the default for the mode first
    assert lists[LORA_BLURB][0] == "" and TINY_LORA in lists[LORA_BLURB]
    vae_list = next(names for names in lists.values() if TINY_FULL_VAE in names)
    assert vae_list[:3] == ["", "full", "tiny"] and TINY_TAESD in vae_list
    assert inpaint["lora_after_typing"] == f"{TINY_LORA}:0.5"
    assert inpaint["defaults"]["lora"] == "" and inpaint["defaults"]["vae"] == ""
