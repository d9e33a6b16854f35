"""Loading and caching pipelines: the weights of one model, and its pipeline for each mode.

Which models there are, and what each one is, is the catalog's business (`model_files.py`); the
registry loads the model a run names and keeps it until another is asked for.

Single-file checkpoints (SD 1.5, SD 1.5 inpainting, SDXL, SDXL inpainting) load offline: their
architecture comes from the configs shipped in ``core/configs/`` (or from a side folder
``NAME.config/`` beside ``NAME.safetensors``, for other architectures), and their tokenizer is the
CLIP tokenizer shipped there too (the vocabulary of OpenAI's CLIP, as open_clip distributes it).

The text-to-image, img2img and inpaint pipelines of one model share their weights (`from_pipe`),
so switching modes loads nothing; `weight_loads` counts the loads that read weights.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client import paths
from .client.protocol import (
    AddOnInfo,
    InvalidRequest,
    Mode,
    ModelInfo,
    ModelLoadError,
    ModelNotFound,
)
from .controlnets import find_controlnets
from .few_step import FewStepSettings, few_step_settings_of_model
from .full_vae import FullVaeFile, find_full_vaes, load_full_vae
from .loras import ModelLoras, find_loras
from .model_files import (
    ALLOW_PICKLE_HINT,
    MODEL_FILE_SUFFIXES,
    PICKLE_WEIGHT_SUFFIXES,
    SAFE_WEIGHT_SUFFIXES,
    Checkpoint,
    ModelCatalog,
    side_config_folder,
)
from .style_reference import ip_adapter_infos
from .tiny_vae import TinyVaeFile, find_tiny_vaes, load_tiny_vae, scale_factor
from .upscalers import installed_upscalers

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderTiny, DiffusionPipeline

    from .openvino_backend import OpenVinoBackend
    from .presets import Recipe

log = logging.getLogger(__name__)

TORCH_BACKEND = "torch"
OPENVINO_BACKEND = "openvino"  # core/openvino_backend.py: the CPU's UNet and tiny autoencoder
BACKENDS = (TORCH_BACKEND, OPENVINO_BACKEND)

CONFIGS_DIR = Path(__file__).parent / "configs"
CLIP_TOKENIZER_DIR = CONFIGS_DIR / "clip-tokenizer"

# Pipeline class names per family and mode.
_SD_PIPELINES = {
    Mode.TXT2IMG: "StableDiffusionPipeline",
    Mode.IMG2IMG: "StableDiffusionImg2ImgPipeline",
    Mode.INPAINT: "StableDiffusionInpaintPipeline",
    Mode.EDIT: "StableDiffusionInstructPix2PixPipeline",
}
PIPELINE_CLASSES = {
    "sd15": _SD_PIPELINES,
    "sd21": _SD_PIPELINES,  # SD 2.x (SD-Turbo) differs in its configs, not in its pipelines
    "sdxl": {
        Mode.TXT2IMG: "StableDiffusionXLPipeline",
        Mode.IMG2IMG: "StableDiffusionXLImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionXLInpaintPipeline",
        Mode.EDIT: "StableDiffusionXLInstructPix2PixPipeline",
    },
    # Newer instruction-edit models (Flux Kontext, Qwen-Image-Edit) join as families of their
    # own with their Mode.EDIT pipeline, on GPUs that fit them.
}

# Components each family's folder must hold (with weights where marked).
_SD_COMPONENTS = {
    "unet": True,
    "vae": True,
    "text_encoder": True,
    "tokenizer": False,
    "scheduler": False,
}
REQUIRED_COMPONENTS = {
    "sd15": _SD_COMPONENTS,
    "sd21": _SD_COMPONENTS,
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

# SDXL's second tokenizer pads with "!" (id 0), as in the released SDXL checkpoints.
SDXL_SECOND_TOKENIZER_PAD = "!"


@dataclass(frozen=True)
class LoadedModel:
    """What the registry loaded, as a run needs to know it (the same for every mode)."""

    info: ModelInfo  # name, family, whether it is a dedicated inpainting model, ...
    device: str
    dtype: torch.dtype
    vae_scale_factor: int  # image pixels per latent pixel, along a side
    native_side: int  # the side, in pixels, of the square images the model was trained on
    scheduler_config: Mapping[str, Any]  # the model's own scheduler (a request may pick another)
    cross_attention_dim: int  # the width of its text embeddings: which LoRAs fit
    few_step: FewStepSettings | None  # how a distilled model wants to run; None: an ordinary one


@dataclass(frozen=True)
class Equipment:
    """What `ModelRegistry.equip` put on a pipeline that the run needs to know."""

    preview_vae: AutoencoderTiny | None  # decodes previews; None: the linear latent map
    notice: str = ""  # one line for the user, e.g. why the run stays in PyTorch


@dataclass
class _ModelInMemory:
    """The one model kept loaded: its pipelines, one per mode, all sharing the same weights,
    the LoRAs loaded into them, and its own autoencoder (a run may swap in a tiny one)."""

    checkpoint: Checkpoint
    loaded: LoadedModel
    pipelines: dict[Mode, DiffusionPipeline]
    loras: ModelLoras
    full_vae: Any


def _weight_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.suffix in MODEL_FILE_SUFFIXES and p.is_file()]


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


def cpu_has_native_bf16(cpu_flags: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 in hardware (AMX or AVX-512 BF16). Elsewhere torch
    emulates it, and one SD 1.5 step takes minutes instead of seconds. `cpu_flags`: the
    "flags" line of /proc/cpuinfo (read when None; empty where there is none)."""
    if cpu_flags is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
                cpu_flags = next((line for line in cpuinfo if line.startswith("flags")), "")
        except OSError:
            cpu_flags = ""
    flags = set(cpu_flags.split())
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def choose_dtype(device: str, requested: str | None) -> torch.dtype:
    """fp16 on CUDA and MPS; on the CPU bf16 where it has bf16 in hardware, else fp32; bf16 when
    requested and the GPU supports it."""
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
        if (
            name != "float32"
            and device == "cpu"
            and not (name == "bfloat16" and cpu_has_native_bf16())
        ):
            log.warning("this CPU emulates %s: slow and imprecise; using it as asked", name)
        return getattr(torch, name)
    if device == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return torch.float16


