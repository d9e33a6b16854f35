"""Full autoencoders from vae/ folders in place of a model's own: listed with their family,
loaded from a diffusers folder or an original-layout file, refused clearly when they do not fit."""

from __future__ import annotations

import numpy as np
import pytest

from inlayer.core.client.protocol import (
    AddOnKind,
    EditRequest,
    InvalidRequest,
    Mode,
    ModelLoadError,
)
from inlayer.core.engine import Engine, image_array
from inlayer.core.models import ModelRegistry
from tests.fixtures.models import (
    TINY_FULL_VAE,
    TINY_FULL_VAE_LDM,
    TINY_FULL_VAE_WRONG,
    TINY_FULL_VAE_XL,
    TINY_SD15,
    TINY_SDXL,
)


@pytest.fixture(scope="module")
def engine(tiny_models_dir, tiny_full_vaes_dir) -> Engine:
    return Engine(ModelRegistry([tiny_models_dir, tiny_full_vaes_dir]))


def picture(engine: Engine, vae: str, model: str = TINY_SD15) -> np.ndarray:
    request = EditRequest(
        Mode.TXT2IMG, prompt="a red apple", width=32, height=32, steps=2, seed=3,
        guidance=1.0, model=model, vae=vae,
    )  # fmt: skip
    result = engine.run(request)
    assert result.parameters["vae"] == vae
    return image_array(result.images[0].image)


def test_full_autoencoders_are_listed_with_their_family(engine) -> None:
    listed = {a.name: a.family for a in engine.registry.add_ons() if a.kind == AddOnKind.FULL_VAE}
    assert listed == {
        TINY_FULL_VAE: "sd15",
        TINY_FULL_VAE_LDM: "sd15",
        TINY_FULL_VAE_XL: "sdxl",
        TINY_FULL_VAE_WRONG: "sd15",
    }


def test_a_full_autoencoder_replaces_the_models_own_for_that_run(engine) -> None:
    own = picture(engine, "full")
    tuned = picture(engine, TINY_FULL_VAE)
    assert not np.array_equal(tuned, own)
    # The same weights in A1111's original layout, converted on load: the same picture.
    assert np.array_equal(picture(engine, TINY_FULL_VAE_LDM), tuned)
    assert np.array_equal(picture(engine, "full"), own)  # the model's own is back


def test_an_autoencoder_of_another_family_is_refused_naming_both(engine) -> None:
    with pytest.raises(InvalidRequest) as refused:
        picture(engine, TINY_FULL_VAE_XL)
    assert refused.value.field == "vae"
    assert TINY_FULL_VAE_XL in refused.value.message and "sdxl" in refused.value.message
    assert TINY_SD15 in refused.value.message
    with pytest.raises(InvalidRequest, match="is for sd15"):
        picture(engine, TINY_FULL_VAE, model=TINY_SDXL)


def test_an_autoencoder_that_does_not_fit_is_a_clear_error_and_the_next_run_works(engine) -> None:
    own = picture(engine, "full")
    with pytest.raises(ModelLoadError, match=f"autoencoder {TINY_FULL_VAE_WRONG}"):
        picture(engine, TINY_FULL_VAE_WRONG)
    assert np.array_equal(picture(engine, "full"), own)


def test_an_unknown_name_says_where_autoencoders_go(engine) -> None:
    with pytest.raises(InvalidRequest, match="a full one in a vae/ folder"):
        picture(engine, "no-such-vae")
