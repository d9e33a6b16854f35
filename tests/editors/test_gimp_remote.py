"""The GIMP plug-in and a server on another machine, in real GIMP 3 (3.0 and 3.2): configured
only by its server settings (remote.json: the URL and a user's token from `inlayer token add`),
with no local server's files in its config folder, it runs an edit there; Server Settings asks
in a dialog and refuses to run from a script."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from inlayer.server.user_tokens import add_token, revoke_token
from tests.editors.test_gimp import (
    SELECTED,
    assert_added_above_source,
    assert_image_untouched,
    new_gimp_workspace,
    run_gimp_session,
    scenario,
)
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors


@pytest.fixture(scope="module")
def remote_run(chroot_root: Path, inlayer_server: ServerProcess) -> Iterator[dict]:
    workspace = new_gimp_workspace(chroot_root)
    tokens = inlayer_server.config_dir / "tokens.json"
    token = add_token("gimp-artist", tokens)
    config = workspace.host_path("config")
    (config / "remote.json").write_text(json.dumps({"url": inlayer_server.url, "token": token}))
    scenarios = [
        {"name": "fill", "image": SELECTED, "procedure": "inlayer-fill"},
        {"name": "settings", "image": SELECTED, "procedure": "inlayer-server-settings"},
    ]
    try:
        run = run_gimp_session(workspace, scenarios)
        run["config_files"] = sorted(path.name for path in config.iterdir())
        yield run
    finally:
        revoke_token("gimp-artist", tokens)
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_the_server_settings_alone_reach_the_server(remote_run: dict) -> None:
    assert remote_run["config_files"] == ["remote.json"]  # no server.json, no token file
    assert_added_above_source(scenario(remote_run, "fill"), count=1)


def test_server_settings_refuse_to_run_from_a_script(remote_run: dict) -> None:
    seen = scenario(remote_run, "settings", status="CALLING-ERROR")
    assert "asks in a dialog" in seen["error"]
    assert_image_untouched(seen)
