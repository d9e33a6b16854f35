"""Tiny autoencoders (TAESD for SD 1.5 and 2.x, TAESDXL for SDXL): encode and decode in about a
tenth of the full VAE's time, and live previews far better than the linear latent map.

They lie in the `vae_approx/` folder of each models folder (ComfyUI's name; AUTOMATIC1111 keeps
them in `models/VAE-approx`) as one of:

- a diffusers folder (``config.json`` + weights), as ``madebyollin/taesd`` is published;
- one weights file in diffusers' key layout (``encoder.layers.…``, ``decoder.layers.…``);
- a pair ``NAME_encoder.*`` + ``NAME_decoder.*`` in the original TAESD layout, as ComfyUI and
  AUTOMATIC1111 keep them. A decoder alone serves previews and decoding, not encoding.

TAESD and TAESDXL share one architecture and differ in their training only, so the family comes
from the name: one with "xl" in it is for SDXL, any other for SD 1.5 and 2.x (which share a VAE).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client.protocol import (
    VAE_FULL,
    VAE_TINY,
    AddOnInfo,
    AddOnKind,
    InvalidRequest,
    ModelInfo,
    ModelLoadError,
    RGBAImage,
)
from .loras import read_state_dict
from .model_files import ALLOW_PICKLE_HINT, SAFE_WEIGHT_SUFFIXES, TINY_VAES, ModelCatalog, ModelFile

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderTiny

log = logging.getLogger(__name__)

# The model families whose latents each tiny autoencoder family reads.
FITS = {"sd15": ("sd15", "sd21"), "sdxl": ("sdxl",)}
SD_LATENT_CHANNELS = 4
_PAIR_PARTS = ("_encoder", "_decoder")


@dataclass(frozen=True)
class TinyVaeFile:
    """A tiny autoencoder on disk, as its name and folder show it."""

    name: str
    layout: str  # "folder", "file" (diffusers keys) or "pair" (original TAESD keys)
    path: Path  # the folder or file; for a pair, the decoder
    encoder: Path | None = None  # a pair's encoder; None for a decoder alone

    @property
    def family(self) -> str:
        return "sdxl" if "xl" in self.name.lower() else "sd15"

    @property
    def can_encode(self) -> bool:
        return self.layout != "pair" or self.encoder is not None

    def fits(self, model: ModelInfo) -> bool:
        return model.family in FITS[self.family]

    def info(self) -> AddOnInfo:
        return AddOnInfo(self.name, AddOnKind.VAE, self.family, str(self.path))


def _tiny_vae_of(found: ModelFile, siblings: dict[str, Path]) -> TinyVaeFile | None:
    """The tiny autoencoder a found file or folder is; None for the encoder half of a pair
    (its decoder names the pair) and for what is no tiny autoencoder."""
    path = found.path
    if path.is_dir():
        return TinyVaeFile(found.name, "folder", path)
    if found.name.endswith("_encoder"):
        return None
    if found.name.endswith("_decoder"):
        name = found.name.removesuffix("_decoder")
        return TinyVaeFile(name, "pair", path, siblings.get(name + "_encoder"))
    return TinyVaeFile(found.name, "file", path)


def find_tiny_vaes(catalog: ModelCatalog) -> list[TinyVaeFile]:
    """Every tiny autoencoder in the `vae_approx/` folders, by name (the first folder wins)."""
    files = catalog.find(TINY_VAES)
    siblings = {f.name: f.path for f in files}
    found: dict[str, TinyVaeFile] = {}
    for model_file in files:
        tiny = _tiny_vae_of(model_file, siblings)
        if tiny is not None and tiny.name not in found:
            found[tiny.name] = tiny
    return [found[name] for name in sorted(found)]


def resolve_tiny_vae(ref: str, catalog: ModelCatalog, model: ModelInfo) -> TinyVaeFile:
    """The tiny autoencoder a request's `vae` names (`VAE_TINY`: the one installed for the
    model's family), checked against the model; InvalidRequest naming what is wrong."""
    installed = find_tiny_vaes(catalog)
    if ref == VAE_TINY:
        fitting = [tiny for tiny in installed if tiny.fits(model)]
        if not fitting:
            raise InvalidRequest("vae", f"no tiny autoencoder for {model.family} is installed; "
                                 f"{how_to_get(model.family)}")  # fmt: skip
        return fitting[0]
    tiny = next((t for t in installed if ref in (t.name, t.path.name)), None)
    if tiny is None:
        path = Path(ref).expanduser()
        if TINY_VAES.is_model(path):
            siblings = {p.stem: p for p in path.parent.iterdir()} if path.is_file() else {}
            tiny = _tiny_vae_of(ModelFile.of(path), siblings)
    if tiny is None:
        listed = ", ".join(t.name for t in installed) or "none installed"
        raise InvalidRequest(
            "vae",
            f"autoencoder {ref!r} not found (tiny ones: {listed}); put a tiny one in a "
            "vae_approx/ folder of a models folder (or give its path), a full one in a vae/ "
            f"folder, or use {VAE_FULL!r} for the model's own",
        )
    if not tiny.fits(model):
        raise InvalidRequest(
            "vae",
            f"tiny autoencoder {tiny.name} is for {tiny.family}, but model {model.name} is "
            f"{model.family}; {how_to_get(model.family)}",
        )
    return tiny


