"""Live painting in real Krita (5.2 with PyQt5, 6 with PyQt6): the docker's Live switch against a
real server that has the fast preset's pieces (the tiny speed LoRA and tiny autoencoder).

Krita starts once for the module and runs the `live_painting` scenario of krita_scenarios.py;
each test asserts on one part of what it saw. Its latency is measured by bench/bench_live.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editors.test_krita import new_krita_home, run_krita, scenario
from tests.fixtures.models import TINY_SD15
from tests.fixtures.server import ServerProcess, running_server

pytestmark = pytest.mark.editors

PREVIEW_NAME = "Inlayer live preview"


@pytest.fixture(scope="module")
def fast_server(
    tiny_models_dir: Path, tiny_add_ons_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running_server(
        tmp_path_factory.mktemp("live-config"),
        tiny_models_dir,
        "--models-dir",
        str(tiny_add_ons_dir),
    ) as server:
        yield server


@pytest.fixture(scope="module")
def live(chroot_root: Path, fast_server: ServerProcess) -> Iterator[dict[str, Any]]:
    workspace = new_krita_home(chroot_root, fast_server)
    try:
        findings = run_krita(
            workspace, fast_server, scenarios=["live_painting"], live_model=TINY_SD15
        )
        yield scenario(findings, "live_painting")
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_live_switch_starts_and_shows_a_first_preview(live: dict[str, Any]) -> None:
    assert live["started"], live["message"]
    assert live["first"] == {"updates": 1, "error": ""}


def test_newer_canvas_states_replace_the_waiting_live_job(live: dict[str, Any]) -> None:
    """Three quick changes while the queue is busy: the first two states are dropped unrun,
    only the newest waits, and it runs once the queue is free."""
    assert live["blocker"] == ["running", ""], "the slow job held the queue throughout"
    assert live["while_blocked"] == ["cancelled", "cancelled", "queued"]
    assert live["unfinished_live_jobs"] == [1, 1, 1], "never more than the newest waits"
    assert live["after_changes"]["jobs"] == ["cancelled", "cancelled", "done"]
    assert live["after_changes"]["last_error"] == ""


def test_three_changes_give_one_preview_layer_showing_the_last_state(
    live: dict[str, Any],
) -> None:
    assert live["preview_layers"] == 1, live["after_changes"]["names"]
    names = live["after_changes"]["names"]
    assert names.index(PREVIEW_NAME) == names.index("source") + 1, names
    assert live["after_changes"]["updates"] == 2, "the first preview, then the newest state's"
    preview = live["preview"]
    assert preview["from_last_job"] and preview["read_the_last_state"]
    assert preview["holds_the_result"], "the preview layer holds the last result's pixels"
    assert preview["bounds"] == preview["result_bounds"], "overwritten in place, nothing left over"
    assert preview["above_source"] and preview["marked"]


def test_live_jobs_run_img2img_with_the_fast_preset(live: dict[str, Any]) -> None:
    parameters = live["preview"]["parameters"]
    assert parameters["mode"] == "img2img"
    assert parameters["preset"] == "fast"
    assert parameters["strength"] == 0.6
    assert parameters["seed"] == 5 and parameters["prompt"] == "a garden"
    assert parameters["model"] == TINY_SD15


def test_the_preview_is_no_result_and_no_source(live: dict[str, Any]) -> None:
    assert live["preview"]["not_in_history"]
    assert "live preview" in live["preview_as_source"], live["preview_as_source"]


def test_apply_leaves_one_result_layer_in_one_undo_step(live: dict[str, Any]) -> None:
    applied = live["apply"]
    [added] = applied["added"]
    assert "a garden" in added and "seed 5" in added
    names = applied["names"]
    source = names.index("source")
    assert names[source : source + 3] == ["source", added, PREVIEW_NAME], "on the source"
    assert applied["entries_added"] == 1, "the result's metadata is stored like any result's"
    assert applied["preview_bounds"][2:] == [0, 0], "the preview is emptied, not stacked"
    assert not applied["button_enabled"]
    assert live["names_after_undo"] == live["names_before_apply"]


def test_live_off_removes_the_preview_layer(live: dict[str, Any]) -> None:
    assert PREVIEW_NAME not in live["names_after_off"]
    assert not live["session_after_off"]
