"""LoRAs: found in the `loras/` folders, checked before anything is loaded, loaded once per
model, and fused into its weights while the same set is in use.

Words used here:

- **LoRA file**: a ``.safetensors`` file (pickled ``.pt`` / ``.bin`` / ``.ckpt`` only with
  `allow_pickle`) in kohya's key layout (``lora_unet_…​.lora_down.weight``, as AUTOMATIC1111 and
  ComfyUI users have them) or diffusers' (``unet.…​.lora_A.weight``). Loading goes through
  diffusers and peft (`load_lora_weights`), which read both.
- **Width**: the width of the text embeddings a LoRA's cross-attention layers take (768 for
  SD 1.5, 1024 for SD 2.x, 2048 for SDXL). A LoRA fits a model when the widths agree; its family
  is named after the width.
- **Active set**: the LoRAs of a run and their scales. `ModelLoras.activate` loads what is new
  (nothing at all when one of them fails), then fuses the set into the weights so that a step
  costs what it costs without LoRAs; a different set is unfused first.
"""

from __future__ import annotations

import itertools
import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client.protocol import (
    AddOnInfo,
    AddOnKind,
    InvalidRequest,
    LoraChoice,
    ModelInfo,
    ModelLoadError,
)
from .few_step import FewStepSettings, few_step_settings_of_name
from .model_files import (
    ALLOW_PICKLE_HINT,
    LORAS,
    PICKLE_WEIGHT_SUFFIXES,
    SAFE_WEIGHT_SUFFIXES,
    ModelCatalog,
    ModelFile,
)

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

log = logging.getLogger(__name__)

FAMILY_OF_WIDTH = {768: "sd15", 1024: "sd21", 2048: "sdxl"}

# kohya: lora_unet_down_blocks_0_…_to_q.lora_down.weight, lora_te1_…, and the scale "alpha".
_KOHYA_KEY = re.compile(
    r"^lora_(?P<part>unet|te|te1|te2)_(?P<layer>\w+)\.(lora_down\.weight|lora_up\.weight|alpha)$"
)
# diffusers / peft: unet.down_blocks.0.…to_q.lora_A.weight (older files: .lora.down.weight).
_DIFFUSERS_KEY = re.compile(
    r"^(?P<part>unet|text_encoder|text_encoder_2)\.(?P<layer>[\w.]+?)"
    r"\.(lora_A\.weight|lora_B\.weight|lora\.down\.weight|lora\.up\.weight|alpha)$"
)
# peft files of a UNet alone carry no "unet." prefix.
_UNET_ROOTS = ("down_blocks.", "mid_block.", "up_blocks.", "conv_in.", "conv_out.", "time_emb")
_CROSS_ATTENTION_KEY = re.compile(r"attn2[._]to_k[._](lora_down|lora_A|lora\.down)")


@dataclass(frozen=True)
class LoraFile:
    """A LoRA file as its header shows it (no weights read)."""

    name: str
    path: Path
    layout: str  # "kohya" or "diffusers"
    layers: int  # the model layers it adapts
    width: int | None  # of its cross-attention inputs; None when it adapts none
    second_text_encoder: bool  # it adapts SDXL's second text encoder

    @property
    def family(self) -> str:
        if self.second_text_encoder:
            return "sdxl"
        return FAMILY_OF_WIDTH.get(self.width or 0, "")

    @property
    def speed(self) -> FewStepSettings | None:
        """What it wants when it is a speed LoRA (LCM, TCD, Hyper-SD, Lightning)."""
        return few_step_settings_of_name(self.name)

    def info(self) -> AddOnInfo:
        speed = self.speed
        return AddOnInfo(
            self.name, AddOnKind.LORA, self.family, str(self.path), speed.scheduler if speed else ""
        )

    def describes_width(self) -> str:
        family = self.family or "an unknown family"
        return f"{family} (cross-attention width {self.width})" if self.width else family


def read_state_dict(path: Path, *, allow_pickle: bool) -> dict[str, Any]:
    """The tensors of a weights file; a pickled one only with `allow_pickle` (it can run code)."""
    if path.suffix in PICKLE_WEIGHT_SUFFIXES:
        if not allow_pickle:
            raise ModelLoadError(f"{path.name} is pickled; {ALLOW_PICKLE_HINT}")
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many kinds for a broken or hostile pickle
            raise ModelLoadError(f"cannot read {path}: {error}") from None
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for broken files
        raise ModelLoadError(f"{path} is not a readable .safetensors file: {error}") from None


