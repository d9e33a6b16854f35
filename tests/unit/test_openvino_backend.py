"""The OpenVINO backend (core/openvino_backend.py) on the tiny random-weight models: converted
outputs agree with PyTorch's, runs through the engine give PyTorch's pictures with progress and
cancel intact, the conversion cache follows the fused LoRA set, and what it cannot run falls
back to PyTorch saying why."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from inlayer.core.client.protocol import Cancelled, EditRequest, LoraChoice, Mode, ModelLoadError
from inlayer.core.engine import Engine, image_array
from inlayer.core.models import ModelRegistry
from inlayer.core.settings import SettingsError, load_settings
from tests.fixtures.models import (
    TINY_LORA,
    TINY_SD15,
    TINY_SD15_INPAINTING,
    TINY_SDXL,
    TINY_SPEED_LORA,
    TINY_TAESD,
)

openvino = pytest.importorskip("openvino")

from inlayer.core.openvino_backend import OpenVinoPart, OpenVinoUNet  # noqa: E402


def tolerance(module: OpenVinoUNet | OpenVinoPart) -> float:
    """The relative error OpenVINO's precision on this CPU allows: in f32 what the weights'
    fp16 storage leaves, in bf16 (what it picks on AMX) about a percent on full-size models,
    more on tiny ones."""
    return 1e-2 if module.compiled.precision == "f32" else 0.1


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value - reference).norm() / reference.norm())


def pytorch_engine(models: list[Path]) -> Engine:
    """The same models in PyTorch at OpenVINO's precision, float32 (on a CPU with bf16 in
    hardware the registry would otherwise choose bf16)."""
    return Engine(ModelRegistry(models, device="cpu", dtype="float32"))


def openvino_registry(models: list[Path], cache: Path) -> ModelRegistry:
    return ModelRegistry(models, device="cpu", backend="openvino", openvino_cache=cache)


@pytest.fixture
def with_pieces(tiny_models_dir: Path, tiny_add_ons_dir: Path) -> list[Path]:
    return [tiny_models_dir, tiny_add_ons_dir]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion cache for the tests that count no conversions: a tiny UNet takes about
    ten seconds to convert on a busy 2-core machine."""
    return tmp_path_factory.mktemp("openvino-cache")


