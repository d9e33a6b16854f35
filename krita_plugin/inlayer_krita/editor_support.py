"""Which Krita and Qt binding the plug-in meets, and what it tells the user about them.

Inlayer is tested with Krita 5.2 (PyQt5) and Krita 6.0 (PyQt6). An older Krita lacks parts of
the scripting API the plug-in uses, so the plug-in does not load there and says why; a newer,
untested Krita loads, and is told once per version that nobody tested it, so that a failure
there reads as "untested version", not as a puzzle. Standard library only: the Krita version
and the binding's name are passed in, so the rules can be checked outside Krita too.
"""

from __future__ import annotations

import re

TESTED_VERSIONS = ((5, 2), (6, 0))
TESTED_TEXT = "Krita 5.2 (PyQt5) and Krita 6.0 (PyQt6)"
OLDEST = (5, 2)
# The binding each Krita generation is built with.
BINDING_OF_MAJOR = {5: "PyQt5", 6: "PyQt6"}


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) of Krita's version text, such as "5.2.9" or "6.0.4.1" or "6.1.0-beta1"."""
    major, minor = ([int(part) for part in re.findall(r"\d+", text)[:2]] + [0, 0])[:2]
    return major, minor


def refusal(version_text: str, binding: str) -> str | None:
    """Why Inlayer does not load in this Krita, or None when it does."""
    version = parse_version(version_text)
    if version < OLDEST:
        return (
            f"Inlayer needs Krita 5.2 or newer, and this is Krita {version_text}. "
            f"It is tested with {TESTED_TEXT}: please update Krita."
        )
    expected = BINDING_OF_MAJOR.get(version[0])
    if expected is not None and binding != expected:
        return (
            f"This Krita {version_text} runs Python plug-ins with {binding}, but Krita "
            f"{version[0]} is built with {expected}: Inlayer cannot draw its docker with a "
            f"different Qt. It is tested with {TESTED_TEXT}."
        )
    return None


def untested_notice(version_text: str) -> str | None:
    """A note for a Krita nobody tested Inlayer in, or None in a tested one."""
    if parse_version(version_text) in TESTED_VERSIONS:
        return None
    return (
        f"Inlayer is tested with {TESTED_TEXT}; this is Krita {version_text}. It should work, "
        "but if something fails, please report it with this version. (Shown once per version.)"
    )
