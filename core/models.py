"""The model registry: resolve a model reference, list what is there, load and cache pipelines.

A **model reference** (a request's `model` field) is one of:

- a name the registry lists: every diffusers folder (``model_index.json`` inside) and every
  ``.safetensors`` file in a models directory, under its folder or file name without extension;
- a path to such a folder or file (pickled ``.ckpt`` / ``.bin`` / ``.pt`` files only with
  `allow_pickle`, because unpickling runs code);
- a Hugging Face repo id (``owner/name``), downloaded on first use into the hub cache, unless
  ``HF_HUB_OFFLINE`` is set.

Single-file checkpoints (SD 1.5, SD 1.5 inpainting, SDXL, SDXL inpainting) load offline: their
architecture comes from the configs shipped in ``core/configs/`` (or from a side folder
``NAME.config/`` beside ``NAME.safetensors``, for other architectures), and their tokenizer is the
CLIP tokenizer shipped there too (the vocabulary of OpenAI's CLIP, as open_clip distributes it).

The text-to-image, img2img and inpaint pipelines of one model share their weights (`from_pipe`),
so switching modes loads nothing; `weight_loads` counts the loads that read weights.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client.protocol import Mode, ModelInfo, ModelLoadError, ModelNotFound

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

log = logging.getLogger(__name__)

CONFIGS_DIR = Path(__file__).parent / "configs"
CLIP_TOKENIZER_DIR = CONFIGS_DIR / "clip-tokenizer"
SIDE_CONFIG_SUFFIX = ".config"  # NAME.config/ beside NAME.safetensors holds its architecture

SAFE_WEIGHT_SUFFIXES = (".safetensors",)
PICKLE_WEIGHT_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
MODEL_FILE_SUFFIXES = SAFE_WEIGHT_SUFFIXES + PICKLE_WEIGHT_SUFFIXES

# The files of a hub repo that loading needs: configs, tokenizers and safetensors weights, not
# the half-precision, EMA or safety-checker extras many repos also hold.
HUB_FILE_PATTERNS = ("model_index.json", "*/*.json", "*/*.txt", "*/*.safetensors")
HUB_PICKLE_PATTERNS = ("*/*.bin",)  # fetched only where pickled weights are allowed
HUB_IGNORE_PATTERNS = ("*.fp16.*", "*non_ema*", "*.ema.*", "safety_checker/*")

ALLOW_PICKLE_HINT = (
    "pickled weights can run code when loaded; if you trust this file, allow them with "
    "--allow-pickle (CLI), allow_pickle = true in config.ini, or INLAYER_ALLOW_PICKLE=1"
)

# What an ordinary model serves; a dedicated inpainting model (9-channel UNet) serves inpaint only.
ORDINARY_MODES = (Mode.INPAINT, Mode.IMG2IMG, Mode.TXT2IMG)
INPAINTING_MODES = (Mode.INPAINT,)

# Pipeline class names per family and mode.
PIPELINE_CLASSES = {
    "sd15": {
        Mode.TXT2IMG: "StableDiffusionPipeline",
        Mode.IMG2IMG: "StableDiffusionImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionInpaintPipeline",
    },
    "sdxl": {
        Mode.TXT2IMG: "StableDiffusionXLPipeline",
        Mode.IMG2IMG: "StableDiffusionXLImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionXLInpaintPipeline",
    },
}

# Components each family's folder must hold (with weights where marked).
REQUIRED_COMPONENTS = {
    "sd15": {
        "unet": True,
        "vae": True,
        "text_encoder": True,
        "tokenizer": False,
        "scheduler": False,
    },
    "sdxl": {
        "unet": True,
        "vae": True,
        "text_encoder": True,
        "text_encoder_2": True,
        "tokenizer": False,
        "tokenizer_2": False,
        "scheduler": False,
    },
}

# Keys that identify the architecture of an original (LDM-layout) single-file checkpoint.
LDM_UNET_INPUT_KEY = "model.diffusion_model.input_blocks.0.0.weight"
LDM_SD15_TEXT_PREFIX = "cond_stage_model.transformer."
LDM_SDXL_TEXT_PREFIX = "conditioner.embedders.1.model."
LDM_SD2_TEXT_PREFIX = "cond_stage_model.model."

# SDXL's second tokenizer pads with "!" (id 0), as in the released SDXL checkpoints.
SDXL_SECOND_TOKENIZER_PAD = "!"


@dataclass
class ModelSource:
    """Where a resolved model lives, and what it is."""

    name: str
    path: Path  # a diffusers folder or a single checkpoint file
    format: str  # "diffusers", "safetensors", "ckpt", "hub"
    family: str  # "sd15", "sdxl"
    inpainting: bool
    source: str  # what the user sees: a folder, a file or a repo id

    def info(self) -> ModelInfo:
        modes = INPAINTING_MODES if self.inpainting else ORDINARY_MODES
        return ModelInfo(
            name=self.name,
            family=self.family,
            modes=tuple(mode.value for mode in modes),
            inpainting=self.inpainting,
            source=self.source,
            format=self.format,
        )

    @property
    def modes(self) -> tuple[Mode, ...]:
        return INPAINTING_MODES if self.inpainting else ORDINARY_MODES


@dataclass
class LoadedModel:
    """The pipelines of one model, one per mode, all sharing the same weights."""

    source: ModelSource
    pipelines: dict[Mode, DiffusionPipeline] = field(default_factory=dict)
    scheduler_config: dict[str, Any] = field(default_factory=dict)  # the model's own scheduler


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read {path}: {error}") from None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def looks_like_repo_id(ref: str) -> bool:
    """``owner/name`` with nothing path-like about it."""
    parts = ref.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not ref.startswith((".", "~"))
        and "\\" not in ref
        and not ref.endswith(MODEL_FILE_SUFFIXES)
    )


def _weight_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.suffix in MODEL_FILE_SUFFIXES and p.is_file()]


def describe_folder(
    path: Path, name: str, *, source: str = "", fmt: str = "diffusers"
) -> ModelSource:
    """Family and inpainting of a diffusers folder, read from its configs (no weights read)."""
    index = _read_json(path / "model_index.json")
    family = "sdxl" if "text_encoder_2" in index else "sd15"
    unet_config_path = path / "unet" / "config.json"
    in_channels = (
        _read_json(unet_config_path).get("in_channels", 4) if unet_config_path.exists() else 4
    )
    return ModelSource(name, path, fmt, family, in_channels == 9, source or str(path))


def describe_single_file(path: Path, name: str) -> ModelSource:
    """Family and inpainting of a single checkpoint, read from its tensor names and shapes."""
    if path.suffix not in SAFE_WEIGHT_SUFFIXES:
        # The architecture of a pickled file is only known once loaded; assume SD 1.5 unless
        # its side config says otherwise.
        side = path.with_name(path.stem + SIDE_CONFIG_SUFFIX)
        if side.is_dir():
            described = describe_folder(side, name, source=str(path), fmt="ckpt")
            described.path = path
            return described
        return ModelSource(name, path, "ckpt", "sd15", "inpaint" in path.stem.lower(), str(path))
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as checkpoint:
            keys = set(checkpoint.keys())
            in_channels = (
                checkpoint.get_slice(LDM_UNET_INPUT_KEY).get_shape()[1]
                if LDM_UNET_INPUT_KEY in keys
                else None
            )
    except Exception as error:  # safetensors raises its own error types for broken headers
        raise ModelLoadError(f"{path} is not a readable .safetensors file: {error}") from None
    if in_channels is None:
        raise ModelLoadError(
            f"{path} has no UNet in the original single-file layout; Inlayer loads full "
            "SD 1.5 / SDXL checkpoints (a diffusers folder works for anything else)"
        )
    if any(key.startswith(LDM_SDXL_TEXT_PREFIX) for key in keys):
        family = "sdxl"
    elif any(key.startswith(LDM_SD15_TEXT_PREFIX) for key in keys):
        family = "sd15"
    elif any(key.startswith(LDM_SD2_TEXT_PREFIX) for key in keys):
        raise ModelLoadError(f"{path} is a Stable Diffusion 2 checkpoint; use its diffusers folder")
    else:
        raise ModelLoadError(f"{path} holds no text encoder Inlayer knows (SD 1.5 or SDXL)")
    return ModelSource(name, path, "safetensors", family, in_channels == 9, str(path))


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


DTYPE_NAMES = {
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}


def choose_dtype(device: str, requested: str | None) -> torch.dtype:
    """fp16 on CUDA and MPS, fp32 on CPU; bf16 when requested and the GPU supports it."""
    import torch

    if requested:
        name = DTYPE_NAMES.get(requested.strip().lower())
        if name is None:
            raise ModelLoadError(
                f"dtype {requested!r} is unknown; use one of {sorted(DTYPE_NAMES)}"
            )
        if name == "bfloat16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
            log.warning("this GPU has no bfloat16; using float16")
            name = "float16"
        if name != "float32" and device == "cpu":
            log.warning("half precision on the CPU is slow and imprecise; using it as asked")
        return getattr(torch, name)
    return torch.float32 if device == "cpu" else torch.float16


class ModelRegistry:
    """Resolves model references, lists models and hands out cached pipelines.

    One model is kept loaded at a time (switching models frees the previous one: two SDXL
    models do not fit most GPUs); the pipelines of that model for every mode share its weights.
    """

    def __init__(
        self,
        models_dirs: Sequence[Path] = (),
        *,
        allow_pickle: bool = False,
        device: str | None = None,
        dtype: str | None = None,
        cpu_offload: bool = False,
        vae_tiling: bool | None = None,
        default_models: Mapping[Mode, str] | None = None,
    ) -> None:
        self.models_dirs = [Path(d).expanduser() for d in models_dirs]
        self.allow_pickle = allow_pickle or _env_flag("INLAYER_ALLOW_PICKLE")
        self.device = device or os.environ.get("INLAYER_DEVICE") or default_device()
        self._dtype_request = dtype or os.environ.get("INLAYER_DTYPE") or None
        self.cpu_offload = cpu_offload and self.device.startswith("cuda")
        # Tiled VAE decoding saves GPU memory on large images and costs little there; on the
        # CPU memory is plentiful and tiling only adds seams and time.
        self.vae_tiling = self.device != "cpu" if vae_tiling is None else vae_tiling
        self.default_models = dict(default_models or {})  # the user's choice per mode
        self.weight_loads = 0
        self._loaded: LoadedModel | None = None
        self._lock = threading.RLock()

    @property
    def dtype(self) -> torch.dtype:
        return choose_dtype(self.device, self._dtype_request)

    # --- listing and resolving ---------------------------------------------------------------

    def list(self) -> list[ModelInfo]:
        """Every model in the models directories, sorted by name; broken entries are skipped."""
        found: dict[str, ModelInfo] = {}
        for name, path in self._entries():
            try:
                found.setdefault(name, self._describe(name, path).info())
            except ModelLoadError as error:
                log.warning("skipping %s: %s", path, error)
        return [found[name] for name in sorted(found)]

    def _entries(self) -> list[tuple[str, Path]]:
        """(name, path) of every candidate in the models directories."""
        entries = []
        for models_dir in self.models_dirs:
            if not models_dir.is_dir():
                continue
            for path in sorted(models_dir.iterdir()):
                if path.is_dir() and (path / "model_index.json").is_file():
                    if not path.name.endswith(SIDE_CONFIG_SUFFIX):
                        entries.append((path.name, path))
                elif path.is_file() and path.suffix in MODEL_FILE_SUFFIXES:
                    entries.append((path.stem, path))
        return entries

    def _describe(self, name: str, path: Path) -> ModelSource:
        if path.is_dir():
            return describe_folder(path, name)
        return describe_single_file(path, name)

    def resolve(self, ref: str) -> ModelSource:
        """The model a reference names; ModelNotFound saying where Inlayer looked."""
        ref = ref.strip()
        for name, path in self._entries():
            if name == ref or path.name == ref:
                return self._describe(name, path)
        path = Path(ref).expanduser()
        if path.is_dir() and (path / "model_index.json").is_file():
            return describe_folder(path, path.name)
        if path.is_file() and path.suffix in MODEL_FILE_SUFFIXES:
            return describe_single_file(path, path.stem)
        if path.exists():
            raise ModelNotFound(
                f"{ref} is neither a diffusers folder (with model_index.json) nor a "
                f"checkpoint file ({', '.join(MODEL_FILE_SUFFIXES)})"
            )
        if looks_like_repo_id(ref):
            return self._from_hub(ref)
        raise ModelNotFound(f"model {ref!r} not found; {self._where_to_get_models()}")

    def _where_to_get_models(self) -> str:
        listed = [name for name, _ in self._entries()]
        looked = ", ".join(str(d) for d in self.models_dirs) or "no models folder configured"
        known = f"available: {', '.join(sorted(set(listed)))}" if listed else "none installed"
        return (
            f"looked in {looked} ({known}); put a diffusers folder or a .safetensors file "
            "there, pass a path, or a Hugging Face repo id such as "
            "stable-diffusion-v1-5/stable-diffusion-v1-5"
        )

    def _from_hub(self, repo_id: str) -> ModelSource:
        """A hub repo's diffusers files in the local cache, downloaded first when allowed."""
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        offline = _env_flag("HF_HUB_OFFLINE")
        patterns = list(HUB_FILE_PATTERNS)
        if self.allow_pickle:
            patterns += HUB_PICKLE_PATTERNS
        try:
            folder = snapshot_download(
                repo_id,
                allow_patterns=patterns,
                ignore_patterns=list(HUB_IGNORE_PATTERNS),
                local_files_only=offline,
            )
        except LocalEntryNotFoundError:
            raise ModelNotFound(
                f"model {repo_id!r} is not in the local Hugging Face cache and downloads are "
                "off (HF_HUB_OFFLINE is set); unset it once to download the model"
            ) from None
        except (HfHubHTTPError, OSError, ValueError) as error:
            raise ModelNotFound(f"cannot download {repo_id!r} from Hugging Face: {error}") from None
        return describe_folder(Path(folder), repo_id, source=repo_id, fmt="hub")

    def default_for(self, mode: Mode) -> str:
        """The model a request without `model` uses: the configured one for the mode, else
        the first listed that serves it (inpaint prefers an inpainting model)."""
        if mode in self.default_models:
            return self.default_models[mode]
        models = [info for info in self.list() if mode.value in info.modes]
        if not models:
            raise ModelNotFound(
                f"no model for {mode.value} is installed; {self._where_to_get_models()}"
            )
        if mode == Mode.INPAINT:
            models.sort(key=lambda info: not info.inpainting)
        return models[0].name

    # --- loading -------------------------------------------------------------------------------

    def pipeline(self, ref: str, mode: Mode) -> DiffusionPipeline:
        """The pipeline of model `ref` for `mode`, loading the weights only on first use."""
        with self._lock:
            loaded = self.load(ref)
            source = loaded.source
            if mode not in source.modes:
                raise ModelLoadError(
                    f"{source.name} is a dedicated inpainting model and serves only inpaint; "
                    f"choose an ordinary model for {mode.value}"
                )
            if mode not in loaded.pipelines:
                loaded.pipelines[mode] = self._derive(loaded, mode)
            return loaded.pipelines[mode]

    def load(self, ref: str) -> LoadedModel:
        """The loaded model `ref` names (cached; loading another frees the previous one)."""
        with self._lock:
            source = self.resolve(ref)
            if self._loaded is not None and self._loaded.source.path == source.path:
                return self._loaded
            self.unload()
            self._check_pickle(source)
            mode = source.modes[0]
            pipe = self._load_weights(source, mode)
            self.weight_loads += 1
            self._loaded = LoadedModel(source, {mode: pipe}, dict(pipe.scheduler.config))
            return self._loaded

    def loaded(self) -> LoadedModel | None:
        return self._loaded

    def unload(self) -> None:
        """Free the loaded model (and the GPU memory it held)."""
        with self._lock:
            self._loaded = None
            free_memory(self.device)

    def _check_pickle(self, source: ModelSource) -> None:
        if self.allow_pickle:
            return
        if source.path.is_file():
            if source.path.suffix in PICKLE_WEIGHT_SUFFIXES:
                raise ModelLoadError(
                    f"{source.name}: {source.path.name} is pickled; {ALLOW_PICKLE_HINT}"
                )
            return
        for component, needs_weights in REQUIRED_COMPONENTS[source.family].items():
            files = _weight_files(source.path / component)
            if needs_weights and files and not any(p.suffix in SAFE_WEIGHT_SUFFIXES for p in files):
                raise ModelLoadError(
                    f"{source.name}: the {component} weights are only pickled (.bin); "
                    f"{ALLOW_PICKLE_HINT}"
                )

    def _check_components(self, source: ModelSource) -> None:
        for component, needs_weights in REQUIRED_COMPONENTS[source.family].items():
            folder = source.path / component
            if not folder.is_dir() or not any(folder.iterdir()):
                raise ModelLoadError(
                    f"{source.name} is missing its {component!r} component ({folder})"
                )
            if needs_weights and not _weight_files(folder):
                raise ModelLoadError(
                    f"{source.name} is missing the weights of its {component!r} component "
                    f"(no .safetensors file in {folder})"
                )

    def _load_weights(self, source: ModelSource, mode: Mode) -> DiffusionPipeline:
        import diffusers

        cls = getattr(diffusers, PIPELINE_CLASSES[source.family][mode])
        log.info("loading %s (%s) on %s", source.name, source.format, self.device)
        try:
            if source.path.is_dir():
                self._check_components(source)
                pipe = cls.from_pretrained(
                    source.path,
                    dtype=self.dtype,
                    # None: safetensors where present, pickled .bin files otherwise.
                    use_safetensors=None if self.allow_pickle else True,
                    local_files_only=True,
                    **self._no_safety_checker(source),
                )
            else:
                pipe = self._load_single_file(cls, source)
        except (ModelLoadError, ModelNotFound):
            raise
        except MemoryError:
            raise
        except Exception as error:  # diffusers and transformers raise many types here
            if is_out_of_memory(error):
                raise
            raise ModelLoadError(f"cannot load {source.name}: {error}") from error
        return self._place(pipe)

    def _no_safety_checker(self, source: ModelSource) -> dict[str, Any]:
        # Inlayer edits the user's own images locally; SD 1.5's NSFW checker would black out
        # results (and needs weights most checkpoints lack).
        if source.family == "sd15":
            return {"safety_checker": None, "requires_safety_checker": False}
        return {}

    def _load_single_file(self, cls: type, source: ModelSource) -> DiffusionPipeline:
        from transformers import CLIPTokenizer

        side = source.path.with_name(source.path.stem + SIDE_CONFIG_SUFFIX)
        config_dir = (
            side
            if side.is_dir()
            else CONFIGS_DIR / (source.family + ("-inpainting" if source.inpainting else ""))
        )
        components: dict[str, Any] = {}
        for name, pad in (("tokenizer", None), ("tokenizer_2", SDXL_SECOND_TOKENIZER_PAD)):
            if name == "tokenizer_2" and source.family != "sdxl":
                continue
            folder = config_dir / name if (config_dir / name).is_dir() else CLIP_TOKENIZER_DIR
            extra = {"pad_token": pad} if pad and folder == CLIP_TOKENIZER_DIR else {}
            components[name] = CLIPTokenizer.from_pretrained(folder, model_max_length=77, **extra)
        return cls.from_single_file(
            str(source.path),
            config=str(config_dir),
            dtype=self.dtype,
            local_files_only=True,
            **components,
            **self._no_safety_checker(source),
        )

    def _place(self, pipe: DiffusionPipeline) -> DiffusionPipeline:
        """Move to the device (or set up CPU offload) and apply the memory options."""
        pipe.set_progress_bar_config(disable=True)  # the engine reports progress itself
        if self.vae_tiling:
            pipe.vae.enable_tiling()
        if self.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        return pipe

    def _derive(self, loaded: LoadedModel, mode: Mode) -> DiffusionPipeline:
        """Another mode's pipeline over the same weights (no weights are read)."""
        import diffusers

        cls = getattr(diffusers, PIPELINE_CLASSES[loaded.source.family][mode])
        base = next(iter(loaded.pipelines.values()))
        # from_pipe would otherwise cast the shared modules to its default dtype.
        pipe = cls.from_pipe(base, dtype=self.dtype)
        pipe.set_progress_bar_config(disable=True)
        if self.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        return pipe


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def free_memory(device: str) -> None:
    """Return cached memory to the system after an unload or an out-of-memory error."""
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps" and torch.backends.mps.is_available():
        torch.mps.empty_cache()