def canvas_request(**fields) -> EditRequest:
    """An inpaint of a 40×24 hole in a 48×40 canvas: a working size whose latent sides are odd
    (the traced UNet must still run it)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 48, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    mask = np.zeros((40, 48), dtype=np.uint8)
    mask[8:32, 4:44] = 255
    from inlayer.core.client.protocol import Mask, RGBAImage

    defaults = {
        "image": RGBAImage(48, 40, pixels.tobytes()),
        "mask": Mask(48, 40, mask.tobytes()),
        "prompt": "an apple",
        "model": TINY_SD15,
        "preset": "fast",
        "steps": 2,
        "seed": 7,
        "refine": "off",  # the steps counted below are the edit's own; the refine has its tests
    }
    return EditRequest(Mode.INPAINT, **(defaults | fields))


def pixels_of(result) -> np.ndarray:
    return image_array(result.images[0].image).astype(np.int16)


def test_converted_unet_and_tiny_autoencoder_agree_with_pytorch(with_pieces, shared_cache):
    registry = openvino_registry(with_pieces, shared_cache)
    result = Engine(registry).run(canvas_request())
    assert result.hint == "" and result.parameters["vae"] == TINY_TAESD
    pipe, _ = registry.pipeline(TINY_SD15, Mode.INPAINT)
    assert isinstance(pipe.unet, OpenVinoUNet)
    generator = torch.Generator().manual_seed(0)
    for side in (16, 17, 22):  # the native latent size, and sizes that are no multiple of 8
        sample = torch.randn(1, 4, side, side + 2, generator=generator)
        text = torch.randn(1, 77, 32, generator=generator)
        for timestep in (torch.tensor(999), torch.tensor(499.5)):
            converted = pipe.unet(sample, timestep, text).sample
            with torch.no_grad():
                reference = pipe.unet.torch_unet(sample, timestep, text).sample
            assert relative_error(converted, reference) < tolerance(pipe.unet)
    tiny = pipe.vae
    assert isinstance(tiny.encoder, OpenVinoPart) and isinstance(tiny.decoder, OpenVinoPart)
    image = torch.rand(1, 3, 40, 48, generator=generator) * 2 - 1
    latents = torch.randn(1, 4, 20, 24, generator=generator)
    with torch.no_grad():
        encoded, decoded = tiny.encoder(image), tiny.decoder(latents)
        assert relative_error(encoded, tiny.encoder.torch_part(image)) < tolerance(tiny.encoder)
        assert relative_error(decoded, tiny.decoder.torch_part(latents)) < tolerance(tiny.decoder)


def test_an_edit_gives_pytorchs_picture_with_progress_and_previews(with_pieces, shared_cache):
    reference = pytorch_engine(with_pieces).run(canvas_request())
    engine = Engine(openvino_registry(with_pieces, shared_cache))
    reports = []
    result = engine.run(canvas_request(preview_interval=1), on_progress=reports.append)
    assert result.hint == ""
    assert result.parameters == reference.parameters | {"preview_interval": 1}
    assert (
        result.images[0].x == reference.images[0].x and result.images[0].y == reference.images[0].y
    )
    difference = np.abs(pixels_of(result) - pixels_of(reference))
    assert difference.mean() < 2.0 and difference.max() <= 32
    assert [report.step for report in reports] == [1, 2] and reports[-1].total == 2
    assert all(report.preview is not None for report in reports)
    # The blend (the layer's alpha) is the mask's, whatever computed the pixels.
    assert np.array_equal(pixels_of(result)[..., 3], pixels_of(reference)[..., 3])


def test_cancel_stops_an_openvino_run(with_pieces, shared_cache):
    engine = Engine(openvino_registry(with_pieces, shared_cache))
    cancel = threading.Event()
    steps = []

    def on_progress(progress) -> None:
        steps.append(progress.step)
        cancel.set()

    with pytest.raises(Cancelled):
        engine.run(canvas_request(steps=4), on_progress=on_progress, cancel=cancel)
    assert steps == [1]


def test_a_new_lora_set_converts_again_and_a_set_seen_before_is_read_back(with_pieces, tmp_path):
    registry = openvino_registry(with_pieces, tmp_path)
    engine = Engine(registry)
    backend = registry.openvino
    assert backend is not None
    engine.run(canvas_request())  # the speed LoRA fused: UNet, tiny encoder and decoder
    assert backend.conversions == 3
    styled = engine.run(canvas_request(loras=(LoraChoice(TINY_LORA, 0.8),)))
    assert backend.conversions == 4  # another UNet; the same tiny autoencoder
    engine.run(canvas_request())
    assert backend.conversions == 4  # the first set again: its UNet comes from the cache folder
    again = engine.run(canvas_request(loras=(LoraChoice(TINY_LORA, 0.8),)))
    assert backend.conversions == 4 and np.array_equal(pixels_of(again), pixels_of(styled))
    assert len(list(tmp_path.glob("*/model.xml"))) == 4

    fresh = openvino_registry(with_pieces, tmp_path)  # a restarted server: all from the cache
    restarted = Engine(fresh).run(canvas_request(loras=(LoraChoice(TINY_LORA, 0.8),)))
    assert fresh.openvino is not None and fresh.openvino.conversions == 0
    assert np.array_equal(pixels_of(restarted), pixels_of(styled))


def test_a_dedicated_inpainting_model_runs_its_nine_channel_unet(with_pieces, shared_cache):
    registry = openvino_registry(with_pieces, shared_cache)
    reference = pytorch_engine(with_pieces).run(
        canvas_request(model=TINY_SD15_INPAINTING, loras=(LoraChoice(TINY_SPEED_LORA),))
    )
    result = Engine(registry).run(
        canvas_request(model=TINY_SD15_INPAINTING, loras=(LoraChoice(TINY_SPEED_LORA),))
    )
    pipe, _ = registry.pipeline(TINY_SD15_INPAINTING, Mode.INPAINT)
    assert isinstance(pipe.unet, OpenVinoUNet) and pipe.unet.config.in_channels == 9
    assert result.hint == ""
    assert np.abs(pixels_of(result) - pixels_of(reference)).mean() < 2.0


def test_a_failed_conversion_runs_in_pytorch_and_says_why(with_pieces, tmp_path, caplog):
    unwritable = tmp_path / "cache"
    unwritable.write_text("a file where the cache folder should be")
    registry = openvino_registry(with_pieces, unwritable)
    reference = pytorch_engine(with_pieces).run(canvas_request())
    with caplog.at_level(logging.WARNING, logger="inlayer.core.openvino_backend"):
        result = Engine(registry).run(canvas_request())
    assert "OpenVINO could not convert the unet of tiny-sd15" in result.hint
    assert "running in PyTorch" in result.hint
    assert any("could not convert" in record.getMessage() for record in caplog.records)
    assert np.array_equal(pixels_of(result), pixels_of(reference))  # PyTorch's own picture
    pipe, _ = registry.pipeline(TINY_SD15, Mode.INPAINT)
    assert not isinstance(pipe.unet, OpenVinoUNet)
    caplog.clear()
    again = Engine(registry).run(canvas_request())
    assert again.hint == result.hint and not caplog.records  # tried once, told every run


def test_sdxl_stays_in_pytorch_and_the_result_says_why(tiny_models_dir, tmp_path):
    registry = openvino_registry([tiny_models_dir], tmp_path)
    request = EditRequest(
        Mode.TXT2IMG, width=32, height=32, model=TINY_SDXL, steps=1, seed=1, preset="quality"
    )
    result = Engine(registry).run(request)
    assert "added conditioning (SDXL)" in result.hint and "running in PyTorch" in result.hint
    assert registry.openvino is not None and registry.openvino.conversions == 0


def test_the_backend_setting_reads_from_config_environment_and_refuses_others(
    tmp_path, monkeypatch
):
    config = tmp_path / "config.ini"
    monkeypatch.delenv("INLAYER_BACKEND", raising=False)
    assert load_settings(config).backend == "torch"
    config.write_text("[device]\nbackend = openvino\n")
    assert load_settings(config).backend == "openvino"
    monkeypatch.setenv("INLAYER_BACKEND", "torch")
    assert load_settings(config).backend == "torch"
    monkeypatch.setenv("INLAYER_BACKEND", "onnx")
    with pytest.raises(SettingsError, match="INLAYER_BACKEND: expected one of torch, openvino"):
        load_settings(config)
    with pytest.raises(ModelLoadError, match="runs on the CPU, not on cuda"):
        ModelRegistry([], device="cuda", backend="openvino")
    with pytest.raises(ModelLoadError, match="leave dtype at auto"):
        ModelRegistry([], dtype="bfloat16", backend="openvino")
    registry = ModelRegistry([], backend="openvino", openvino_cache=tmp_path)
    assert (registry.device, registry.dtype) == ("cpu", torch.float32)