def tensor_shapes(path: Path, *, allow_pickle: bool) -> dict[str, tuple[int, ...]]:
    """Key -> shape, from the header alone where the format allows."""
    if path.suffix in SAFE_WEIGHT_SUFFIXES:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as weights:
                return {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}  # noqa: SIM118 (safe_open is no dict)
        except Exception as error:  # safetensors raises its own error types for broken headers
            raise ModelLoadError(f"{path} is not a readable .safetensors file: {error}") from None
    tensors = read_state_dict(path, allow_pickle=allow_pickle)
    return {key: tuple(value.shape) for key, value in tensors.items()}


def unprefixed_unet_keys(keys: Sequence[str]) -> bool:
    return bool(keys) and all(key.startswith(_UNET_ROOTS) for key in keys)


def describe_lora(found: ModelFile, *, allow_pickle: bool = False) -> LoraFile:
    """What a LoRA file is, from its keys and shapes; ModelLoadError naming it when a key is of
    no layout Inlayer reads (LoHa, LoKr and other LyCORIS kinds, or not a LoRA at all)."""
    shapes = tensor_shapes(found.path, allow_pickle=allow_pickle)
    keys = [key for key in shapes if not key.endswith(".dora_scale")]
    if unprefixed_unet_keys(keys):
        keys = ["unet." + key for key in keys]
        shapes = {"unet." + key: shape for key, shape in shapes.items()}
    layers: set[str] = set()
    layouts = set()
    for key in keys:
        match = _KOHYA_KEY.match(key) or _DIFFUSERS_KEY.match(key)
        if match is None:
            raise ModelLoadError(
                f"LoRA {found.name} ({found.path}) has keys Inlayer cannot read, e.g. {key!r}; "
                "it reads LoRAs in kohya's or diffusers' layout (not LoHa, LoKr or other "
                "LyCORIS kinds)"
            )
        layouts.add("kohya" if match.re is _KOHYA_KEY else "diffusers")
        layers.add(f"{match['part']}:{match['layer']}")
    if not layers:
        raise ModelLoadError(f"LoRA {found.name} ({found.path}) holds no LoRA weights")
    if len(layouts) > 1:
        raise ModelLoadError(f"LoRA {found.name} ({found.path}) mixes kohya and diffusers keys")
    widths = {
        shape[1] for key, shape in shapes.items() if _CROSS_ATTENTION_KEY.search(key) and shape
    }
    if len(widths) > 1:
        raise ModelLoadError(f"LoRA {found.name} has cross-attention layers of several widths")
    second = any(key.startswith(("lora_te2_", "text_encoder_2.")) for key in keys)
    return LoraFile(
        found.name, found.path, layouts.pop(), len(layers), next(iter(widths), None), second
    )


def find_loras(catalog: ModelCatalog) -> list[LoraFile]:
    """Every readable LoRA in the `loras/` folders (unreadable ones are logged and skipped)."""
    found: dict[str, LoraFile] = {}
    for model_file in catalog.find(LORAS):
        if model_file.name in found:
            continue
        try:
            found[model_file.name] = describe_lora(model_file, allow_pickle=catalog.allow_pickle)
        except ModelLoadError as error:
            log.warning("skipping %s: %s", model_file.path, error)
    return [found[name] for name in sorted(found)]


def resolve_lora(ref: str, catalog: ModelCatalog) -> LoraFile:
    """The LoRA a request names: a listed name (with or without extension) or a path."""
    for model_file in catalog.find(LORAS):
        if ref in (model_file.name, model_file.path.name):
            return describe_lora(model_file, allow_pickle=catalog.allow_pickle)
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix in LORAS.suffixes:
        return describe_lora(ModelFile.of(path), allow_pickle=catalog.allow_pickle)
    listed = sorted({model_file.name for model_file in catalog.find(LORAS)})
    raise InvalidRequest(
        "loras",
        f"LoRA {ref!r} not found; put it in a loras/ folder of a models folder or give its "
        f"path ({'available: ' + ', '.join(listed) if listed else 'none installed'})",
    )


def check_fits(lora: LoraFile, model: ModelInfo, width: int) -> None:
    """InvalidRequest naming both when `lora` was made for another family than `model`."""
    fits = (lora.width is None or lora.width == width) and (
        not lora.second_text_encoder or model.family == "sdxl"
    )
    if not fits:
        raise InvalidRequest(
            "loras",
            f"LoRA {lora.name} is for {lora.describes_width()}, but model {model.name} is "
            f"{model.family} (cross-attention width {width}); choose a LoRA made for "
            f"{model.family}",
        )


@dataclass(frozen=True)
class ActiveLora:
    """One LoRA of a run's active set: its file and scale."""

    file: LoraFile
    scale: float


