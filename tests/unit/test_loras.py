"""LoRAs on the tiny models: found, checked, loaded once, fused; bad ones refused whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from inlayer.core.client.protocol import (
    EditRequest,
    InvalidRequest,
    LoraChoice,
    Mode,
    ModelLoadError,
)
from inlayer.core.engine import Engine, image_array
from inlayer.core.loras import describe_lora, find_loras
from inlayer.core.model_files import LORAS, ModelFile
from inlayer.core.models import ModelRegistry
from tests.fixtures.models import (
    TINY_LORA,
    TINY_LORA_KOHYA,
    TINY_SD15,
    TINY_SDXL,
    TINY_SDXL_LORA,
    TINY_SPEED_LORA,
)


@pytest.fixture
def engine(tiny_models_dir: Path, tiny_add_ons_dir: Path) -> Engine:
    # float32: the comparisons below allow one level of difference, which a CPU with bf16 in
    # hardware (where the registry would choose bf16) does not keep.
    return Engine(ModelRegistry([tiny_models_dir, tiny_add_ons_dir], device="cpu", dtype="float32"))


def txt2img(*loras: LoraChoice, model: str = TINY_SD15, **fields) -> EditRequest:
    return EditRequest(
        Mode.TXT2IMG,
        prompt="a red apple",
        width=32,
        height=32,
        steps=2,
        guidance=1.0,
        seed=7,
        model=model,
        preset="quality",
        scheduler="euler",
        loras=loras,
        **fields,
    )


def pixels(engine: Engine, request: EditRequest) -> np.ndarray:
    return np.array(image_array(engine.run(request).images[0].image), dtype=np.int16)


def adapters(engine: Engine) -> set[str]:
    pipe, _ = engine.registry.pipeline(TINY_SD15, Mode.TXT2IMG)
    return {name for names in pipe.get_list_adapters().values() for name in names}


def test_the_loras_folder_lists_each_lora_with_its_layout_family_and_speed(tiny_add_ons_dir):
    registry = ModelRegistry([tiny_add_ons_dir])
    loras = {lora.name: lora for lora in find_loras(registry.catalog)}
    assert sorted(loras) == sorted([TINY_LORA, TINY_LORA_KOHYA, TINY_SPEED_LORA, TINY_SDXL_LORA])
    assert loras[TINY_LORA].layout == "diffusers"
    assert loras[TINY_LORA_KOHYA].layout == "kohya"
    # The tiny models' text embeddings are 32 (SD 1.5-shaped) and 64 (SDXL-shaped) wide.
    assert loras[TINY_LORA].width == 32
    assert loras[TINY_SDXL_LORA].width == 64 and loras[TINY_SDXL_LORA].family == "sdxl"
    assert loras[TINY_SPEED_LORA].speed is not None
    assert loras[TINY_SPEED_LORA].speed.scheduler == "lcm"
    assert loras[TINY_LORA].speed is None
    listed = {info.name: info for info in registry.add_ons()}
    assert listed[TINY_SPEED_LORA].speed == "lcm" and listed[TINY_LORA].speed == ""


def test_a_lora_changes_the_pixels_and_scale_zero_equals_none(engine):
    without = pixels(engine, txt2img())
    with_lora = pixels(engine, txt2img(LoraChoice(TINY_LORA, 1.0)))
    at_zero = pixels(engine, txt2img(LoraChoice(TINY_LORA, 0.0)))
    assert np.abs(with_lora - without).max() > 10
    assert np.abs(at_zero - without).max() <= 1
    again = pixels(engine, txt2img())
    assert np.array_equal(again, without)  # unfused when the set changed: the base is intact


def test_kohya_and_diffusers_layouts_of_one_lora_paint_the_same(engine):
    diffusers_layout = pixels(engine, txt2img(LoraChoice(TINY_LORA, 0.8)))
    kohya_layout = pixels(engine, txt2img(LoraChoice(TINY_LORA_KOHYA, 0.8)))
    assert np.abs(diffusers_layout - kohya_layout).max() <= 1


def test_a_fused_set_paints_what_the_unfused_adapters_paint(engine):
    request = txt2img(LoraChoice(TINY_LORA, 0.7), LoraChoice(TINY_SPEED_LORA, 0.5))
    fused = pixels(engine, request)
    pipe, _ = engine.registry.pipeline(TINY_SD15, Mode.TXT2IMG)
    pipe.unfuse_lora()  # the same adapters and scales, applied at every step instead
    output = pipe(
        prompt=request.prompt,
        num_inference_steps=2,
        guidance_scale=1.0,
        height=32,
        width=32,
        generator=torch.Generator().manual_seed(7),
        output_type="np",
    )
    unfused = np.rint(output.images[0] * 255).astype(np.int16)
    assert np.abs(fused[..., :3] - unfused).max() <= 1


def test_loading_a_lora_again_or_switching_reads_no_weights(engine):
    registry = engine.registry
    engine.run(txt2img(LoraChoice(TINY_LORA)))
    loras = registry._in_memory.loras
    engine.run(txt2img(LoraChoice(TINY_LORA, 0.5)))
    engine.run(txt2img(LoraChoice(TINY_LORA_KOHYA)))
    engine.run(txt2img(LoraChoice(TINY_LORA)))
    engine.run(txt2img())
    assert loras.loads == 2  # one read per file
    assert registry.weight_loads == 1  # the base model was never loaded again


def test_the_result_records_the_loras_as_a_list_of_names_and_scales(engine):
    result = engine.run(txt2img(LoraChoice(TINY_LORA, 0.5), LoraChoice(TINY_LORA, 0.25)))
    assert result.parameters["loras"] == [{"name": TINY_LORA, "scale": 0.75}]  # one name: added


def test_a_lora_of_another_family_is_refused_naming_both(engine):
    with pytest.raises(InvalidRequest) as refused:
        engine.run(txt2img(LoraChoice(TINY_SDXL_LORA)))
    assert refused.value.field == "loras"
    assert TINY_SDXL_LORA in str(refused.value) and TINY_SD15 in str(refused.value)
    assert "sdxl" in str(refused.value)
    engine.run(txt2img(LoraChoice(TINY_SDXL_LORA), model=TINY_SDXL))  # where it fits, it works


def test_a_missing_lora_is_refused_naming_it_and_what_is_installed(engine):
    with pytest.raises(InvalidRequest) as refused:
        engine.run(txt2img(LoraChoice("watercolour")))
    assert "watercolour" in str(refused.value) and TINY_LORA in str(refused.value)


def test_a_lora_with_unknown_keys_loads_nothing_and_the_next_request_works(engine, tmp_path):
    good = tmp_path / "fresh.safetensors"
    bad = tmp_path / "loha.safetensors"
    installed = engine.registry.catalog.find(LORAS)
    good.write_bytes(next(f.path for f in installed if f.name == TINY_LORA).read_bytes())
    save_file(
        {"lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a": torch.zeros(2, 2)}, str(bad)
    )
    engine.run(txt2img())
    before = adapters(engine)
    with pytest.raises(ModelLoadError) as refused:
        engine.run(txt2img(LoraChoice(str(good)), LoraChoice(str(bad))))
    assert "loha" in str(refused.value) and "hada_w1_a" in str(refused.value)
    assert adapters(engine) == before  # the good one of the same request was not loaded either
    assert engine.run(txt2img(LoraChoice(str(good)))).images


def test_a_lora_whose_layers_the_model_lacks_is_removed_again(engine, tmp_path):
    stray = tmp_path / "stray.safetensors"
    save_file(
        {
            "lora_unet_down_blocks_9_attentions_0_proj_in.lora_down.weight": torch.ones(2, 32),
            "lora_unet_down_blocks_9_attentions_0_proj_in.lora_up.weight": torch.ones(32, 2),
        },
        str(stray),
    )
    engine.run(txt2img())
    before = adapters(engine)
    with pytest.raises(ModelLoadError) as refused:
        engine.run(txt2img(LoraChoice(str(stray))))
    assert "stray" in str(refused.value)
    assert adapters(engine) == before
    assert engine.run(txt2img()).images


def test_a_pickled_lora_needs_the_opt_in(tmp_path):
    pickled = tmp_path / "old.pt"
    torch.save({"lora_unet_x_to_k.lora_down.weight": torch.zeros(2, 8)}, pickled)
    with pytest.raises(ModelLoadError, match="pickled"):
        describe_lora(ModelFile.of(pickled))
    assert describe_lora(ModelFile.of(pickled), allow_pickle=True).layout == "kohya"
