"""Scheduler names a request may use (`protocol.SCHEDULERS`) and the diffusers classes behind them.

A scheduler is built fresh for every run from the model's own scheduler config, so one request's
choice never leaks into the next and every run starts from the same scheduler state.
"""

from __future__ import annotations

from typing import Any

from .client.protocol import SCHEDULERS, InvalidRequest

# name -> (diffusers class name, config overrides). The names follow the common UI labels.
SCHEDULER_CLASSES: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpm++_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpm++_2m_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
    ),
    # The SDE variant of DPM++ 2M: diffusers' single-step DPMSolverSDEScheduler needs torchsde,
    # this multistep one does not and gives the same kind of results.
    "dpm++_sde_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
    ),
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "lms": ("LMSDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}


def make_scheduler(name: str, model_config: dict[str, Any]):
    """A new scheduler: `name` from `SCHEDULERS`, or "" for the model's own class."""
    import diffusers

    if not name:
        cls = getattr(diffusers, model_config["_class_name"])
        return cls.from_config(model_config)
    if name not in SCHEDULER_CLASSES:
        raise InvalidRequest(
            "scheduler", f"{name!r} is unknown; choose one of {sorted(SCHEDULERS)}"
        )
    class_name, overrides = SCHEDULER_CLASSES[name]
    try:
        return getattr(diffusers, class_name).from_config(model_config, **overrides)
    except ImportError as error:  # LMS needs scipy, which Inlayer does not install
        raise InvalidRequest("scheduler", f"{name} is not available here: {error}") from None
