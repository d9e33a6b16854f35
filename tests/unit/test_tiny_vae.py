"""The tiny autoencoder: encode, decode and previews in every mode, its layouts, its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

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
from inlayer.core.models import ModelRegistry
from inlayer.core.tiny_vae import TinyVaeFile, find_tiny_vaes, load_tiny_vae
from tests.fixtures.models import (
    TINY_SD15,
    TINY_SD15_INPAINTING,
    TINY_SDXL,
    TINY_TAESD,
    TINY_TAESDXL,
)

SIDE = 32


@pytest.fixture
def engine(tiny_models_dir: Path, tiny_add_ons_dir: Path) -> Engine:
    return Engine(ModelRegistry([tiny_models_dir, tiny_add_ons_dir], device="cpu"))


def canvas() -> RGBAImage:
    pixels = np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return RGBAImage(SIDE, SIDE, pixels.tobytes())


def centre_mask() -> Mask:
    mask = np.zeros((SIDE, SIDE), dtype=np.uint8)
    mask[8:24, 8:24] = 255
    return Mask(SIDE, SIDE, mask.tobytes())


def request(mode: Mode, model: str, vae: str, **fields) -> EditRequest:
    image = None if mode == Mode.TXT2IMG else canvas()
    mask = centre_mask() if mode == Mode.INPAINT else None
    size = {"width": SIDE, "height": SIDE} if image is None else {}
    return EditRequest(
        mode, image=image, mask=mask, prompt="a red apple", steps=2, guidance=1.0, seed=3,
        model=model, vae=vae, preset="quality", scheduler="euler", **size, **fields,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "model", "tiny"),
    [
        (Mode.TXT2IMG, TINY_SD15, TINY_TAESD),
        (Mode.IMG2IMG, TINY_SD15, TINY_TAESD),
        (Mode.INPAINT, TINY_SD15, TINY_TAESD),
        (Mode.INPAINT, TINY_SD15_INPAINTING, TINY_TAESD),
        (Mode.INPAINT, TINY_SDXL, TINY_TAESDXL),
    ],
)
def test_the_tiny_autoencoder_paints_in_every_mode_and_decodes_the_previews(
    engine, mode, model, tiny
):
    previews: list[Progress] = []
    full = engine.run(request(mode, model, "full"))
    fast = engine.run(request(mode, model, tiny, preview_interval=1), on_progress=previews.append)
    assert fast.parameters["vae"] == tiny and full.parameters["vae"] == "full"
    full_image, fast_image = full.images[0], fast.images[0]
    assert (fast_image.x, fast_image.y, fast_image.image.width, fast_image.image.height) == (
        full_image.x, full_image.y, full_image.image.width, full_image.image.height,
    )  # fmt: skip
    assert not np.array_equal(image_array(fast_image.image), image_array(full_image.image))
    pictures = [p.preview for p in previews if p.preview is not None]
    assert len(pictures) == 2  # one per step
    # A decoded preview has the working size; the linear one would have the latent size.
    assert (pictures[0].width, pictures[0].height) == (SIDE, SIDE)
    # "tiny" names the installed one of the model's family.
    assert engine.run(request(mode, model, "tiny")).parameters["vae"] == tiny


def test_previews_are_decoded_by_an_installed_tiny_autoencoder_even_with_the_full_one(engine):
    previews: list[Progress] = []
    engine.run(request(Mode.TXT2IMG, TINY_SD15, "full", preview_interval=1), previews.append)
    assert previews[-1].preview is not None and previews[-1].preview.width == SIDE


def test_without_a_tiny_autoencoder_previews_are_the_linear_latent_map(tiny_models_dir):
    engine = Engine(ModelRegistry([tiny_models_dir], device="cpu"))
    previews: list[Progress] = []
    engine.run(request(Mode.TXT2IMG, TINY_SD15, "", preview_interval=1), previews.append)
    assert previews[-1].preview is not None
    assert previews[-1].preview.width == SIDE // 2  # the tiny models' latents: VAE factor 2


def test_a_tiny_autoencoder_of_another_family_is_refused_naming_both(engine):
    with pytest.raises(InvalidRequest) as refused:
        engine.run(request(Mode.TXT2IMG, TINY_SD15, TINY_TAESDXL))
    assert refused.value.field == "vae"
    assert TINY_TAESDXL in str(refused.value) and TINY_SD15 in str(refused.value)
    assert engine.run(request(Mode.TXT2IMG, TINY_SD15, TINY_TAESD)).images


def test_a_missing_tiny_autoencoder_is_refused_naming_what_is_installed(engine):
    with pytest.raises(InvalidRequest) as refused:
        engine.run(request(Mode.TXT2IMG, TINY_SD15, "taesd-lost"))
    assert "taesd-lost" in str(refused.value) and TINY_TAESD in str(refused.value)


def taesd_pair(folder: Path, name: str, state: dict, *, encoder: bool = True) -> None:
    """Write an AutoencoderTiny's weights as the original TAESD files ComfyUI keeps."""
    decoder = {}
    for key, value in state.items():
        if key.startswith("decoder.layers."):
            index, _, rest = key.removeprefix("decoder.layers.").partition(".")
            decoder[f"{int(index) + 1}.{rest}"] = value  # index 0 is the original's clamp
    save_file(decoder, str(folder / f"{name}_decoder.safetensors"))
    if encoder:
        encoded = {k.removeprefix("encoder.layers."): v for k, v in state.items() if "encoder" in k}
        save_file(encoded, str(folder / f"{name}_encoder.safetensors"))


def test_original_taesd_pairs_and_single_files_load_as_the_same_weights(tmp_path):
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    reference = AutoencoderTiny()  # TAESD's real architecture
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    folder = tmp_path / "vae_approx"
    folder.mkdir()
    taesd_pair(folder, "taesd", state)
    taesd_pair(folder, "taesdxl", state, encoder=False)
    save_file(state, str(folder / "taesd-single.safetensors"))
    found = {tiny.name: tiny for tiny in find_tiny_vaes(ModelRegistry([tmp_path]).catalog)}
    assert sorted(found) == ["taesd", "taesd-single", "taesdxl"]
    assert found["taesd"].layout == "pair" and found["taesd"].can_encode
    assert found["taesdxl"].family == "sdxl" and not found["taesdxl"].can_encode
    for name in ("taesd", "taesd-single"):
        loaded = load_tiny_vae(found[name], dtype=torch.float32, device="cpu", allow_pickle=False)
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, state[key]), key
    load_tiny_vae(found["taesdxl"], dtype=torch.float32, device="cpu", allow_pickle=False)


def test_broken_and_pickled_tiny_autoencoders_are_refused_naming_them(tmp_path):
    broken = tmp_path / "broken.safetensors"
    save_file({"decoder.layers.0.weight": torch.zeros(64, 4, 3, 3)}, str(broken))
    with pytest.raises(ModelLoadError, match="broken"):
        load_tiny_vae(
            TinyVaeFile("broken", "file", broken), dtype=torch.float32, device="cpu",
            allow_pickle=False,
        )  # fmt: skip
    pickled = tmp_path / "taesd.pth"
    torch.save({}, pickled)
    with pytest.raises(ModelLoadError, match="pickled"):
        load_tiny_vae(
            TinyVaeFile("taesd", "file", pickled), dtype=torch.float32, device="cpu",
            allow_pickle=False,
        )  # fmt: skip
