"""Which GIMP the plug-in meets, and what it tells the user when that GIMP is not one it knows.

Inlayer is tested with GIMP 3.0 and 3.2. A GIMP that lacks part of the API the plug-in calls is
refused before anything is read, with a message naming the missing parts; an untested but
complete GIMP runs, and an unexpected failure there says which versions were tested, so the
report reads as "untested version", not as a puzzle.

Standard library only at import: the GIMP module is passed in, so the rules can be checked
outside GIMP too.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

TESTED_VERSIONS = ((3, 0), (3, 2))
TESTED_TEXT = "GIMP 3.0 and 3.2"

# (namespace, attribute) of the GIMP API the plug-in calls; all of it exists in GIMP 3.0.
REQUIRED_API = (
    ("Gimp", "ImageProcedure"),
    ("Gimp", "ProcedureConfig"),
    ("Gimp.Selection", "bounds"),
    ("Gimp.Layer", "new"),
    ("Gimp.Layer", "create_mask"),
    ("Gimp.Image", "undo_group_start"),
    ("Gimp.Parasite", "new"),
    ("Gimp", "progress_init"),
)


def parse_version(text: str) -> tuple[int, int, int]:
    """(major, minor, micro) of a version text such as "3.2.6" or "3.1.2-RC1"."""
    major, minor, micro = ([int(part) for part in re.findall(r"\d+", text)[:3]] + [0, 0, 0])[:3]
    return major, minor, micro


def is_tested(version: tuple[int, int, int]) -> bool:
    return version[:2] in TESTED_VERSIONS


def missing_api(gimp: ModuleType) -> list[str]:
    """The parts of REQUIRED_API this GIMP module lacks, spelt Gimp.Name.attribute."""
    missing = []
    for namespace, attribute in REQUIRED_API:
        owner: Any = gimp
        for part in namespace.split(".")[1:]:
            owner = getattr(owner, part, None)
        if owner is None or not hasattr(owner, attribute):
            missing.append(f"{namespace}.{attribute}")
    return missing


def unsupported_message(version_text: str, missing: list[str]) -> str | None:
    """Why this GIMP cannot run Inlayer, or None when it can."""
    if not missing:
        return None
    return (
        f"Inlayer cannot run in GIMP {version_text}: it lacks {', '.join(missing)}. "
        f"Inlayer is tested with {TESTED_TEXT}; use one of those, or an Inlayer made for this GIMP."
    )


def untested_note(version_text: str) -> str:
    """A sentence to add to an unexpected failure's message in a GIMP nobody tested ("" in a
    tested one)."""
    if is_tested(parse_version(version_text)):
        return ""
    return (
        f" Inlayer is tested with {TESTED_TEXT}, and this is GIMP {version_text}: please "
        "report this message with that version."
    )


def support_problem(gimp: ModuleType) -> str | None:
    """Checked at each run, before the image is read."""
    return unsupported_message(gimp.version(), missing_api(gimp))
