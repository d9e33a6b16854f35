"""The noise a sampler adds at each step, drawn from its own seed (a request's `noise_seed_delta`,
AUTOMATIC1111's `eta_noise_seed_delta`, step 4).

AUTOMATIC1111 draws a picture's initial noise from its seed and, when `eta_noise_seed_delta` is
set, the noise that ancestral and SDE samplers add at every step from a second generator seeded
seed + delta (modules/rng.py, `ImageRNG`); samplers that add no noise (Euler, DDIM, DPM++ 2M)
are untouched by it. Diffusers' pipelines draw both from the one generator they are given: the
initial latents in `prepare_latents`, the step noise in `scheduler.step(..., generator=...)`.
So the run's scheduler gets a `step` that passes the second generators on instead; the initial
noise, and a scheduler whose `step` takes no generator, stay as they were.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

SEED_RANGE = 2**32


def draws_step_noise(scheduler: Any) -> bool:
    """Whether the scheduler's `step` takes a generator: where a pipeline hands it one."""
    return "generator" in inspect.signature(type(scheduler).step).parameters


def seed_step_noise(scheduler: Any, seeds: list[int], delta: int) -> None:
    """Make `scheduler` (a run's own, built fresh for it) draw the step noise of the variations
    of `seeds` from generators seeded seed + `delta`, whatever generator the pipeline passes;
    nothing when `delta` is 0 or the scheduler adds no noise."""
    if not delta or not draws_step_noise(scheduler):
        return
    import torch

    generators = [torch.Generator("cpu").manual_seed((s + delta) % SEED_RANGE) for s in seeds]
    own: Any = generators[0] if len(generators) == 1 else generators
    step = type(scheduler).step.__get__(scheduler)

    # `functools.wraps` keeps the signature the pipeline inspects, so that the pipeline still
    # passes a generator, which is then replaced.
    @functools.wraps(step)
    def step_with_own_noise(*args: Any, **kwargs: Any) -> Any:
        kwargs["generator"] = own
        return step(*args, **kwargs)

    scheduler.step = step_with_own_noise
