"""The docker's settings between Krita sessions: what is kept, and how it is read back.

Krita keeps a plug-in's settings as text in kritarc (group `GROUP`). What comes back may be
missing (the first start), written by an older version of the plug-in (other keys, other
ranges), or edited by hand (anything at all). `DockerSettings.from_stored` reads every value
through one place: it keeps what is valid, brings numbers into range and falls back to the
default for the rest, and never raises, so a settings file can never stop the docker from
starting. A model name it keeps may still be one the server no longer has: the docker checks
that once the server's model list arrives.

No Krita or Qt here: the tests read settings without Krita.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from .inlayer_client.protocol import MAX_COUNT, MAX_STEPS

GROUP = "Inlayer"
MAX_SEED = 2**31 - 1  # the seed box is a 32-bit signed spin box
_TRUE, _FALSE = "true", "false"  # how Krita's own settings spell booleans


@dataclass(frozen=True)
class DockerSettings:
    prompt: str = ""
    negative_prompt: str = ""
    strength_percent: int = 100
    steps: int = 20
    seed: int | None = None  # None: draw a new one
    seed_locked: bool = False
    count: int = 1
    model: str = ""  # "" = the server's default for each mode
    read_visible: bool = False  # read the visible image instead of the active layer

    @classmethod
    def from_stored(cls, stored: Mapping[str, str]) -> DockerSettings:
        """The settings `stored` (key → text as kritarc holds it) says, valid whatever it holds."""
        default = cls()

        def number(key: str, minimum: int, maximum: int) -> int | None:
            value = _integer(stored.get(key))
            return getattr(default, key) if value is None else min(max(value, minimum), maximum)

        def flag(key: str) -> bool:
            text = _text(stored.get(key)).strip().lower()
            return {_TRUE: True, _FALSE: False}.get(text, getattr(default, key))

        return cls(
            prompt=_text(stored.get("prompt")),
            negative_prompt=_text(stored.get("negative_prompt")),
            strength_percent=number("strength_percent", 1, 100),
            steps=number("steps", 1, MAX_STEPS),
            seed=number("seed", 0, MAX_SEED),
            seed_locked=flag("seed_locked"),
            count=number("count", 1, MAX_COUNT),
            model=_text(stored.get("model")).strip(),
            read_visible=flag("read_visible"),
        )

    def to_stored(self) -> dict[str, str]:
        """Every setting as the text kritarc keeps (an unset seed as empty text)."""
        stored = {}
        for key, value in asdict(self).items():
            if isinstance(value, bool):
                stored[key] = _TRUE if value else _FALSE
            else:
                stored[key] = "" if value is None else str(value)
        return stored


KEYS = tuple(field.name for field in fields(DockerSettings))  # as kritarc names them


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _integer(value: object) -> int | None:
    """The whole number `value` spells ("12", " 12.4 "), else None."""
    try:
        number = float(_text(value))
    except ValueError:
        return None
    return round(number) if math.isfinite(number) else None
