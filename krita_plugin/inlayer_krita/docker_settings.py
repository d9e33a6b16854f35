"""The docker's settings between Krita sessions: what is kept, and how it is read back (the
docker's own fields, `DockerSettings`, and its Retouch row's, `RetouchSettings`).

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
from dataclasses import asdict, dataclass, fields, replace

from .inlayer_client.protocol import MAX_COUNT, MAX_STEPS, Mode, Preset, default_strength

GROUP = "Inlayer"
RETOUCH_PREFIX = "retouch_"  # the Retouch row's keys in GROUP
LANCZOS = "Lanczos"  # the upscaler without a model, as the server names it
MAX_SEED = 2**31 - 1  # the seed box is a 32-bit signed spin box
_TRUE, _FALSE = "true", "false"  # how Krita's own settings spell booleans
PRESET_STEPS = 0  # the steps box at 0 leaves the steps to the preset
PRESETS = ("", *(preset.value for preset in Preset))  # "": the device's default


def _percent(mode: Mode) -> int:
    return round(default_strength(mode) * 100)


@dataclass(frozen=True)
class DockerSettings:
    prompt: str = ""
    negative_prompt: str = ""
    # Each button that uses a strength keeps its own: a transform keeps part of the layer, an
    # inpaint repaints the selection (Generate starts from noise and has none).
    inpaint_strength_percent: int = _percent(Mode.INPAINT)
    transform_strength_percent: int = _percent(Mode.IMG2IMG)
    preset: str = ""  # "" = the device's default (fast on a CPU where its pieces are installed)
    steps: int = PRESET_STEPS
    seed: int | None = None  # None: draw a new one
    seed_locked: bool = False
    count: int = 1
    model: str = ""  # "" = the server's default for each mode
    read_visible: bool = False  # read the visible image instead of the active layer
    lora: str = ""  # a LoRA's name, or NAME:SCALE; "" = none
    vae: str = ""  # "" = the preset's; "full", "tiny" or an autoencoder's name

    @classmethod
    def from_stored(cls, stored: Mapping[str, str]) -> DockerSettings:
        """The settings `stored` (key → text as kritarc holds it) says, valid whatever it holds."""
        default = cls()

        def number(key: str, minimum: int, maximum: int) -> int | None:
            value = _integer(stored.get(key))
            return getattr(default, key) if value is None else min(max(value, minimum), maximum)

        def flag(key: str) -> bool:
            return _flag(stored.get(key), getattr(default, key))

        def choice(key: str, allowed: tuple[str, ...]) -> str:
            text = _text(stored.get(key)).strip().lower()
            return text if text in allowed else getattr(default, key)

        return cls(
            prompt=_text(stored.get("prompt")),
            negative_prompt=_text(stored.get("negative_prompt")),
            inpaint_strength_percent=number("inpaint_strength_percent", 1, 100),
            transform_strength_percent=number("transform_strength_percent", 1, 100),
            preset=choice("preset", PRESETS),
            steps=number("steps", PRESET_STEPS, MAX_STEPS),
            seed=number("seed", 0, MAX_SEED),
            seed_locked=flag("seed_locked"),
            count=number("count", 1, MAX_COUNT),
            model=_text(stored.get("model")).strip(),
            read_visible=flag("read_visible"),
            lora=_text(stored.get("lora")).strip(),
            vae=_text(stored.get("vae")).strip(),
        )

    def to_stored(self) -> dict[str, str]:
        """Every setting as the text kritarc keeps (an unset seed as empty text)."""
        return {key: _as_stored(value) for key, value in asdict(self).items()}


KEYS = tuple(field.name for field in fields(DockerSettings))  # as kritarc names them

# The request fields of Restore, and what the Retouch dialog calls them.
RESTORE_FIELDS = (
    ("restore_faces", "Faces"),
    ("denoise", "Denoise"),
    ("colorize", "Colorize"),
)


@dataclass(frozen=True)
class RetouchSettings:
    """What the Retouch dialog sets: the upscaler, the refine, and Restore's models (model names
    as the server lists them; "" for none). Until the user has `chosen` in the dialog, Restore
    restores faces with the first face restorer the server lists."""

    upscaler: str = LANCZOS
    refine: bool = False  # repaint the upscaled picture at the docker's prompt
    restore_faces: str = ""
    denoise: str = ""
    colorize: str = ""
    chosen: bool = False

    def restore_options(self) -> dict[str, str]:
        return {name: getattr(self, name) for name, _label in RESTORE_FIELDS}

    @classmethod
    def from_stored(cls, stored: Mapping[str, str]) -> RetouchSettings:
        """The settings `stored` (kritarc's key → text, keys without `RETOUCH_PREFIX`) says,
        valid whatever it holds."""
        default = cls()
        return cls(
            upscaler=_text(stored.get("upscaler")).strip() or LANCZOS,
            refine=_flag(stored.get("refine"), default.refine),
            **{name: _text(stored.get(name)).strip() for name, _label in RESTORE_FIELDS},
            chosen=_flag(stored.get("chosen"), default.chosen),
        )

    def to_stored(self) -> dict[str, str]:
        return {key: _as_stored(value) for key, value in asdict(self).items()}

    def listed_by(
        self, upscalers: list[str], image_models: Mapping[str, list[str]]
    ) -> RetouchSettings:
        """These settings with what the server does not list (any more) left out: Lanczos for
        an upscaler, none for a Restore model."""
        kept = {
            name: value if value in image_models.get(name, []) else ""
            for name, value in self.restore_options().items()
        }
        upscaler = self.upscaler if self.upscaler in upscalers else LANCZOS
        return replace(self, upscaler=upscaler, **kept)


RETOUCH_KEYS = tuple(field.name for field in fields(RetouchSettings))  # after RETOUCH_PREFIX


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _flag(value: object, default: bool) -> bool:
    """The boolean `value` spells as Krita spells them, else `default`."""
    return {_TRUE: True, _FALSE: False}.get(_text(value).strip().lower(), default)


def _as_stored(value: object) -> str:
    """A setting as the text kritarc keeps: booleans as Krita spells them, None as empty."""
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    return "" if value is None else str(value)


def _integer(value: object) -> int | None:
    """The whole number `value` spells ("12", " 12.4 "), else None."""
    try:
        number = float(_text(value))
    except ValueError:
        return None
    return round(number) if math.isfinite(number) else None
