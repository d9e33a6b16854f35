"""Full autoencoders in place of a model's own (a request's `vae` naming one; AUTOMATIC1111's
`sd_vae`), entering the run at step 2 as the tiny ones do.

They lie in the `vae/` folder of each models folder (ComfyUI's name; AUTOMATIC1111 keeps them in
`models/VAE`) as one of:

- a diffusers folder (``config.json`` + weights), as ``stabilityai/sd-vae-ft-mse`` is published;
- one weights file in the original (LDM) layout, as A1111 users keep them
  (``vae-ft-mse-840000-ema-pruned.safetensors``, ``sdxl_vae.safetensors``), or in diffusers' keys.

A file holds no architecture: it is built on the loaded model's own autoencoder config, which a
replacement must fit anyway. SD 1.5 and SDXL autoencoders share their shapes, so the family comes
from a folder's scaling factor (SDXL's is 0.13025) and from a file's name ("xl" in it: SDXL), as
for tiny autoencoders; one for another family is refused naming both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client.protocol import AddOnInfo, AddOnKind, InvalidRequest, ModelInfo, ModelLoadError
from .loras import read_state_dict
from .model_files import ALLOW_PICKLE_HINT, FULL_VAES, SAFE_WEIGHT_SUFFIXES, ModelCatalog
from .tiny_vae import FITS

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderKL

SDXL_SCALING_FACTOR = 0.13025
_LDM_KEY_MARKS = ("encoder.down.", "decoder.up.", "first_stage_model.")


@dataclass(frozen=True)
class FullVaeFile:
    """A full autoencoder on disk: its name (folder or file name without extension) and path."""

    name: str
    path: Path

    @property
    def family(self) -> str:
        if self.path.is_dir():
            try:
                config = json.loads((self.path / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                config = {}
            return "sdxl" if config.get("scaling_factor") == SDXL_SCALING_FACTOR else "sd15"
        return "sdxl" if "xl" in self.name.lower() else "sd15"

    def fits(self, model: ModelInfo) -> bool:
        return model.family in FITS[self.family]

    def info(self) -> AddOnInfo:
        return AddOnInfo(self.name, AddOnKind.FULL_VAE, self.family, str(self.path))


def find_full_vaes(catalog: ModelCatalog) -> list[FullVaeFile]:
    """Every full autoencoder in the `vae/` folders, by name (the first folder's wins)."""
    found: dict[str, FullVaeFile] = {}
    for model_file in catalog.find(FULL_VAES):
        found.setdefault(model_file.name, FullVaeFile(model_file.name, model_file.path))
    return [found[name] for name in sorted(found)]


def find_full_vae(ref: str, catalog: ModelCatalog) -> FullVaeFile | None:
    """The full autoencoder `ref` names: its name, or its file name as A1111's `sd_vae` gives it
    ("vae-ft-mse.safetensors"); None when no `vae/` folder holds one of that name."""
    return next((v for v in find_full_vaes(catalog) if ref in (v.name, v.path.name)), None)


def check_fits(vae: FullVaeFile, model: ModelInfo) -> None:
    if not vae.fits(model):
        raise InvalidRequest(
            "vae",
            f"autoencoder {vae.name} is for {vae.family}, but model {model.name} is "
            f"{model.family}; choose one for {model.family} (or 'full' for the model's own)",
        )


def _file_state_dict(vae: FullVaeFile, config: dict[str, Any], allow_pickle: bool) -> dict:
    """A file's weights under diffusers' keys (converted from the LDM layout where they are in
    it; a pickled .pt keeps them under "state_dict")."""
    if vae.path.suffix not in SAFE_WEIGHT_SUFFIXES and not allow_pickle:
        raise ModelLoadError(f"autoencoder {vae.name} is pickled; {ALLOW_PICKLE_HINT}")
    state = read_state_dict(vae.path, allow_pickle=allow_pickle)
    state = state.get("state_dict", state)
    if any(key.startswith(_LDM_KEY_MARKS) for key in state):
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        state = convert_ldm_vae_checkpoint(state, config)
    return state


def load_full_vae(
    vae: FullVaeFile,
    own: AutoencoderKL,
    model: ModelInfo,
    *,
    dtype: torch.dtype,
    device: str,
    allow_pickle: bool,
) -> AutoencoderKL:
    """The autoencoder of `vae` for `model`, whose own autoencoder is `own`, on `device`;
    ModelLoadError naming it when it cannot be loaded or does not fit."""
    from diffusers import AutoencoderKL

    config = dict(own.config)
    try:
        if vae.path.is_dir():
            safe = any(p.suffix in SAFE_WEIGHT_SUFFIXES for p in vae.path.iterdir())
            if not safe and not allow_pickle:
                raise ModelLoadError(
                    f"autoencoder {vae.name}: its weights are only pickled; {ALLOW_PICKLE_HINT}"
                )
            loaded = AutoencoderKL.from_pretrained(
                vae.path, use_safetensors=None if allow_pickle else True, local_files_only=True
            )
        else:
            loaded = AutoencoderKL.from_config(config)
            missing, unexpected = loaded.load_state_dict(
                _file_state_dict(vae, config, allow_pickle), strict=False
            )
            if missing or unexpected:
                raise ModelLoadError(
                    f"autoencoder {vae.name} ({vae.path}) does not fit {model.name}'s: "
                    f"{len(missing)} weights missing, {len(unexpected)} unknown "
                    f"(e.g. {(missing or unexpected)[0]!r})"
                )
    except ModelLoadError:
        raise
    except Exception as error:  # diffusers and torch raise many kinds for a broken file
        raise ModelLoadError(
            f"cannot load autoencoder {vae.name} for {model.name}: {error}"
        ) from None
    for key in ("latent_channels", "block_out_channels"):
        if list(_as_tuple(loaded.config[key])) != list(_as_tuple(config[key])):
            raise ModelLoadError(
                f"autoencoder {vae.name} has {key} {loaded.config[key]}, but {model.name}'s "
                f"own has {config[key]}: it does not fit this model"
            )
    return loaded.to(device=device, dtype=dtype).eval()


def _as_tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)
