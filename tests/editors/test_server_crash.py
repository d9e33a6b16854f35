"""The server killed (SIGKILL) while real GIMP and real Krita wait for a job: each says so
clearly, leaves the document as it was, and works again once the server is started anew (on
another port: the server.json the crash left behind names the dead one).

The test plays the user's side outside the editor: it watches the server until the editor's
job runs, kills it, waits until the editor has met the crash, starts the server again in the
same config folder and tells the editor (marker files beside the editor's plan).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.editors.chroot import ChrootWorkspace, EditorChroot
from tests.editors.test_gimp import RUN, new_gimp_workspace, run_gimp_session, scenario
from tests.editors.test_krita import new_krita_home, run_krita
from tests.editors.test_krita import scenario as krita_scenario
from tests.fixtures.models import TINY_SD15_INPAINTING
from tests.fixtures.server import ServerProcess, start_server

pytestmark = pytest.mark.editors

CRASH_TIMEOUT = 300.0


@dataclass
class CrashAndRestart:
    """Kill `victim` once a job runs on it; after `seen_marker` appears, start a server in
    `config_dir` again and write `restarted_marker`."""

    victim: ServerProcess
    config_dir: Path
    models_dir: Path
    seen_marker: Path
    restarted_marker: Path
    restarted: ServerProcess | None = None
    problem: str = ""
    _thread: threading.Thread = field(init=False)

    @classmethod
    def in_workspace(
        cls, victim: ServerProcess, workspace: ChrootWorkspace, models_dir: Path
    ) -> CrashAndRestart:
        """Markers beside the editor's plan, the server's config folder the editor's."""
        return cls(
            victim,
            victim.config_dir,
            models_dir,
            workspace.host_path("crash-seen"),
            workspace.host_path("restarted"),
        )

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _wait(self, condition, what: str) -> None:
        deadline = time.monotonic() + CRASH_TIMEOUT
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            time.sleep(0.1)

    def _run(self) -> None:
        try:
            client = self.victim.client(timeout=10)
            self._wait(lambda: client.health().queue_length > 0, "the editor's job never ran")
            self.victim.kill()
            self._wait(self.seen_marker.exists, "the editor never met the crash")
            self.restarted = start_server(self.config_dir, self.models_dir)
            self.restarted_marker.write_text("done\n")
        except Exception as error:  # reported by `finish`, in the test's own thread
            self.problem = repr(error)

    def finish(self) -> None:
        self._thread.join(CRASH_TIMEOUT)
        if self.restarted is not None:
            self.restarted.kill()
        self.victim.kill()
        assert not self.problem, self.problem


@pytest.fixture(scope="module")
def gimp_crash_run(editor_chroot: EditorChroot, tiny_models_dir: Path) -> Iterator[dict]:
    workspace = new_gimp_workspace(editor_chroot.root)
    victim = start_server(workspace.host_path("config"), tiny_models_dir)
    crash = CrashAndRestart.in_workspace(victim, workspace, tiny_models_dir)
    image = {
        "width": 64,
        "height": 48,
        "layer": {"x": 0, "y": 0, "width": 64, "height": 48},
        "selection": {"rect": [16, 12, 24, 16]},
    }
    inpaint = {**RUN, "prompt": "a door", "model": TINY_SD15_INPAINTING}
    plan = [
        {
            "name": "killed_mid_job",
            "server": None,  # the one the config folder names: the victim
            "image": image,
            "procedure": "inlayer-inpaint",
            "args": {**inpaint, "steps": 150, "count": 16},
            "done_marker": "crash-seen",
        },
        {
            "name": "after_restart",
            "server": None,  # server.json rewritten by the restarted server
            "wait_for": "restarted",
            "image": image,
            "procedure": "inlayer-inpaint",
            "args": inpaint,
        },
    ]
    try:
        yield run_gimp_session(workspace, plan)
        crash.finish()
    finally:
        crash.victim.kill()
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_gimp_says_the_server_stopped_and_leaves_the_image_as_it_was(gimp_crash_run: dict) -> None:
    seen = scenario(gimp_crash_run, "killed_mid_job", status="EXECUTION-ERROR")
    assert "stopped while running the edit" in seen["error"]
    assert "inlayer serve" in seen["error"]
    assert seen["after"]["layers"] == seen["before"]["layers"]
    assert seen["after"]["source"] == seen["before"]["source"]
    assert seen["results"] == []


def test_gimp_works_again_once_the_server_is_back(gimp_crash_run: dict) -> None:
    seen = scenario(gimp_crash_run, "after_restart")
    assert len(seen["results"]) == 1
    assert seen["after"]["source"] == seen["before"]["source"]


@pytest.fixture(scope="module")
def krita_crash_findings(
    editor_chroot: EditorChroot, tiny_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    first = start_server(tmp_path_factory.mktemp("krita-crash-config"), tiny_models_dir)
    workspace = new_krita_home(editor_chroot.root, first)
    first.kill()  # the editor's own config folder gets a server of its own, below
    victim = start_server(workspace.host_path("inlayer-config"), tiny_models_dir)
    crash = CrashAndRestart.in_workspace(victim, workspace, tiny_models_dir)
    try:
        yield run_krita(workspace, victim, scenarios=["server_crash"])
        crash.finish()
    finally:
        crash.victim.kill()
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_krita_says_the_server_stopped_and_works_again_once_it_is_back(
    krita_crash_findings: dict[str, Any],
) -> None:
    found = krita_scenario(krita_crash_findings, "server_crash")
    assert "stopped while running the edit" in found["during_crash"]
    assert found["unchanged_after_crash"]
    assert found["restarted"]
    assert found["layers_after_restart"] == 1
    assert found["source_unchanged"]
