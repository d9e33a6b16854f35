"""AUTOMATIC1111's options object (GET/POST /sdapi/v1/options), as A1111 keeps it: every option a
client writes is stored in a JSON file in Inlayer's config folder and read back, across restarts.

The options that change generation are checked when written (and in a call's
`override_settings`), and act: `sd_model_checkpoint`, `samples_format`,
`CLIP_stop_at_last_layers` (a request's `clip_skip`), `eta_noise_seed_delta` (its
`noise_seed_delta`) and `sd_vae` (its `vae`, checked against the server's list in a1111.py). A
value Inlayer would not follow is a 422 rather than a setting that is stored and then not
honoured.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

from inlayer.core.client.protocol import MAX_CLIP_SKIP, InvalidRequest

log = logging.getLogger(__name__)

# The options A1111 clients read at start, at A1111's defaults. Any other option a client writes
# is stored and returned as well.
DEFAULT_OPTIONS: dict[str, Any] = {
    "sd_model_checkpoint": "",
    "sd_vae": "Automatic",
    "CLIP_stop_at_last_layers": 1,
    "eta_noise_seed_delta": 0,
    "samples_format": "png",
    "samples_save": True,
    "save_images_add_number": True,
    "grid_format": "png",
    "send_seed": True,
    "send_size": True,
    "sd_checkpoint_cache": 0,
    "sd_vae_checkpoint_cache": 0,
    "live_previews_enable": True,
    "show_progress_every_n_steps": 1,
    "show_progress_type": "Approx NN",
    "eta_ddim": 0.0,
    "eta_ancestral": 1.0,
    "img2img_fix_steps": False,
    "enable_emphasis": True,
    "upscaler_for_img2img": None,
    "face_restoration_model": None,
    "sd_lora": "None",
    "lora_preferred_name": "Alias from file",
    "add_model_hash_to_info": True,
    "add_model_name_to_info": True,
    "sd_hypernetwork": "None",
    "interrogate_clip_num_beams": 1,
}
# The image formats an answer may come in: samples_format -> Pillow's format name.
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
# The `sd_vae` values that keep each model's own autoencoder (any other names one of GET sd-vae).
OWN_VAE = ("Automatic", "None", None, "")
# Whole-number options that change generation, and their ranges.
_NUMBERS = {
    "CLIP_stop_at_last_layers": (1, MAX_CLIP_SKIP),
    "eta_noise_seed_delta": (0, 2**32 - 1),
}


def strip_hash(title: str) -> str:
    """A1111 titles look like "name [hash]"; Inlayer's model names have no hash."""
    return re.sub(r"\s*\[[0-9a-fA-F]+\]$", "", title)


def whole_number(value: Any) -> int | None:
    """`value` as an int where it is one (A1111's sliders send 2.0 for 2); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        return None
    return int(value)


def check_option(name: str, value: Any, field: str) -> None:
    """Refuse a value of an option that changes generation that Inlayer would not follow."""
    if name == "samples_format" and str(value).lower() not in IMAGE_FORMATS:
        raise InvalidRequest(field, f"{value!r} is not one of {sorted(IMAGE_FORMATS)}")
    if name in _NUMBERS:
        low, high = _NUMBERS[name]
        if whole_number(value) is None or not low <= whole_number(value) <= high:
            raise InvalidRequest(field, f"{value!r} must be a whole number in [{low}, {high}]")


class A1111Options:
    """The stored options; `path` None keeps them in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._values: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            values = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            log.warning("ignoring %s: %s", self.path, error)
            return {}
        return values if isinstance(values, dict) else {}

    def all(self) -> dict[str, Any]:
        return {**DEFAULT_OPTIONS, **self._values}

    def checkpoint(self) -> str:
        """The checkpoint the options select; "" = Inlayer's default for each mode."""
        return strip_hash(str(self._values.get("sd_model_checkpoint") or ""))

    def chosen(self, name: str, overrides: dict[str, Any]) -> Any:
        """The option's value for one call: its override, else the stored value."""
        return overrides.get(name, self.all()[name])

    def image_format(self, overrides: dict[str, Any]) -> str:
        return IMAGE_FORMATS[str(self.chosen("samples_format", overrides)).lower()]

    def number(self, name: str, overrides: dict[str, Any]) -> int:
        """A whole-number option (`_NUMBERS`) for one call, checked when written."""
        return int(self.chosen(name, overrides))

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            check_option(name, value, name)
        with self._lock:
            self._values.update(values)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                temporary = self.path.with_suffix(".tmp")
                temporary.write_text(json.dumps(self._values, indent=1), encoding="utf-8")
                temporary.replace(self.path)
