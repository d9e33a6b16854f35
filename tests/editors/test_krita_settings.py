"""The Krita docker's settings read back from kritarc (the plug-in's docker_settings.py), outside
Krita: whatever the file holds (nothing, an older version's keys, a hand edit), the docker gets
valid settings, and what it keeps comes back unchanged.

The plug-in package's `__init__` registers the docker with Krita, so the module is loaded from an
installed copy under a bare package of the same folder that skips it; no Krita is needed.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator

import pytest

from inlayer.core.client.protocol import MAX_COUNT, MAX_STEPS
from inlayer.packaging.plugins import KRITA_PLUGIN_NAME, install_krita

BARE_PACKAGE = "inlayer_krita_without_krita"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    resources = tmp_path_factory.mktemp("krita")
    install_krita(resources, kritarc=resources / "kritarc")
    package = types.ModuleType(BARE_PACKAGE)
    package.__path__ = [str(resources / "pykrita" / KRITA_PLUGIN_NAME)]
    sys.modules[BARE_PACKAGE] = package
    try:
        yield importlib.import_module(f"{BARE_PACKAGE}.docker_settings")
    finally:
        for name in [name for name in sys.modules if name.startswith(BARE_PACKAGE)]:
            del sys.modules[name]


def test_nothing_stored_gives_the_defaults(settings: types.ModuleType) -> None:
    first_start = settings.DockerSettings.from_stored({})
    assert first_start == settings.DockerSettings()
    assert first_start.seed is None, "no seed kept: the docker draws one"


def test_the_first_start_uses_each_buttons_strength_and_the_presets_steps(
    settings: types.ModuleType,
) -> None:
    first_start = settings.DockerSettings()
    assert first_start.transform_strength_percent == 60, "a transform keeps part of the layer"
    assert first_start.inpaint_strength_percent == 100, "an inpaint repaints the selection"
    assert (first_start.preset, first_start.steps) == ("", settings.PRESET_STEPS)


def test_what_is_kept_comes_back_unchanged(settings: types.ModuleType) -> None:
    chosen = settings.DockerSettings(
        prompt="a blue door\nwith brass handles, «ä»",
        negative_prompt="",
        inpaint_strength_percent=35,
        transform_strength_percent=45,
        preset="fast",
        steps=MAX_STEPS,
        seed=settings.MAX_SEED,
        seed_locked=True,
        count=3,
        model="tiny-sd15",
        read_visible=True,
    )
    stored = chosen.to_stored()
    assert set(stored) == set(settings.KEYS)
    assert all(isinstance(text, str) for text in stored.values()), "kritarc holds text"
    assert settings.DockerSettings.from_stored(stored) == chosen


def test_an_unset_seed_is_kept_as_empty_text_and_comes_back_unset(
    settings: types.ModuleType,
) -> None:
    stored = settings.DockerSettings().to_stored()
    assert stored["seed"] == ""
    assert settings.DockerSettings.from_stored(stored).seed is None


def test_hand_edited_values_come_back_valid(settings: types.ModuleType) -> None:
    edited = settings.DockerSettings.from_stored(
        {
            "prompt": "a red apple",
            "transform_strength_percent": "250",
            "inpaint_strength_percent": "-4",
            "preset": " Quality ",
            "steps": "many",
            "seed": "-5",
            "seed_locked": "perhaps",
            "count": "99",
            "model": "  tiny-sd15 ",
            "read_visible": "1",
        }
    )
    assert edited == settings.DockerSettings(
        prompt="a red apple",
        transform_strength_percent=100,  # into range
        inpaint_strength_percent=1,  # into range
        preset="quality",  # spelt loosely
        steps=0,  # no number: the default, the preset's
        seed=0,  # into range
        seed_locked=False,  # neither true nor false: the default
        count=MAX_COUNT,
        model="tiny-sd15",
        read_visible=False,
    )


@pytest.mark.parametrize(
    ("text", "steps"),
    [("12", 12), (" 12 ", 12), ("12.6", 13), ("0", 0), ("-3", 0), ("1e9", MAX_STEPS)],
)
def test_numbers_are_read_leniently_and_brought_into_range(
    settings: types.ModuleType, text: str, steps: int
) -> None:
    assert settings.DockerSettings.from_stored({"steps": text}).steps == steps


@pytest.mark.parametrize("text", ["", "nan", "inf", "-inf", "12 steps", "0x10"])
def test_text_that_is_no_finite_number_gives_the_default(
    settings: types.ModuleType, text: str
) -> None:
    assert settings.DockerSettings.from_stored({"steps": text, "seed": text}) == (
        settings.DockerSettings()
    )


@pytest.mark.parametrize(("text", "value"), [("true", True), (" TRUE ", True), ("false", False)])
def test_yes_and_no_are_read_as_krita_spells_them(
    settings: types.ModuleType, text: str, value: bool
) -> None:
    assert settings.DockerSettings.from_stored({"seed_locked": text}).seed_locked is value


def test_keys_of_other_versions_and_values_of_other_types_are_ignored(
    settings: types.ModuleType,
) -> None:
    older_keys = {"strength": "0.6", "sampler": "euler"}
    assert settings.DockerSettings.from_stored(older_keys) == settings.DockerSettings()
    # kritarc gives text; anything else reads as missing.
    not_text = {"prompt": None, "steps": 12, "seed_locked": True}
    assert settings.DockerSettings.from_stored(not_text) == settings.DockerSettings()


def test_the_retouch_row_starts_with_its_defaults_and_keeps_a_choice(
    settings: types.ModuleType,
) -> None:
    retouch = settings.RetouchSettings
    assert retouch.from_stored({}) == retouch()
    assert retouch().upscaler == "Lanczos" and not retouch().chosen
    chosen = retouch(
        upscaler="4x-UltraSharp",
        refine=True,
        restore_faces="gfpgan",
        denoise="",
        colorize="ddcolor",
        chosen=True,
    )
    stored = chosen.to_stored()
    assert set(stored) == set(settings.RETOUCH_KEYS)
    assert all(isinstance(text, str) for text in stored.values()), "kritarc holds text"
    assert retouch.from_stored(stored) == chosen


def test_retouch_settings_read_anything_without_failing(settings: types.ModuleType) -> None:
    odd = settings.RetouchSettings.from_stored(
        {"upscaler": "  ", "refine": "maybe", "restore_faces": None, "chosen": "TRUE"}
    )
    assert odd == settings.RetouchSettings(chosen=True)


def test_kept_retouch_models_the_server_no_longer_lists_are_left_out(
    settings: types.ModuleType,
) -> None:
    kept = settings.RetouchSettings(
        upscaler="gone-upscaler", restore_faces="gfpgan", denoise="gone", chosen=True
    )
    listed = kept.listed_by(["esrgan"], {"restore_faces": ["gfpgan"], "denoise": ["scunet"]})
    assert listed == settings.RetouchSettings(restore_faces="gfpgan", chosen=True)
