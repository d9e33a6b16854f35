"""Filters ▸ Inlayer ▸ Repeat Last Inpaint with a New Seed, in real GIMP 3 (3.0 and 3.2).

One fresh profile, two GIMP sessions. The first: the repeat before any inpaint (refused), an
inpaint, then the repeat twice, each time on a new image with its own selection. The second
session (GIMP restarted on the same profile) repeats again: the last inpaint survives restarts,
and its empty negative prompt still arrives as empty text.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.editors.test_gimp import (
    assert_added_above_source,
    assert_image_untouched,
    new_gimp_workspace,
    run_gimp_session,
    scenario,
)
from tests.fixtures.models import TINY_SD15_INPAINTING
from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

REPEAT = "inlayer-inpaint-repeat"
INPAINT_ARGS = {
    "prompt": "a red door",
    "negative-prompt": "",
    "strength": 0.9,
    "steps": 2,
    "seed": 1234,
    "model": TINY_SD15_INPAINTING,
    "grow": 2,
    "feather": 4,
}
# What each result's parameters must repeat from the inpaint (request field → value).
REPEATED = {
    "prompt": "a red door",
    "negative_prompt": "",
    "strength": 0.9,
    "steps": 2,
    "model": TINY_SD15_INPAINTING,
    "grow": 2,
    "feather": 4,
    "mode": "inpaint",
}


def _image(selection: list[int]) -> dict:
    return {
        "width": 96,
        "height": 80,
        "layer": {"x": 8, "y": 8, "width": 80, "height": 64},
        "selection": {"rect": selection},
    }


@pytest.fixture(scope="module")
def sessions(chroot_root: Path, inlayer_server: ServerProcess) -> Iterator[list[dict]]:
    workspace = new_gimp_workspace(chroot_root)
    server = {"url": inlayer_server.url, "token": inlayer_server.token}
    first_day = [
        {"name": "repeat_first", "server": server, "image": _image([30, 20, 20, 16])},
        {
            "name": "inpaint",
            "server": server,
            "image": _image([30, 20, 20, 16]),
            "procedure": "inlayer-inpaint",
            "args": INPAINT_ARGS,
        },
        {"name": "repeat", "server": server, "image": _image([40, 30, 24, 20])},
        {"name": "repeat_again", "server": server, "image": _image([40, 30, 24, 20])},
    ]
    next_day = [{"name": "repeat_next_day", "server": server, "image": _image([20, 24, 16, 16])}]
    for spec in first_day + next_day:
        spec.setdefault("procedure", REPEAT)
    try:
        yield [run_gimp_session(workspace, day) for day in (first_day, next_day)]
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def parameters(seen: dict) -> dict:
    (result,) = seen["results"]
    return result["parasite"]


def test_repeat_before_any_inpaint_says_what_to_do(sessions: list[dict]) -> None:
    seen = scenario(sessions[0], "repeat_first", status="EXECUTION-ERROR")
    assert "Inpaint Selection first" in seen["error"], seen["error"]
    assert_image_untouched(seen)


@pytest.mark.parametrize("name", ["repeat", "repeat_again"])
def test_repeat_reruns_the_last_inpaint_on_the_current_selection(
    sessions: list[dict], name: str
) -> None:
    seen = scenario(sessions[0], name)
    assert_added_above_source(seen, count=1)
    repeated = parameters(seen)
    assert {field: repeated[field] for field in REPEATED} == REPEATED
    (result,) = seen["results"]
    # The new selection (40, 30, 24 x 20), not the inpaint's: the layer covers it.
    assert result["x"] <= 40 and result["y"] <= 30
    assert result["x"] + result["width"] >= 64 and result["y"] + result["height"] >= 50
    assert result["x"] > 30 - 2 - 4, "placed around the new selection, not the old one"


def test_each_repeat_draws_a_new_seed(sessions: list[dict]) -> None:
    seeds = [parameters(scenario(sessions[0], name))["seed"] for name in ("inpaint", "repeat")]
    seeds.append(parameters(scenario(sessions[0], "repeat_again"))["seed"])
    assert seeds[0] == 1234
    assert len(set(seeds)) == 3, seeds


def test_repeat_works_after_gimp_restarts(sessions: list[dict]) -> None:
    seen = scenario(sessions[1], "repeat_next_day")
    assert_added_above_source(seen, count=1)
    repeated = parameters(seen)
    assert {field: repeated[field] for field in REPEATED} == REPEATED
    assert repeated["seed"] != parameters(scenario(sessions[0], "repeat_again"))["seed"]
