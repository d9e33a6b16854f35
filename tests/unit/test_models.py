"""The model registry: listing, resolving, loading folders and single files, refusing pickles;
what it reports it loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from inlayer.core import models
from inlayer.core.client.protocol import InvalidRequest, Mode, ModelLoadError, ModelNotFound
from inlayer.core.models import CONFIGS_DIR, ModelRegistry, choose_dtype
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING, TINY_SD15_SINGLE, TINY_SDXL


@pytest.fixture
def registry(tiny_models_dir) -> ModelRegistry:
    return ModelRegistry([tiny_models_dir])


def copy_model(tiny_models_dir: Path, name: str, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(tiny_models_dir / name, target / name))


def test_lists_folders_and_single_files_with_family_and_modes(registry, tiny_models_dir):
    models = {info.name: info for info in registry.list()}
    assert set(models) == {TINY_SD15, TINY_SD15_INPAINTING, TINY_SD15_SINGLE, TINY_SDXL}
    assert models[TINY_SD15].family == "sd15" and models[TINY_SD15].format == "diffusers"
    assert models[TINY_SD15].modes == ("inpaint", "img2img", "txt2img")
    assert models[TINY_SD15_INPAINTING].inpainting
    assert models[TINY_SD15_INPAINTING].modes == ("inpaint",)
    assert models[TINY_SDXL].family == "sdxl"
    single = models[TINY_SD15_SINGLE]
    assert single.format == "safetensors" and single.family == "sd15" and not single.inpainting
    assert single.source == str(tiny_models_dir / f"{TINY_SD15_SINGLE}.safetensors")


def test_resolves_paths_too(tiny_models_dir):
    catalog = ModelRegistry([]).catalog
    assert catalog.resolve(str(tiny_models_dir / TINY_SD15)).family == "sd15"
    single = catalog.resolve(str(tiny_models_dir / f"{TINY_SD15_SINGLE}.safetensors"))
    assert single.format == "safetensors"


def test_single_file_loads_offline_with_the_same_weights_as_the_folder(tiny_models_dir):
    folder, _ = ModelRegistry([tiny_models_dir]).pipeline(TINY_SD15, Mode.TXT2IMG)
    single, _ = ModelRegistry([tiny_models_dir]).pipeline(TINY_SD15_SINGLE, Mode.TXT2IMG)
    for component in ("unet", "vae", "text_encoder"):
        expected = getattr(folder, component).state_dict()
        loaded = getattr(single, component).state_dict()
        assert expected.keys() == loaded.keys(), component
        assert all(torch.equal(expected[key], loaded[key]) for key in expected), component
    # The shipped CLIP tokenizer: the real vocabulary.
    assert single.tokenizer("a photo of a cat").input_ids == [
        49406,
        320,
        1125,
        539,
        320,
        2368,
        49407,
    ]


def test_modes_share_weights_and_load_once(registry):
    pipes = [
        registry.pipeline(TINY_SD15, mode)[0] for mode in (Mode.TXT2IMG, Mode.IMG2IMG, Mode.INPAINT)
    ]
    assert registry.weight_loads == 1
    assert {id(pipe.unet) for pipe in pipes} == {id(pipes[0].unet)}
    assert {pipe.unet.dtype for pipe in pipes} == {registry.dtype}
    assert [type(pipe).__name__ for pipe in pipes] == [
        "StableDiffusionPipeline",
        "StableDiffusionImg2ImgPipeline",
        "StableDiffusionInpaintPipeline",
    ]
    assert registry.pipeline(TINY_SD15, Mode.IMG2IMG)[0] is pipes[1]
    assert registry.weight_loads == 1


def test_another_model_replaces_the_loaded_one(registry):
    registry.pipeline(TINY_SD15, Mode.TXT2IMG)
    registry.pipeline(TINY_SD15_INPAINTING, Mode.INPAINT)
    registry.pipeline(TINY_SD15, Mode.TXT2IMG)
    assert registry.weight_loads == 3


def test_inpainting_model_serves_only_inpaint(registry):
    assert type(registry.pipeline(TINY_SD15_INPAINTING, Mode.INPAINT)[0]).__name__ == (
        "StableDiffusionInpaintPipeline"
    )
    with pytest.raises(InvalidRequest, match="only inpaint") as refused:
        registry.pipeline(TINY_SD15_INPAINTING, Mode.IMG2IMG)
    assert refused.value.field == "model"


def test_defaults_per_mode(registry, tiny_models_dir):
    assert registry.default_for(Mode.INPAINT) == TINY_SD15_INPAINTING
    assert registry.default_for(Mode.TXT2IMG) == TINY_SD15
    configured = ModelRegistry([tiny_models_dir], default_models={Mode.TXT2IMG: TINY_SDXL})
    assert configured.default_for(Mode.TXT2IMG) == TINY_SDXL


def test_no_models_says_how_to_get_one(tmp_path):
    with pytest.raises(ModelNotFound, match=r"\.safetensors"):
        ModelRegistry([tmp_path]).default_for(Mode.INPAINT)


def test_unknown_model_names_what_is_there(registry):
    with pytest.raises(ModelNotFound, match=TINY_SD15_INPAINTING):
        registry.catalog.resolve("not-a-model")


def test_folder_missing_a_component(tiny_models_dir, tmp_path):
    broken = copy_model(tiny_models_dir, TINY_SD15, tmp_path)
    shutil.rmtree(broken / "vae")
    with pytest.raises(ModelLoadError, match="'vae'"):
        ModelRegistry([tmp_path]).pipeline(TINY_SD15, Mode.TXT2IMG)


def test_folder_missing_component_weights(tiny_models_dir, tmp_path):
    broken = copy_model(tiny_models_dir, TINY_SD15, tmp_path)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="weights of its 'unet'"):
        ModelRegistry([tmp_path]).pipeline(TINY_SD15, Mode.TXT2IMG)


def test_pickled_folder_needs_the_opt_in(tiny_models_dir, tmp_path):
    pipe, _ = ModelRegistry([tiny_models_dir]).pipeline(TINY_SD15, Mode.TXT2IMG)
    pipe.save_pretrained(tmp_path / "pickled", safe_serialization=False)
    assert list((tmp_path / "pickled" / "unet").glob("*.bin"))
    with pytest.raises(ModelLoadError, match="allow-pickle"):
        ModelRegistry([tmp_path]).pipeline("pickled", Mode.TXT2IMG)
    allowed = ModelRegistry([tmp_path], allow_pickle=True)
    assert allowed.pipeline("pickled", Mode.TXT2IMG)[0].unet is not None


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin"])
def test_pickled_checkpoint_needs_the_opt_in(tmp_path, suffix):
    (tmp_path / f"model{suffix}").write_bytes(b"\x80\x04not really a pickle")
    registry = ModelRegistry([tmp_path])
    assert [info.format for info in registry.list()] == ["ckpt"]
    with pytest.raises(ModelLoadError, match="allow-pickle"):
        registry.pipeline("model", Mode.TXT2IMG)


def test_unreadable_safetensors_is_a_load_error(tmp_path):
    (tmp_path / "broken.safetensors").write_bytes(b"garbage")
    registry = ModelRegistry([tmp_path])
    assert registry.list() == []  # skipped in listings
    with pytest.raises(ModelLoadError, match="not a readable"):
        registry.pipeline("broken", Mode.TXT2IMG)


def test_hub_repo_not_cached_while_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFound, match="HF_HUB_OFFLINE"):
        ModelRegistry([]).catalog.resolve("someone/some-model")


def test_device_and_dtype_choice(tiny_models_dir, monkeypatch):
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: False)
    assert choose_dtype("cpu", None) == torch.float32
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: True)
    assert choose_dtype("cpu", None) == torch.bfloat16
    assert choose_dtype("cuda", None) == torch.float16
    assert choose_dtype("mps", None) == torch.float16
    assert choose_dtype("cpu", "bf16") == torch.bfloat16
    with pytest.raises(ModelLoadError, match="unknown"):
        choose_dtype("cpu", "float8")
    registry = ModelRegistry([tiny_models_dir], device="cpu", dtype="bfloat16")
    assert registry.device == "cpu" and registry.dtype == torch.bfloat16
    shared = [registry.pipeline(TINY_SD15, mode)[0] for mode in (Mode.TXT2IMG, Mode.INPAINT)]
    assert {pipe.unet.dtype for pipe in shared} == {torch.bfloat16}


def test_the_registry_reads_no_environment(monkeypatch, tmp_path):
    """The settings read INLAYER_* variables (test_settings.py); a registry takes its values."""
    monkeypatch.setenv("INLAYER_DEVICE", "cuda:7")
    monkeypatch.setenv("INLAYER_DTYPE", "bfloat16")
    monkeypatch.setenv("INLAYER_ALLOW_PICKLE", "1")
    (tmp_path / "model.ckpt").write_bytes(b"\x80\x04not really a pickle")
    # A CPU without bf16 in hardware, so that the default (float32) differs from the variable's.
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: False)
    registry = ModelRegistry([tmp_path], device="cpu")
    assert registry.dtype == torch.float32
    assert not registry.allow_pickle
    with pytest.raises(ModelLoadError, match="allow-pickle"):
        registry.pipeline("model", Mode.TXT2IMG)
    assert ModelRegistry([]).device != "cuda:7"


def test_pipeline_reports_what_it_loaded(registry):
    pipe, loaded = registry.pipeline(TINY_SD15_INPAINTING, Mode.INPAINT)
    assert loaded.info == registry.catalog.resolve(TINY_SD15_INPAINTING).info()
    assert loaded.info.inpainting and loaded.info.family == "sd15"
    assert (loaded.device, loaded.dtype) == ("cpu", pipe.unet.dtype)
    assert loaded.vae_scale_factor == pipe.vae_scale_factor == 2  # the tiny VAE's two blocks
    assert loaded.native_side == pipe.unet.config.sample_size * 2 == 32
    assert loaded.scheduler_config["_class_name"] == "PNDMScheduler"  # the model's own

    sdxl_pipe, sdxl = registry.pipeline(TINY_SDXL, Mode.IMG2IMG)
    assert (sdxl.info.name, sdxl.info.family, sdxl.info.inpainting) == (TINY_SDXL, "sdxl", False)
    assert sdxl.scheduler_config["_class_name"] == "EulerDiscreteScheduler"
    # Every mode of one model shares the record, as it shares the weights.
    assert registry.pipeline(TINY_SDXL, Mode.TXT2IMG)[1] is sdxl
    assert registry.pipeline(TINY_SDXL, Mode.TXT2IMG)[0] is not sdxl_pipe


@pytest.mark.parametrize("family", ["sd15", "sd15-inpainting", "sdxl", "sdxl-inpainting"])
def test_shipped_configs_describe_each_family(family):
    folder = CONFIGS_DIR / family
    index = json.loads((folder / "model_index.json").read_text())
    unet = json.loads((folder / "unet" / "config.json").read_text())
    assert unet["in_channels"] == (9 if family.endswith("inpainting") else 4)
    assert ("text_encoder_2" in index) == family.startswith("sdxl")
    components = [
        name
        for name, value in index.items()
        if isinstance(value, list) and value[0] is not None and not name.startswith("tokenizer")
    ]  # the tokenizers are the shared CLIP tokenizer
    assert components
    for component in components:
        assert list((folder / component).glob("*config.json")), component
