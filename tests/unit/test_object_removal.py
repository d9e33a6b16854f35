"""Mode.REMOVE (core/object_removal.py) with a random-weight LaMa loaded from its file."""

from __future__ import annotations

import numpy as np
import pytest

from inlayer.core.client.protocol import (
    EditRequest,
    InvalidRequest,
    Mask,
    Mode,
    ModelLoadError,
    RGBAImage,
)
from inlayer.core.engine import Engine
from inlayer.core.images import full_size_images
from inlayer.core.models import ModelRegistry
from tests.fixtures.image_models import LAMA, RESTOREFORMER

HEIGHT, WIDTH = 72, 88


def noise_image(seed: int = 3) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return pixels


def hole(top: int = 20, left: int = 30, size: int = 24) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[top : top + size, left : left + size] = 255
    return mask


def remove_request(pixels: np.ndarray, mask: np.ndarray, **fields) -> EditRequest:
    return EditRequest(
        mode=Mode.REMOVE,
        image=RGBAImage(WIDTH, HEIGHT, pixels.tobytes()),
        mask=Mask(WIDTH, HEIGHT, mask.tobytes()),
        seed=1,
        **fields,
    )


@pytest.fixture(scope="module")
def engine(restoration_models_dir) -> Engine:
    return Engine(ModelRegistry([restoration_models_dir]))


def test_remove_with_lama_changes_only_the_selection(engine):
    pixels, mask = noise_image(), hole()
    request = remove_request(pixels, mask, grow=0, feather=0)
    result = engine.run(request)
    assert result.model == LAMA and LAMA in result.hint
    [composited] = full_size_images(request, result)
    outside = mask == 0
    np.testing.assert_array_equal(composited[outside], pixels[outside])
    changed = (composited[..., :3] != pixels[..., :3]).any(axis=2)
    assert changed[mask == 255].mean() > 0.9
    [layer] = result.images
    assert (layer.x, layer.y, layer.image.width, layer.image.height) == (30, 20, 24, 24)


def test_remove_is_deterministic_and_keeps_the_source(engine):
    pixels, mask = noise_image(), hole()
    before = pixels.copy()
    first = engine.run(remove_request(pixels, mask))
    again = engine.run(remove_request(pixels, mask))
    assert first.images[0].image.data == again.images[0].image.data
    np.testing.assert_array_equal(pixels, before)


def test_remove_falls_back_to_the_weight_free_fill_and_says_so():
    pixels, mask = noise_image(), hole()
    result = Engine(ModelRegistry([])).run(remove_request(pixels, mask, grow=0, feather=0))
    assert result.model == "" and "weight-free fill" in result.hint and "pull" in result.hint
    request = remove_request(pixels, mask, grow=0, feather=0)
    [composited] = full_size_images(request, result)
    np.testing.assert_array_equal(composited[mask == 0], pixels[mask == 0])


def test_remover_fill_asks_for_the_weight_free_fill(engine):
    result = engine.run(remove_request(noise_image(), hole(), remover="fill"))
    assert result.model == "" and "weight-free" in result.hint


def test_an_empty_mask_is_refused(engine):
    empty = np.zeros((HEIGHT, WIDTH), np.uint8)
    with pytest.raises(InvalidRequest) as caught:
        engine.run(remove_request(noise_image(), empty))
    assert caught.value.field == "mask"


def test_a_face_restorer_as_the_remover_names_the_field(engine, restoration_models_dir):
    face_restorer = restoration_models_dir / "facerestore_models" / f"{RESTOREFORMER}.safetensors"
    with pytest.raises(InvalidRequest) as caught:
        engine.run(remove_request(noise_image(), hole(), remover=str(face_restorer)))
    assert caught.value.field == "remover"
    assert "face restorer" in caught.value.message and "object remover" in caught.value.message


def test_a_pickled_remover_needs_the_opt_in(restoration_models_dir, tmp_path):
    import torch

    pickled = tmp_path / "inpaint" / "lama-pickled.pth"
    pickled.parent.mkdir()
    torch.save({"model.model.1.bn_l.running_mean": torch.zeros(1)}, pickled)
    engine = Engine(ModelRegistry([tmp_path]))
    with pytest.raises(ModelLoadError, match="allow-pickle"):
        engine.run(remove_request(noise_image(), hole(), remover="lama-pickled"))


def test_an_unknown_remover_lists_the_installed_ones(engine):
    with pytest.raises(InvalidRequest, match="lama") as caught:
        engine.run(remove_request(noise_image(), hole(), remover="no-such-model"))
    assert caught.value.field == "remover"


def test_refine_runs_a_low_strength_inpaint_over_the_removal(
    restoration_models_dir, tiny_models_dir
):
    from tests.fixtures.models import TINY_SD15

    engine = Engine(ModelRegistry([restoration_models_dir, tiny_models_dir]))
    pixels, mask = noise_image(), hole()
    fields = {"grow": 0, "feather": 0}
    request = remove_request(
        pixels, mask, refine=0.5, model=TINY_SD15, steps=2, preset="quality", **fields
    )
    removed = engine.run(remove_request(pixels, mask, **fields))
    refined = engine.run(request)
    assert refined.parameters["mode"] == "remove" and refined.model == TINY_SD15
    assert LAMA in refined.hint
    [composited] = full_size_images(request, refined)
    np.testing.assert_array_equal(composited[mask == 0], pixels[mask == 0])
    [plain] = full_size_images(request, removed)
    assert (composited != plain).any()
