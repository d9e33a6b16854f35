"""A request's `noise_seed_delta` (A1111's eta_noise_seed_delta): the step noise of ancestral
samplers comes from seed + delta; the initial noise and noise-free samplers do not change."""

from __future__ import annotations

import numpy as np
import pytest

from inlayer.core.client.protocol import EditRequest, InvalidRequest, Mode
from inlayer.core.engine import Engine, image_array
from inlayer.core.models import ModelRegistry
from tests.fixtures.models import TINY_SD15


@pytest.fixture(scope="module")
def engine(tiny_models_dir) -> Engine:
    return Engine(ModelRegistry([tiny_models_dir]))


def picture(engine: Engine, scheduler: str, delta: int, steps: int = 3) -> np.ndarray:
    request = EditRequest(
        Mode.TXT2IMG, prompt="a red apple", width=32, height=32, steps=steps, seed=7,
        guidance=1.0, model=TINY_SD15, scheduler=scheduler, noise_seed_delta=delta,
    )  # fmt: skip
    result = engine.run(request)
    assert result.parameters["noise_seed_delta"] == delta
    return image_array(result.images[0].image)


def test_the_delta_seeds_an_ancestral_samplers_step_noise(engine) -> None:
    plain = picture(engine, "euler_a", 0)
    offset = picture(engine, "euler_a", 31337)
    assert not np.array_equal(offset, plain)
    assert np.array_equal(picture(engine, "euler_a", 31337), offset)  # reproducible
    assert not np.array_equal(picture(engine, "euler_a", 1), offset)


def test_the_initial_noise_stays_the_seeds(engine) -> None:
    # Euler a's one and last step adds no noise (it steps to sigma 0): only the initial noise
    # makes the picture, and the delta leaves it alone.
    assert np.array_equal(picture(engine, "euler_a", 31337, 1), picture(engine, "euler_a", 0, 1))


def test_a_sampler_without_step_noise_ignores_the_delta(engine) -> None:
    assert np.array_equal(picture(engine, "euler", 31337), picture(engine, "euler", 0))


@pytest.mark.parametrize("value", [-1, 2**32, True, 1.5])
def test_a_delta_out_of_range_is_refused_naming_it(value) -> None:
    request = EditRequest(Mode.TXT2IMG, width=32, height=32, noise_seed_delta=value)
    with pytest.raises(InvalidRequest) as refused:
        request.validate()
    assert refused.value.field == "noise_seed_delta"