def resolve_loras(
    choices: Sequence[LoraChoice], catalog: ModelCatalog, model: ModelInfo, width: int
) -> tuple[ActiveLora, ...]:
    """The request's LoRAs, found and checked against the model; one named twice adds up."""
    scales: dict[Path, float] = {}
    files: dict[Path, LoraFile] = {}
    for choice in choices:
        lora = resolve_lora(choice.name, catalog)
        check_fits(lora, model, width)
        files[lora.path] = lora
        scales[lora.path] = scales.get(lora.path, 0.0) + float(choice.scale)
    return tuple(ActiveLora(files[path], scales[path]) for path in files)


def _file_key(lora: LoraFile) -> tuple[Path, int, int]:
    """A LoRA file as it is now: a file changed in place is a new LoRA."""
    stat = lora.path.stat()
    return (lora.path, stat.st_size, stat.st_mtime_ns)


def _adapter_count(pipe: DiffusionPipeline, adapter: str) -> int:
    """How many model layers carry `adapter`."""
    from peft.tuners.lora import LoraLayer

    count = 0
    for component in ("unet", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, component, None)
        if module is None:
            continue
        count += sum(
            isinstance(layer, LoraLayer) and adapter in layer.lora_A for layer in module.modules()
        )
    return count


class ModelLoras:
    """The LoRAs loaded into one model (its pipelines share the modules), and the set fused.

    One adapter per file, loaded on first use and kept until the model is unloaded, so that
    using a LoRA again or switching between LoRAs reads nothing and leaves the base weights as
    they were.
    """

    def __init__(self, *, allow_pickle: bool) -> None:
        self.allow_pickle = allow_pickle
        self._adapters: dict[tuple[Path, int, int], str] = {}  # (path, size, mtime) -> adapter
        self._names = (f"lora{index}" for index in itertools.count())
        self._fused: tuple[tuple[str, float], ...] = ()
        self.loads = 0  # LoRA files read, for tests and benchmarks

    def activate(self, pipe: DiffusionPipeline, loras: Sequence[ActiveLora]) -> None:
        """Make `loras` the model's active set, fused into its weights."""
        if self._fused and any(_file_key(lora.file) not in self._adapters for lora in loras):
            # peft unmerges by itself to add an adapter; do it here, so that the record of
            # what is fused stays true.
            pipe.unfuse_lora()
            self._fused = ()
        loaded_now: list[str] = []
        try:
            wanted = tuple(
                (self._adapter(pipe, lora.file, loaded_now), lora.scale) for lora in loras
            )
        except Exception:
            # Nothing half-way: the adapters this call made go again.
            present = {name for names in pipe.get_list_adapters().values() for name in names}
            if gone := [name for name in loaded_now if name in present]:
                pipe.delete_adapters(gone)
            raise
        if wanted == self._fused:
            return
        if self._fused:
            pipe.unfuse_lora()
            self._fused = ()
        if not wanted:
            if self._adapters:
                pipe.disable_lora()
            return
        names = [name for name, _ in wanted]
        pipe.enable_lora()
        pipe.set_adapters(names, [scale for _, scale in wanted])
        pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
        self._fused = wanted

    def _adapter(self, pipe: DiffusionPipeline, lora: LoraFile, loaded_now: list[str]) -> str:
        key = _file_key(lora)
        if key in self._adapters:
            return self._adapters[key]
        tensors = read_state_dict(lora.path, allow_pickle=self.allow_pickle)
        if unprefixed_unet_keys(list(tensors)):
            tensors = {"unet." + key: value for key, value in tensors.items()}
        name = next(self._names)
        try:
            with warnings.catch_warnings():
                # Several adapters in one model are what this class is for.
                warnings.filterwarnings("ignore", "Already found a `peft_config`")
                pipe.load_lora_weights(tensors, adapter_name=name)
        except Exception as error:  # diffusers and peft raise many kinds for a bad file
            raise ModelLoadError(f"cannot load LoRA {lora.name} ({lora.path}): {error}") from None
        loaded_now.append(name)
        self.loads += 1
        adapted = _adapter_count(pipe, name)
        if adapted < lora.layers:
            raise ModelLoadError(
                f"LoRA {lora.name} ({lora.path}): {lora.layers - adapted} of its {lora.layers} "
                "layers match no layer of the model; it was made for another architecture"
            )
        self._adapters[key] = name
        return name


def active_loras_parameters(loras: Sequence[ActiveLora]) -> list[Mapping[str, Any]]:
    """The active set as a result records it: names and scales."""
    return [LoraChoice(lora.file.name, lora.scale).to_json() for lora in loras]