def how_to_get(family: str) -> str:
    name = "taesdxl" if family == "sdxl" else "taesd"
    return f"get one with `inlayer models pull {name}`"


def _weights(path: Path, *, allow_pickle: bool) -> dict[str, Any]:
    if path.suffix not in SAFE_WEIGHT_SUFFIXES and not allow_pickle:
        raise ModelLoadError(f"tiny autoencoder {path.name} is pickled; {ALLOW_PICKLE_HINT}")
    return read_state_dict(path, allow_pickle=allow_pickle)


def _pair_state_dict(tiny: TinyVaeFile, *, allow_pickle: bool) -> dict[str, Any]:
    """An original-layout encoder/decoder pair under diffusers' keys. The original decoder
    starts with a clamp layer diffusers folds into its forward, so its indices shift by one."""
    state = {}
    for key, value in _weights(tiny.path, allow_pickle=allow_pickle).items():
        index, _, rest = key.partition(".")
        state[f"decoder.layers.{int(index) - 1}.{rest}"] = value
    if tiny.encoder is not None:
        for key, value in _weights(tiny.encoder, allow_pickle=allow_pickle).items():
            state[f"encoder.layers.{key}"] = value
    return state


def load_tiny_vae(
    tiny: TinyVaeFile, *, dtype: torch.dtype, device: str, allow_pickle: bool
) -> AutoencoderTiny:
    """The autoencoder of `tiny`, on `device`; ModelLoadError naming it when it cannot be."""
    from diffusers import AutoencoderTiny

    try:
        if tiny.layout == "folder":
            safe = any(p.suffix in SAFE_WEIGHT_SUFFIXES for p in tiny.path.iterdir())
            if not safe and not allow_pickle:
                raise ModelLoadError(
                    f"tiny autoencoder {tiny.name}: its weights are only pickled; "
                    f"{ALLOW_PICKLE_HINT}"
                )
            vae = AutoencoderTiny.from_pretrained(
                tiny.path, use_safetensors=None if allow_pickle else True, local_files_only=True
            )
        else:
            if tiny.layout == "pair":
                state = _pair_state_dict(tiny, allow_pickle=allow_pickle)
            else:
                state = _weights(tiny.path, allow_pickle=allow_pickle)
            vae = AutoencoderTiny(latent_channels=_latent_channels(state))
            missing, unexpected = vae.load_state_dict(state, strict=False)
            # A decoder alone leaves the encoder missing, which only encoding would need.
            missing = [key for key in missing if tiny.can_encode or key.startswith("decoder.")]
            if missing or unexpected:
                raise ModelLoadError(
                    f"tiny autoencoder {tiny.name} ({tiny.path}) is not a TAESD-shaped model: "
                    f"{len(missing)} weights missing, {len(unexpected)} unknown "
                    f"(e.g. {(missing or unexpected)[0]!r})"
                )
    except ModelLoadError:
        raise
    except Exception as error:  # diffusers and torch raise many kinds for a broken file
        raise ModelLoadError(f"cannot load tiny autoencoder {tiny.name}: {error}") from None
    if int(vae.config.latent_channels) != SD_LATENT_CHANNELS:
        raise ModelLoadError(
            f"tiny autoencoder {tiny.name} has {vae.config.latent_channels} latent channels "
            "(SD3 or Flux); Stable Diffusion 1.5, 2.x and SDXL use 4"
        )
    return vae.to(device=device, dtype=dtype).eval()


def _latent_channels(state: dict[str, Any]) -> int:
    decoder_input = state.get("decoder.layers.0.weight")
    return int(decoder_input.shape[1]) if decoder_input is not None else SD_LATENT_CHANNELS


def scale_factor(vae: AutoencoderTiny) -> int:
    """Image pixels per latent pixel along a side: each encoder block after the first halves."""
    return 2 ** (len(vae.config.encoder_block_out_channels) - 1)


def tiny_vae_preview(vae: AutoencoderTiny, latents: torch.Tensor) -> RGBAImage:
    """An opaque RGBA picture of the first latent of a batch, at the working size."""
    import torch

    with torch.no_grad():
        first = latents[:1, : vae.config.latent_channels].to(vae.device, vae.dtype)
        rgb = vae.decode(first).sample[0]  # [-1, 1], 3xHxW
    pixels = ((rgb.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0)
    alpha = torch.full((*pixels.shape[:2], 1), 255, dtype=torch.uint8)
    rgba = torch.cat((pixels.cpu(), alpha), dim=2).contiguous()
    return RGBAImage(rgba.shape[1], rgba.shape[0], rgba.numpy().tobytes())
