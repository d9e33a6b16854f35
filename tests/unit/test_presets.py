"""Presets resolve as documented (core/presets.py), few-step runs use their schedulers and skip
the unguided UNet pass, and the CPU's dtype follows what it has in hardware."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from inlayer.core.client.protocol import EditRequest, InvalidRequest, LoraChoice, Mode, Preset
from inlayer.core.engine import Engine
from inlayer.core.few_step import few_step_settings_of_model, few_step_settings_of_name
from inlayer.core.models import LoadedModel, ModelRegistry, choose_dtype, cpu_has_native_bf16
from inlayer.core.presets import QUALITY_GUIDANCE, QUALITY_STEPS, recipe_for
from inlayer.core.schedulers import make_scheduler
from tests.fixtures.models import TINY_LORA, TINY_SD15, TINY_SPEED_LORA, TINY_TAESD


def loaded(registry: ModelRegistry, device: str = "cpu") -> LoadedModel:
    """What the registry loads for tiny-sd15, as if it ran on `device`."""
    _, model = registry.pipeline(TINY_SD15, Mode.TXT2IMG)
    return dataclasses.replace(model, device=device)


def request(**fields) -> EditRequest:
    return EditRequest(Mode.TXT2IMG, width=32, height=32, model=TINY_SD15, **fields)


@pytest.fixture
def with_pieces(tiny_models_dir: Path, tiny_add_ons_dir: Path) -> ModelRegistry:
    return ModelRegistry([tiny_models_dir, tiny_add_ons_dir], device="cpu")


@pytest.fixture
def without_pieces(tiny_models_dir: Path) -> ModelRegistry:
    return ModelRegistry([tiny_models_dir], device="cpu")


def test_on_a_cpu_with_the_pieces_the_default_is_fast(with_pieces):
    recipe = recipe_for(request(), loaded(with_pieces), with_pieces.catalog)
    assert recipe.preset == Preset.FAST
    assert (recipe.steps, recipe.guidance, recipe.scheduler) == (4, 1.0, "lcm")
    assert [lora.file.name for lora in recipe.loras] == [TINY_SPEED_LORA]
    assert recipe.vae is not None and recipe.vae.name == TINY_TAESD
    assert recipe.hint == ""


def test_on_a_cpu_without_the_pieces_the_default_is_quality_with_a_hint(without_pieces):
    recipe = recipe_for(request(), loaded(without_pieces), without_pieces.catalog)
    assert recipe.preset == Preset.QUALITY
    assert (recipe.steps, recipe.guidance, recipe.scheduler) == (QUALITY_STEPS, 7.0, "")
    assert recipe.loras == () and recipe.vae is None and recipe.preview_vae is None
    assert "inlayer models pull lcm-lora-sd15" in recipe.hint
    assert "inlayer models pull taesd" in recipe.hint


def test_on_a_gpu_the_default_is_quality_without_a_hint(with_pieces):
    recipe = recipe_for(request(), loaded(with_pieces, "cuda"), with_pieces.catalog)
    assert recipe.preset == Preset.QUALITY and recipe.hint == "" and recipe.vae is None
    assert recipe.preview_vae is not None  # previews still use the installed tiny autoencoder


def test_fast_named_on_a_gpu_brings_every_piece(with_pieces):
    recipe = recipe_for(request(preset="fast"), loaded(with_pieces, "cuda"), with_pieces.catalog)
    assert recipe.scheduler == "lcm" and recipe.vae is not None and len(recipe.loras) == 1


def test_fast_without_its_pieces_is_refused_saying_how_to_get_them(without_pieces):
    with pytest.raises(InvalidRequest) as refused:
        recipe_for(request(preset="fast"), loaded(without_pieces), without_pieces.catalog)
    assert refused.value.field == "preset" and "inlayer models pull" in str(refused.value)


def test_the_requests_own_fields_win_over_the_presets(with_pieces):
    explicit = request(
        preset="fast", steps=6, guidance=1.5, scheduler="tcd", vae="full",
        loras=(LoraChoice(TINY_LORA, 0.5),),
    )  # fmt: skip
    recipe = recipe_for(explicit, loaded(with_pieces), with_pieces.catalog)
    assert (recipe.steps, recipe.guidance, recipe.scheduler, recipe.vae) == (6, 1.5, "tcd", None)
    assert [(lora.file.name, lora.scale) for lora in recipe.loras] == [
        (TINY_LORA, 0.5),
        (TINY_SPEED_LORA, 1.0),
    ]
    quality = recipe_for(request(preset="quality"), loaded(with_pieces), with_pieces.catalog)
    assert (quality.steps, quality.guidance, quality.loras) == (QUALITY_STEPS, QUALITY_GUIDANCE, ())


def test_a_speed_lora_the_request_brings_runs_as_it_wants_in_any_preset(with_pieces):
    brought = request(preset="quality", loras=(LoraChoice(TINY_SPEED_LORA, 1.0),))
    recipe = recipe_for(brought, loaded(with_pieces, "cuda"), with_pieces.catalog)
    assert (recipe.steps, recipe.guidance, recipe.scheduler) == (4, 1.0, "lcm")
    assert len(recipe.loras) == 1  # not added twice
    assert recipe.vae is None  # the quality preset keeps the full autoencoder


def test_distilled_models_are_known_by_their_configs_and_names():
    lcm = few_step_settings_of_model("dreamshaper", {}, {"time_cond_proj_dim": 256})
    assert lcm is not None and lcm.scheduler == "lcm" and lcm.guidance > 1.0
    turbo = few_step_settings_of_model("sd-turbo", {"_class_name": "EulerDiscreteScheduler"}, {})
    assert turbo is not None and (turbo.scheduler, turbo.guidance) == ("euler_trailing", 0.0)
    assert few_step_settings_of_model("v1-5-pruned", {"_class_name": "PNDMScheduler"}, {}) is None
    hyper = few_step_settings_of_name("Hyper-SD15-8steps-lora")
    assert hyper is not None and hyper.steps == 8
    lightning = few_step_settings_of_name("sdxl_lightning_2step_lora")
    assert lightning is not None and lightning.steps == 2


def test_a_fast_run_records_its_recipe_and_evaluates_the_unet_once_per_step(with_pieces):
    engine = Engine(with_pieces)
    pipe, _ = with_pieces.pipeline(TINY_SD15, Mode.TXT2IMG)
    batches: list[int] = []
    hook = pipe.unet.register_forward_pre_hook(lambda _, args: batches.append(args[0].shape[0]))
    try:
        result = engine.run(request(prompt="an apple", negative_prompt="blur", seed=1))
    finally:
        hook.remove()
    assert result.parameters["preset"] == "fast" and result.parameters["steps"] == 4
    assert result.parameters["loras"] == [{"name": TINY_SPEED_LORA, "scale": 1.0}]
    assert result.parameters["vae"] == TINY_TAESD
    assert batches == [1, 1, 1, 1]  # guidance off: no unconditional half of a batch of 2
    guided = engine.run(request(preset="quality", steps=2, scheduler="euler", seed=1))
    assert guided.parameters["guidance"] == QUALITY_GUIDANCE


@pytest.mark.parametrize(
    ("name", "cls", "spacing"),
    [
        ("lcm", "LCMScheduler", None),
        ("tcd", "TCDScheduler", None),
        ("euler_trailing", "EulerDiscreteScheduler", "trailing"),
    ],
)
def test_few_step_schedulers_by_name(with_pieces, name, cls, spacing):
    _, model = with_pieces.pipeline(TINY_SD15, Mode.TXT2IMG)
    scheduler = make_scheduler(name, model.scheduler_config)
    assert type(scheduler).__name__ == cls
    if spacing:
        assert scheduler.config.timestep_spacing == spacing
        scheduler.set_timesteps(2)
        assert int(scheduler.timesteps[0]) == 999  # trailing: from the last training step


def test_the_cpu_dtype_follows_what_the_cpu_has():
    assert cpu_has_native_bf16("flags : fpu sse avx2 amx_bf16 amx_tile")
    assert cpu_has_native_bf16("flags : fpu avx512f avx512_bf16")
    assert not cpu_has_native_bf16("flags : fpu sse avx2 fma")
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert choose_dtype("cpu", None) == expected
    assert choose_dtype("cuda", None) == torch.float16
