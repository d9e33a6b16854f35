"""Real Krita: the docker lists the LoRAs and autoencoders the server has (/v1/add-ons), a job
takes the ones picked (a LoRA's scale typed as NAME:SCALE), and kritarc keeps them as names."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editors.test_krita import new_krita_home, run_krita, scenario
from tests.fixtures.models import TINY_FULL_VAE, TINY_LORA, TINY_TAESD
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors


@pytest.fixture(scope="module")
def found(chroot_root: Path, add_ons_server: ServerProcess) -> Iterator[dict[str, Any]]:
    workspace = new_krita_home(chroot_root, add_ons_server)
    plan = {
        "scenarios": ["docker_add_ons"],
        "add_ons": {"lora": f"{TINY_LORA}:0.5", "vae": TINY_FULL_VAE},
    }
    try:
        yield scenario(run_krita(workspace, add_ons_server, **plan), "docker_add_ons")
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_the_docker_lists_the_servers_loras_and_autoencoders(found: dict[str, Any]) -> None:
    assert found["loras"][0] == "" and TINY_LORA in found["loras"]
    assert found["vaes"][:3] == ["", "full", "tiny"]
    assert {TINY_TAESD, TINY_FULL_VAE} <= set(found["vaes"])
    assert found["untouched"] == {"loras": [], "vae": ""}  # none, and the preset's


def test_a_job_takes_the_picked_lora_and_autoencoder_and_kritarc_keeps_them(
    found: dict[str, Any],
) -> None:
    assert found["job_error"] == ""
    assert found["request"] == {
        "loras": [{"name": TINY_LORA, "scale": 0.5}],
        "vae": TINY_FULL_VAE,
    }
    assert found["kept"] == {"lora": f"{TINY_LORA}:0.5", "vae": TINY_FULL_VAE}
