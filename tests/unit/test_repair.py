"""Mode.RESTORE's repair models (core/photo_restore.py): a random-weight DRUNet loaded from
its file in upscale_models/, blended over the input by its strength, and a random-weight
DDColor that colours a grey picture."""

from __future__ import annotations

import numpy as np
import pytest

from inlayer.core.client.protocol import EditRequest, InvalidRequest, Mask, Mode, RGBAImage
from inlayer.core.engine import Engine
from inlayer.core.images import full_size_images
from inlayer.core.models import ModelRegistry
from tests.fixtures.image_models import DRUNET, RESTOREFORMER, TINY_DDCOLOR

HEIGHT, WIDTH = 48, 64


def noise_image() -> np.ndarray:
    pixels = np.random.default_rng(11).integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    pixels[..., 3] = 200  # a half-transparent layer keeps its alpha
    return pixels


def restore(engine, pixels, **fields):
    request = EditRequest(
        mode=Mode.RESTORE, image=RGBAImage(WIDTH, HEIGHT, pixels.tobytes()), **fields
    )
    return request, engine.run(request)


@pytest.fixture(scope="module")
def engine(restoration_models_dir) -> Engine:
    return Engine(ModelRegistry([restoration_models_dir]))


def layer(result) -> np.ndarray:
    [generated] = result.images
    return np.frombuffer(generated.image.data, np.uint8).reshape(HEIGHT, WIDTH, 4)


def test_denoise_at_a_strength_blends_the_model_over_the_input(engine):
    pixels = noise_image()
    _, full = restore(engine, pixels, denoise=DRUNET)
    _, half = restore(engine, pixels, denoise=f"{DRUNET}:0.5")
    assert full.hint == f"denoise with {DRUNET}"
    repaired, blended = layer(full), layer(half)
    np.testing.assert_array_equal(repaired[..., 3], pixels[..., 3])
    assert (repaired[..., :3] != pixels[..., :3]).mean() > 0.9
    expected = (pixels[..., :3].astype(np.float32) + repaired[..., :3]) / 2
    assert np.abs(blended[..., :3] - expected).max() <= 0.5


def test_denoise_under_a_selection_changes_only_the_selection(engine):
    pixels, mask = noise_image(), np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[10:30, 20:50] = 255
    request, result = restore(
        engine, pixels, denoise=DRUNET, mask=Mask(WIDTH, HEIGHT, mask.tobytes()), feather=0, grow=0
    )
    [composited] = full_size_images(request, result)
    np.testing.assert_array_equal(composited[mask == 0], pixels[mask == 0])
    assert (composited[mask > 0][..., :3] != pixels[mask > 0][..., :3]).any()


def test_a_face_restorer_as_the_denoiser_names_the_field(engine, restoration_models_dir):
    restorer = restoration_models_dir / "facerestore_models" / f"{RESTOREFORMER}.safetensors"
    with pytest.raises(InvalidRequest, match="repair model") as caught:
        restore(engine, noise_image(), denoise=str(restorer))
    assert caught.value.field == "denoise"


def test_a_strength_outside_0_1_is_refused():
    request = EditRequest(
        mode=Mode.RESTORE, image=RGBAImage(1, 1, b"\0\0\0\xff"), denoise=f"{DRUNET}:2"
    )
    with pytest.raises(InvalidRequest, match="must be in") as caught:
        request.validate()
    assert caught.value.field == "denoise"


def grey_photograph() -> np.ndarray:
    """A black-and-white print: a grey ramp, the same value on R, G and B."""
    ramp = np.linspace(40, 220, WIDTH, dtype=np.float32)[None, :].repeat(HEIGHT, axis=0)
    grey = np.rint(ramp).astype(np.uint8)
    return np.dstack([grey, grey, grey, np.full_like(grey, 255)])


def test_colorize_paints_a_grey_photograph_in_colour(restoration_models_dir, colorizer_models_dir):
    """DDColor takes one grey channel and answers in colour: the grey of an RGB layer goes in."""
    engine = Engine(ModelRegistry([restoration_models_dir, colorizer_models_dir]))
    pixels = grey_photograph()
    _, result = restore(engine, pixels, colorize=TINY_DDCOLOR)
    assert result.hint == f"colorize with {TINY_DDCOLOR}"
    coloured = layer(result).astype(np.int16)
    spread = coloured[..., :3].max(axis=2) - coloured[..., :3].min(axis=2)
    assert np.median(spread) > 5, "the picture came back grey"
    np.testing.assert_array_equal(coloured[..., 3], pixels[..., 3])