class ModelRegistry:
    """Hands out the cached pipelines of the models a catalog finds.

    One model is kept loaded at a time (switching models frees the previous one: two SDXL
    models do not fit most GPUs); the pipelines of that model for every mode share its weights.
    The registry reads no environment variables: the settings do (`settings.py`), and pass the
    values here.
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
        tool_dirs: Sequence[Path] = (),
        compile_unet: bool = False,
        backend: str = TORCH_BACKEND,
        openvino_cache: Path | None = None,
    ) -> None:
        """`device` None: the best one found; `dtype` None: float16 on a GPU, on the CPU
        bfloat16 where it has it in hardware, else float32; `vae_tiling` None: on a GPU only;
        `tool_dirs`: AUTOMATIC1111 and ComfyUI installations, for their LoRAs and tiny
        autoencoders; `compile_unet`: torch.compile the UNet on a GPU (a minute or two on the
        first run of each size, faster steps after); `backend` "openvino": the UNet and tiny
        autoencoders run as OpenVINO models on the CPU (converted from float32 weights; OpenVINO
        picks the CPU's best precision itself), converted once into `openvino_cache` (default:
        Inlayer's data folder, cache/openvino)."""
        if backend not in BACKENDS:
            raise ModelLoadError(f"backend {backend!r} is unknown; use {' or '.join(BACKENDS)}")
        if backend == OPENVINO_BACKEND:
            if device not in (None, "cpu"):
                raise ModelLoadError(f"the OpenVINO backend runs on the CPU, not on {device}")
            if dtype and DTYPE_NAMES.get(dtype.strip().lower()) != "float32":
                raise ModelLoadError(
                    f"the OpenVINO backend converts float32 weights and picks the CPU's "
                    f"precision itself; leave dtype at auto (not {dtype})"
                )
            device, dtype = "cpu", "float32"
        self.catalog = ModelCatalog(
            models_dirs,
            allow_pickle=allow_pickle,
            default_models=default_models,
            tool_dirs=tool_dirs,
        )
        self.allow_pickle = allow_pickle
        self.device = device or default_device()
        self._dtype_request = dtype
        self.cpu_offload = cpu_offload and self.device.startswith("cuda")
        # Tiled VAE decoding saves GPU memory on large images and costs little there; on the
        # CPU memory is plentiful and tiling only adds seams and time.
        self.vae_tiling = self.device != "cpu" if vae_tiling is None else vae_tiling
        self.compile_unet = compile_unet and self.device.startswith("cuda")
        self.weight_loads = 0
        self.openvino: OpenVinoBackend | None = None
        if backend == OPENVINO_BACKEND:
            from .openvino_backend import OpenVinoBackend

            self.openvino = OpenVinoBackend(
                openvino_cache or paths.data_dir() / "cache" / "openvino"
            )
        self._in_memory: _ModelInMemory | None = None
        # Tiny autoencoders by file, kept across model switches (a few MB each).
        self._tiny_vaes: dict[tuple[Path, int], AutoencoderTiny] = {}
        self._full_vae_kept: tuple[tuple[Path, int, Path], Any] | None = None
        self._lock = threading.RLock()

    @cached_property
    def dtype(self) -> torch.dtype:
        return choose_dtype(self.device, self._dtype_request)

    # Listing and choosing models are the catalog's; these pass them on to callers that hold
    # the registry alone (the server, the `inlayer` command, the in-process client).

    @property
    def models_dirs(self) -> list[Path]:
        return self.catalog.models_dirs

    def list(self) -> list[ModelInfo]:
        return self.catalog.list()

    def default_for(self, mode: Mode) -> str:
        return self.catalog.default_for(mode)

    def add_ons(self) -> list[AddOnInfo]:
        """The LoRAs, then the tiny autoencoders, the full ones, the ControlNets and the
        IP-Adapters, a request may add to its model; then the upscaler models an upscale may
        use."""
        loras = [lora.info() for lora in find_loras(self.catalog)]
        tiny_vaes = [tiny.info() for tiny in find_tiny_vaes(self.catalog)]
        full_vaes = [vae.info() for vae in find_full_vaes(self.catalog)]
        controlnets = [controlnet.info() for controlnet in find_controlnets(self.catalog)]
        return (
            loras
            + tiny_vaes
            + full_vaes
            + controlnets
            + ip_adapter_infos(self.catalog)
            + installed_upscalers(self.catalog)
        )

    # --- loading -------------------------------------------------------------------------------

    def pipeline(self, ref: str, mode: Mode) -> tuple[DiffusionPipeline, LoadedModel]:
        """The pipeline of model `ref` for `mode`, and what was loaded; the weights are read
        only on first use."""
        with self._lock:
            model = self._load(ref)
            if mode not in model.checkpoint.modes:
                raise mode_mismatch(model.checkpoint, mode)
            if mode not in model.pipelines:
                model.pipelines[mode] = self._derive(model, mode)
            return model.pipelines[mode], model.loaded

    def equip(self, pipe: DiffusionPipeline, recipe: Recipe) -> Equipment:
        """Put the recipe's LoRAs (fused into the weights) and autoencoder on `pipe`, a pipeline
        of the loaded model, and with the OpenVINO backend its OpenVINO UNet and tiny
        autoencoders. A LoRA or autoencoder that fails to load leaves the model as it was."""
        with self._lock:
            assert self._in_memory is not None, "equip() follows pipeline()"
            model = self._in_memory
            preview = None if recipe.preview_vae is None else self._tiny_vae(recipe.preview_vae)
            if recipe.vae is not None:
                vae = self._tiny_vae(recipe.vae)
            elif recipe.full_vae is not None:
                vae = self._full_vae(recipe.full_vae, model)
            else:
                vae = model.full_vae
            if recipe.vae is not None and scale_factor(vae) != model.loaded.vae_scale_factor:
                raise ModelLoadError(
                    f"tiny autoencoder {recipe.vae.name} scales by {scale_factor(vae)}, but "
                    f"{model.loaded.info.name} by {model.loaded.vae_scale_factor}"
                )
            if self.openvino is not None:
                from .openvino_backend import torch_module

                pipe.unet = torch_module(pipe.unet)  # LoRAs fuse into the torch UNet
            model.loras.activate(pipe, recipe.loras)
            pipe.vae = vae
            notice = ""
            if self.openvino is not None:
                notice = self._put_openvino(pipe, model, recipe)
            return Equipment(preview, notice)

    def _put_openvino(self, pipe: DiffusionPipeline, model: _ModelInMemory, recipe: Recipe) -> str:
        """The OpenVINO UNet and tiny autoencoders on `pipe`; "" or why (part of) the run stays
        in PyTorch, each reason once."""
        from .openvino_backend import UNetSource

        assert self.openvino is not None
        checkpoint = model.checkpoint
        weights = checkpoint.path / "unet" if checkpoint.path.is_dir() else checkpoint.path
        notices = [self.openvino.put_unet(pipe, UNetSource(checkpoint.name, weights, recipe.loras))]
        tiny_vaes = (recipe.vae, recipe.preview_vae)
        for tiny in dict.fromkeys(tiny for tiny in tiny_vaes if tiny is not None):
            weights = (tiny.path,) if tiny.encoder is None else (tiny.path, tiny.encoder)
            notices.append(self.openvino.put_tiny_vae(self._tiny_vae(tiny), weights, tiny.name))
        return "; ".join(dict.fromkeys(notice for notice in notices if notice))

    def _tiny_vae(self, tiny: TinyVaeFile) -> AutoencoderTiny:
        key = (tiny.path, tiny.path.stat().st_mtime_ns)
        if key not in self._tiny_vaes:
            self._tiny_vaes[key] = load_tiny_vae(
                tiny, dtype=self.dtype, device=self.device, allow_pickle=self.allow_pickle
            )
        return self._tiny_vaes[key]

    def _full_vae(self, vae: FullVaeFile, model: _ModelInMemory) -> Any:
        """The full autoencoder `vae` for the loaded model: the last one is kept (one is about
        as big as a tenth of an SD 1.5 model), loaded again for another file or model."""
        key = (vae.path, vae.path.stat().st_mtime_ns, model.checkpoint.path)
        if self._full_vae_kept is None or self._full_vae_kept[0] != key:
            self._full_vae_kept = None  # free the previous one before loading
            loaded = load_full_vae(
                vae,
                model.full_vae,
                model.loaded.info,
                dtype=self.dtype,
                device=self.device,
                allow_pickle=self.allow_pickle,
            )
            if self.vae_tiling:
                loaded.enable_tiling()
            self._full_vae_kept = (key, loaded)
        return self._full_vae_kept[1]

    def loaded_models(self) -> list[str]:
        """The names of the models in memory now (the server's health reports them)."""
        with self._lock:
            return [self._in_memory.loaded.info.name] if self._in_memory is not None else []

    def unload(self) -> None:
        """Free the loaded model (and the GPU memory it held)."""
        with self._lock:
            self._in_memory = None
            self._full_vae_kept = None
            free_memory(self.device)

    def _load(self, ref: str) -> _ModelInMemory:
        """The model `ref` names, in memory (cached; loading another frees the previous one)."""
        checkpoint = self.catalog.resolve(ref)
        if self._in_memory is not None and self._in_memory.checkpoint.path == checkpoint.path:
            return self._in_memory
        self.unload()
        self._check_pickle(checkpoint)
        mode = checkpoint.modes[0]
        pipe = self._load_weights(checkpoint, mode)
        self.weight_loads += 1
        multiple = int(pipe.vae_scale_factor)
        loaded = LoadedModel(
            info=checkpoint.info(),
            device=self.device,
            dtype=self.dtype,
            vae_scale_factor=multiple,
            native_side=int(pipe.unet.config.sample_size) * multiple,
            scheduler_config=dict(pipe.scheduler.config),
            cross_attention_dim=int(pipe.unet.config.cross_attention_dim),
            few_step=few_step_settings_of_model(
                checkpoint.name, pipe.scheduler.config, pipe.unet.config
            ),
        )
        loras = ModelLoras(allow_pickle=self.allow_pickle)
        self._in_memory = _ModelInMemory(checkpoint, loaded, {mode: pipe}, loras, pipe.vae)
        return self._in_memory

    def _check_pickle(self, checkpoint: Checkpoint) -> None:
        if self.allow_pickle:
            return
        if checkpoint.path.is_file():
            if checkpoint.path.suffix in PICKLE_WEIGHT_SUFFIXES:
                raise ModelLoadError(
                    f"{checkpoint.name}: {checkpoint.path.name} is pickled; {ALLOW_PICKLE_HINT}"
                )
            return
        for component, needs_weights in REQUIRED_COMPONENTS[checkpoint.family].items():
            files = _weight_files(checkpoint.path / component)
            if needs_weights and files and not any(p.suffix in SAFE_WEIGHT_SUFFIXES for p in files):
                raise ModelLoadError(
                    f"{checkpoint.name}: the {component} weights are only pickled (.bin); "
                    f"{ALLOW_PICKLE_HINT}"
                )

    def _check_components(self, checkpoint: Checkpoint) -> None:
        for component, needs_weights in REQUIRED_COMPONENTS[checkpoint.family].items():
            folder = checkpoint.path / component
            if not folder.is_dir() or not any(folder.iterdir()):
                raise ModelLoadError(
                    f"{checkpoint.name} is missing its {component!r} component ({folder})"
                )
            if needs_weights and not _weight_files(folder):
                raise ModelLoadError(
                    f"{checkpoint.name} is missing the weights of its {component!r} component "
                    f"(no .safetensors file in {folder})"
                )

    def _load_weights(self, checkpoint: Checkpoint, mode: Mode) -> DiffusionPipeline:
        import diffusers

        cls = getattr(diffusers, PIPELINE_CLASSES[checkpoint.family][mode])
        log.info("loading %s (%s) on %s", checkpoint.name, checkpoint.format, self.device)
        try:
            if checkpoint.path.is_dir():
                self._check_components(checkpoint)
                pipe = cls.from_pretrained(
                    checkpoint.path,
                    dtype=self.dtype,
                    # None: safetensors where present, pickled .bin files otherwise.
                    use_safetensors=None if self.allow_pickle else True,
                    local_files_only=True,
                    **self._no_safety_checker(checkpoint),
                )
            else:
                pipe = self._load_single_file(cls, checkpoint)
        except (ModelLoadError, ModelNotFound):
            raise
        except MemoryError:
            raise
        except Exception as error:  # diffusers and transformers raise many types here
            if is_out_of_memory(error):
                raise
            raise ModelLoadError(f"cannot load {checkpoint.name}: {error}") from error
        return self._place(pipe)

    def _no_safety_checker(self, checkpoint: Checkpoint) -> dict[str, Any]:
        # Inlayer edits the user's own images locally; SD 1.5's NSFW checker would black out
        # results (and needs weights most checkpoints lack).
        if checkpoint.family in ("sd15", "sd21"):
            return {"safety_checker": None, "requires_safety_checker": False}
        return {}

    def _load_single_file(self, cls: type, checkpoint: Checkpoint) -> DiffusionPipeline:
        from transformers import CLIPTokenizer

        side = side_config_folder(checkpoint.path)
        config_dir = (
            side
            if side.is_dir()
            else CONFIGS_DIR
            / (checkpoint.family + ("-inpainting" if checkpoint.inpainting else ""))
        )
        components: dict[str, Any] = {}
        for name, pad in (("tokenizer", None), ("tokenizer_2", SDXL_SECOND_TOKENIZER_PAD)):
            if name == "tokenizer_2" and checkpoint.family != "sdxl":
                continue
            folder = config_dir / name if (config_dir / name).is_dir() else CLIP_TOKENIZER_DIR
            extra = {"pad_token": pad} if pad and folder == CLIP_TOKENIZER_DIR else {}
            components[name] = CLIPTokenizer.from_pretrained(folder, model_max_length=77, **extra)
        return cls.from_single_file(
            str(checkpoint.path),
            config=str(config_dir),
            dtype=self.dtype,
            local_files_only=True,
            **components,
            **self._no_safety_checker(checkpoint),
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
        if self.device.startswith("cuda"):
            import torch

            # Convolutions in NHWC run on the tensor cores without layout conversions. (The
            # attention is already PyTorch's fused scaled_dot_product_attention, diffusers'
            # default.)
            pipe.unet.to(memory_format=torch.channels_last)
            if self.compile_unet:
                # In place, so that LoRAs still find the UNet's layers. Prompts and seeds are
                # inputs of the compiled graph: only a new size compiles again.
                pipe.unet.compile(dynamic=False)
        return pipe

    def _derive(self, model: _ModelInMemory, mode: Mode) -> DiffusionPipeline:
        """Another mode's pipeline over the same weights (no weights are read)."""
        import diffusers

        cls = getattr(diffusers, PIPELINE_CLASSES[model.checkpoint.family][mode])
        base = next(iter(model.pipelines.values()))
        # from_pipe would otherwise cast the shared modules to its default dtype. The model's
        # own autoencoder: a run may have left a tiny one on the base pipeline.
        unet = base.unet
        if self.openvino is not None:
            from .openvino_backend import torch_module

            unet = torch_module(unet)  # equip() puts the run's OpenVINO UNet on it
        pipe = cls.from_pipe(base, dtype=self.dtype, vae=model.full_vae, unet=unet)
        pipe.set_progress_bar_config(disable=True)
        if self.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        return pipe


def mode_mismatch(checkpoint: Checkpoint, mode: Mode) -> InvalidRequest:
    """Why `checkpoint` cannot run `mode`, and what to choose instead."""
    name = checkpoint.name
    if mode == Mode.EDIT:
        return InvalidRequest(
            "model",
            f"{name} cannot follow instructions: edit needs an instruction-edit model "
            "(InstructPix2Pix-class, 8-channel UNet), e.g. `inlayer models pull "
            "instruct-pix2pix`; or use img2img with this model",
        )
    kind = "an instruction-edit model" if checkpoint.instruct else "a dedicated inpainting model"
    served = ", ".join(m.value for m in checkpoint.modes)
    return InvalidRequest(
        "model", f"{name} is {kind} and serves only {served}; choose another for {mode.value}"
    )


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
