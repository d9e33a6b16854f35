"""Few-step diffusion: what distilled models and speed LoRAs want to run well.

A *distilled model* (LCM, SD-Turbo, SDXL-Turbo, SDXL-Lightning, ...) or an ordinary model with a
*speed LoRA* (LCM-LoRA, TCD-LoRA, Hyper-SD, Lightning LoRAs) makes a usable picture in 1-8 steps
instead of 20-50, but only with the scheduler it was distilled for and with classifier-free
guidance off (guidance ≤ 1: one UNet evaluation per step instead of two).

Both are recognised by their names, as they are published (``lcm-lora-sdv1-5``,
``Hyper-SD15-8steps-lora``, ``sd_xl_turbo_1.0``, ``sdxl_lightning_4step``), and a distilled
model also by its own scheduler config (an LCM checkpoint ships ``LCMScheduler``). No torch here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Guidance at or below this runs one UNet evaluation per step (diffusers' pipelines skip the
# unconditional pass when guidance_scale ≤ 1).
GUIDANCE_OFF = 1.0


@dataclass(frozen=True)
class FewStepSettings:
    """How a few-step model or speed LoRA is run: its scheduler, steps and guidance."""

    kind: str  # "lcm", "tcd", "hyper", "lightning", "turbo"
    scheduler: str  # a name of `protocol.SCHEDULERS`
    steps: int
    guidance: float


# In the order they are tried: the first word found in a lower-cased name decides.
_BY_NAME = (
    FewStepSettings("lcm", "lcm", 4, GUIDANCE_OFF),
    FewStepSettings("tcd", "tcd", 4, GUIDANCE_OFF),
    # Hyper-SD's N-step LoRAs were distilled for DDIM with trailing timesteps; Euler with the same
    # timesteps is the deterministic equivalent that Inlayer ships.
    FewStepSettings("hyper", "euler_trailing", 8, GUIDANCE_OFF),
    FewStepSettings("lightning", "euler_trailing", 4, GUIDANCE_OFF),
    FewStepSettings("turbo", "euler_trailing", 2, 0.0),
)
_STEPS_IN_NAME = re.compile(r"(\d+)[-_ ]?steps?")


def few_step_settings_of_name(name: str) -> FewStepSettings | None:
    """What a model or LoRA of this name wants, when its name shows it is a few-step one; the
    step count written in the name (``8steps``, ``4step``) wins over the kind's default."""
    lowered = name.lower()
    for settings in _BY_NAME:
        if settings.kind in lowered:
            written = _STEPS_IN_NAME.search(lowered)
            if written and 1 <= int(written.group(1)) <= 16:
                return FewStepSettings(
                    settings.kind, settings.scheduler, int(written.group(1)), settings.guidance
                )
            return settings
    return None


def few_step_settings_of_model(
    name: str, scheduler_config: Mapping[str, Any], unet_config: Mapping[str, Any]
) -> FewStepSettings | None:
    """What a distilled model wants, or None for an ordinary model."""
    if unet_config.get("time_cond_proj_dim") is not None:
        # An LCM-distilled UNet takes the guidance scale as an input, in its one evaluation per
        # step: it costs nothing, and LCM's models were distilled around 8.
        return FewStepSettings("lcm", "lcm", 4, 8.0)
    if scheduler_config.get("_class_name") == "LCMScheduler":
        return _BY_NAME[0]
    if scheduler_config.get("_class_name") == "TCDScheduler":
        return _BY_NAME[1]
    return few_step_settings_of_name(name)
