"""What the plug-ins say about the editor versions and Qt bindings they meet.

The rules live in each plug-in's editor_support.py (standard library only); the real editors
exercise the supported paths (tests/editors). Here: the versions no CI editor has.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gimp_support = _load(ROOT / "gimp_plugin" / "inlayer" / "editor_support.py", "gimp_support")
krita_support = _load(
    ROOT / "krita_plugin" / "inlayer_krita" / "editor_support.py", "krita_support"
)


def test_a_complete_gimp_runs() -> None:
    """Real GIMP 3.0 and 3.2 run support_problem at every call (tests/editors); here, any
    version with the whole API."""
    assert gimp_support.unsupported_message("3.4.0", []) is None


def test_a_gimp_without_part_of_the_api_is_refused_naming_it() -> None:
    message = gimp_support.unsupported_message(
        "3.5.2", ["Gimp.Selection.bounds", "Gimp.progress_init"]
    )
    assert message is not None
    assert "GIMP 3.5.2" in message and "Gimp.Selection.bounds, Gimp.progress_init" in message
    assert "tested with GIMP 3.0 and 3.2" in message


@pytest.mark.parametrize(
    ("version", "noted"), [("3.0.4", False), ("3.2.6", False), ("3.1.2-RC1", True), ("4.0", True)]
)
def test_unexpected_failures_in_an_untested_gimp_say_so(version: str, noted: bool) -> None:
    note = gimp_support.untested_note(version)
    assert bool(note) is noted
    if noted:
        assert f"this is GIMP {version}" in note


@pytest.mark.parametrize(("version", "binding"), [("5.2.9", "PyQt5"), ("6.0.4.1", "PyQt6")])
def test_the_tested_kritas_load_without_a_word(version: str, binding: str) -> None:
    assert krita_support.refusal(version, binding) is None
    assert krita_support.untested_notice(version) is None


def test_an_older_krita_is_refused_with_its_version() -> None:
    message = krita_support.refusal("5.1.5", "PyQt5")
    assert message is not None and "Krita 5.2 or newer" in message and "5.1.5" in message


def test_a_krita_on_the_other_binding_is_refused() -> None:
    message = krita_support.refusal("6.0.1", "PyQt5")
    assert message is not None and "PyQt5" in message and "built with PyQt6" in message


@pytest.mark.parametrize("version", ["5.3.4", "6.1.0-beta1", "7.0.0"])
def test_a_newer_krita_loads_with_a_notice(version: str) -> None:
    assert krita_support.refusal(version, "PyQt6" if version >= "6" else "PyQt5") is None
    notice = krita_support.untested_notice(version)
    assert notice is not None and f"this is Krita {version}" in notice
