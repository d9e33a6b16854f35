"""The diffusers scheduler behind each name a request may use (`protocol.SCHEDULERS`).

A scheduler is built fresh for every run from the model's own scheduler config, so one request's
choice never leaks into the next and every run starts from the same scheduler state.
"""

from __future__ import annotations

from typing import Any

from .client.protocol import SCHEDULERS, InvalidRequest


def make_scheduler(name: str, model_config: dict[str, Any]):
    """A new scheduler: `name` from `SCHEDULERS`, or "" for the model's own class."""
    import diffusers

    if not name:
        cls = getattr(diffusers, model_config["_class_name"])
        return cls.from_config(model_config)
    if name not in SCHEDULERS:
        raise InvalidRequest(
            "scheduler", f"{name!r} is unknown; choose one of {sorted(SCHEDULERS)}"
        )
    choice = SCHEDULERS[name]
    return getattr(diffusers, choice.diffusers_class).from_config(model_config, **choice.config)
