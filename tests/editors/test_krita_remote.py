"""The Krita docker and a server on another machine, in real Krita (5.2 and 6.0): its Server…
dialog keeps the URL and a user's token (from `inlayer token add`) in remote.json, which the
client then uses over the local server's files; a wrong URL is refused in the dialog, and an
empty one goes back to the local server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inlayer.server.user_tokens import add_token, revoke_token
from tests.editors.test_krita import new_krita_home, run_krita, scenario
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors


@pytest.fixture(scope="module")
def remote_run(chroot_root: Path, inlayer_server: ServerProcess) -> Iterator[dict[str, Any]]:
    workspace = new_krita_home(chroot_root, inlayer_server)
    tokens = inlayer_server.config_dir / "tokens.json"
    user_token = add_token("krita-artist", tokens)
    config = workspace.host_path("inlayer-config")
    # The local server's token file is wrong: only the dialog's token can reach the server.
    (config / "token").write_text("not-the-token\n")
    try:
        findings = run_krita(
            workspace, inlayer_server, scenarios=["docker_server_settings"], user_token=user_token
        )
        found = scenario(findings, "docker_server_settings")
        found["remote_json_after"] = (
            json.loads((config / "remote.json").read_text())
            if (config / "remote.json").exists()
            else None
        )
        yield found
    finally:
        revoke_token("krita-artist", tokens)
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_a_wrong_url_is_refused_in_the_dialog(remote_run: dict[str, Any]) -> None:
    refused = remote_run["dialog_errors"][0]
    assert "ftp://studio" in refused and "http" in refused, refused
    assert "Not connected" in remote_run["refused_status"], "the local token is still wrong"


def test_the_dialogs_url_and_token_reach_the_server(remote_run: dict[str, Any]) -> None:
    assert remote_run["remote_status"].startswith("● Connected"), remote_run["remote_status"]
    job = remote_run["remote_job"]
    assert job["error"] == "" and job["message"].startswith("Added 1 layer"), job
    assert job["source_unchanged"]


def test_an_empty_url_goes_back_to_the_local_server(remote_run: dict[str, Any]) -> None:
    assert remote_run["remote_json_after"] is None, "the remote settings are removed"
    local = remote_run["local_status"]
    assert "Not connected" in local and "token" in local.lower(), local
