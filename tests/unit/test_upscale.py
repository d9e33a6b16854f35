"""Upscale: a tiny ESRGAN built from spandrel's architecture class, saved as .safetensors and
loaded through the real path; Lanczos without one; the refine after it; the clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inlayer.core.client.protocol import (
    EditRequest,
    InvalidRequest,
    Mask,
    Mode,
    ModelLoadError,
    Progress,
    RGBAImage,
)
from inlayer.core.engine import Engine, image_array
from inlayer.core.image_models import load_image_model
from inlayer.core.models import ModelRegistry
from inlayer.core.upscalers import MODEL_TILE, lanczos, run_in_tiles
from tests.fixtures.models import TINY_SD15

TINY_ESRGAN = "tiny-esrgan-x2"


@pytest.fixture(scope="module")
def upscalers_dir(tmp_path_factory) -> Path:
    """A models folder with a tiny ESRGAN (×2), a pickled one and a file of no architecture."""
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    folder = tmp_path_factory.mktemp("upscalers")
    upscale_models = folder / "upscale_models"
    upscale_models.mkdir()
    torch.manual_seed(0)
    model = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(upscale_models / f"{TINY_ESRGAN}.safetensors"))
    torch.save(state, upscale_models / "pickled-esrgan.pth")
    save_file({"weight": torch.zeros(3, 3)}, str(upscale_models / "not-a-model.safetensors"))
    return folder


@pytest.fixture(scope="module")
def engine(tiny_models_dir, upscalers_dir) -> Engine:
    return Engine(ModelRegistry([tiny_models_dir, upscalers_dir]))


def picture(width: int, height: int) -> RGBAImage:
    pixels = np.random.default_rng(2).integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[:4, :, 3] = 0  # a transparent band, scaled with the picture
    return RGBAImage(width, height, pixels.tobytes())


def upscale(**fields) -> EditRequest:
    return EditRequest(Mode.UPSCALE, **({"image": picture(40, 30), "seed": 3} | fields))


def test_a_tiny_esrgan_loads_and_upscales_through_the_real_path(engine):
    result = engine.run(upscale(upscaler=TINY_ESRGAN))
    (layer,) = result.images
    assert (result.canvas_width, result.canvas_height) == (80, 60)
    assert (layer.x, layer.y, layer.image.width, layer.image.height) == (0, 0, 80, 60)
    assert result.parameters["upscaler"] == TINY_ESRGAN and result.parameters["mode"] == "upscale"
    pixels = image_array(layer.image)
    assert (pixels[:7, :, 3] == 0).all() and (pixels[9:, :, 3] == 255).all()
    plain = lanczos(image_array(picture(40, 30))[..., :3].copy(), result_extent(result))
    assert not np.array_equal(pixels[..., :3], plain)  # the model painted it, not Lanczos


def result_extent(result):
    from inlayer.core.client.bounds import Extent

    return Extent(result.canvas_width, result.canvas_height)


def test_big_pictures_run_in_tiles_without_seams(upscalers_dir):
    model = load_image_model(
        upscalers_dir / "upscale_models" / f"{TINY_ESRGAN}.safetensors",
        field="upscaler", purposes=("SR",), allow_pickle=False,
    )  # fmt: skip
    rgb = np.random.default_rng(4).integers(0, 256, (MODEL_TILE + 40, MODEL_TILE + 70, 3))
    rgb = rgb.astype(np.uint8)
    tiled = run_in_tiles(rgb, model, None)
    with torch.inference_mode():
        whole = model.descriptor(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)
    whole = whole[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    assert tiled.shape == whole.shape == (2 * rgb.shape[0], 2 * rgb.shape[1], 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1


def test_lanczos_when_no_upscaler_is_installed(tiny_models_dir):
    lone = Engine(ModelRegistry([tiny_models_dir]))
    result = lone.run(upscale(scale=4))
    assert result.parameters["upscaler"] == "Lanczos"
    assert (result.canvas_width, result.canvas_height) == (160, 120)
    expected = lanczos(image_array(picture(40, 30))[..., :3].copy(), result_extent(result))
    assert np.array_equal(image_array(result.images[0].image)[..., :3], expected)


def test_a_selection_is_upscaled_alone(engine):
    mask = np.zeros((30, 40), dtype=np.uint8)
    mask[5:15, 10:30] = 255
    request = upscale(upscaler="lanczos", mask=Mask(40, 30, mask.tobytes()))
    result = engine.run(request)
    assert (result.canvas_width, result.canvas_height) == (40, 20)


def test_the_refine_after_the_upscale_runs_the_model_in_tiles(engine):
    reports: list[Progress] = []
    request = upscale(upscaler=TINY_ESRGAN, refine="0.5", prompt="sharp", steps=4, model=TINY_SD15)
    refined = engine.run(request, on_progress=reports.append)
    plain = engine.run(upscale(upscaler=TINY_ESRGAN))
    assert refined.model == TINY_SD15 and reports and reports[-1].step == reports[-1].total
    assert (refined.canvas_width, refined.canvas_height) == (80, 60)
    assert refined.images[0].image.data != plain.images[0].image.data


@pytest.mark.parametrize(
    ("fields", "error", "field", "words"),
    [
        ({"scale": 3}, InvalidRequest, "scale", "[2, 4]"),
        ({"image": picture(9000, 2)}, InvalidRequest, "scale", "limit"),
        ({"upscaler": "nope"}, InvalidRequest, "upscaler", "upscale_models/"),
        ({"upscaler": "not-a-model"}, InvalidRequest, "upscaler", "architecture"),
        ({"upscaler": "pickled-esrgan"}, ModelLoadError, "", "pickle"),
        ({"refine": "strong"}, InvalidRequest, "refine", "(0, 1]"),
    ],
)
def test_bad_upscales_are_refused_clearly(engine, fields, error, field, words):
    with pytest.raises(error) as caught:
        engine.run(upscale(**fields))
    assert caught.value.field == field and words in str(caught.value), str(caught.value)


def test_repair_models_beside_the_upscalers_are_left_out_of_the_upscalers(tmp_path):
    """upscale_models/ holds repair models too (they keep the size: DRUNet here). Their purpose
    is told from the tensors' shapes without loading them: the upscalers' list and the default
    upscaler leave them out, the repair lists keep them, and a pickled file, whose purpose
    cannot be told without unpickling it, stays in both."""
    from inlayer.core.image_models import listed_purpose
    from inlayer.core.restoration_models import ModelSource
    from inlayer.core.upscalers import upscaler_choices
    from tests.fixtures.image_models import (
        DRUNET,
        build_tiny_drunet,
        build_tiny_esrgan,
        save_module,
    )

    folder = tmp_path / "upscale_models"
    esrgan = save_module(build_tiny_esrgan(), folder / f"{TINY_ESRGAN}.safetensors")
    drunet = save_module(build_tiny_drunet(), folder / f"{DRUNET}.safetensors")
    torch.save(build_tiny_esrgan().state_dict(), folder / "upscaler-pickled.pth")
    assert (listed_purpose(esrgan), listed_purpose(drunet)) == ("SR", "Restoration")
    assert listed_purpose(folder / "upscaler-pickled.pth") is None

    registry = ModelRegistry([tmp_path])
    choices = [choice.name for choice in upscaler_choices(registry.catalog)]
    assert choices == ["Lanczos", TINY_ESRGAN, "upscaler-pickled"]
    assert ModelSource(registry).names_by_field()["denoise"] == [DRUNET, "upscaler-pickled"]
    # DRUNet sorts first, yet the upscale that names no upscaler gets the ESRGAN.
    engine = Engine(registry)
    assert engine.run(upscale()).parameters["upscaler"] == TINY_ESRGAN
    with pytest.raises(InvalidRequest, match="drunet-tiny is a repair model") as caught:
        engine.run(upscale(upscaler=DRUNET))
    assert caught.value.field == "upscaler" and "not an upscaler" in caught.value.message


def test_an_install_without_spandrel_says_which_extra_to_add(engine, monkeypatch):
    """The default install leaves spandrel out (it comes with inlayer[restore])."""
    import sys

    monkeypatch.setitem(sys.modules, "spandrel", None)  # as if it were not installed
    with pytest.raises(ModelLoadError) as caught:
        engine.run(upscale(upscaler=TINY_ESRGAN))
    assert 'pip install "inlayer[restore]"' in str(caught.value)
    assert engine.run(upscale(upscaler="Lanczos")).images  # Lanczos needs no model
