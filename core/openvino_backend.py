"""The OpenVINO backend: on a CPU, a pipeline's UNet and tiny autoencoder run as compiled OpenVINO
models behind small torch-compatible wrappers, so the diffusers pipeline, its schedulers, the
engine's callbacks (progress, previews, cancel) and the engine's steps stay as they are.

Opt-in (`[device] backend = openvino`, `INLAYER_BACKEND`, `--backend openvino`) and an extra
(`pip install "inlayer[openvino]"`); the default install never imports it.

Words used here:

- **Conversion**: `openvino.convert_model` traces a torch module (the UNet with the run's LoRAs
  fused into it, or a tiny autoencoder's encoder or decoder) into an OpenVINO model with dynamic
  shapes, saved once under the cache folder. It is keyed by what the module computes: the model
  file as it is on disk, the fused LoRA set (files as they are, and scales), the torch dtype, and
  the OpenVINO version. A LoRA set seen before, or a new registry over the same files, reads the
  saved model instead of converting again.
  Weights are stored as fp16 (half the disk; OpenVINO computes in its own precision).
- **Compilation**: the converted model reshaped to the static input shapes of a run (batch,
  working size, prompt length) and compiled for the CPU, kept in memory per shape. OpenVINO
  picks the CPU's best precision itself (bf16 on AMX, f32 elsewhere).
- **Fallback**: where OpenVINO is missing, the model is of a kind this backend does not run
  (SDXL's added conditioning, LCM-distilled UNets' guidance embedding), or a conversion fails,
  the run uses PyTorch and says why in one line (the result's hint and the log).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from diffusers import AutoencoderTiny, DiffusionPipeline, UNet2DConditionModel

    from .loras import ActiveLora

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "inlayer[openvino]"'
# Static shapes compiled per converted model: a full-size UNet compiled for one shape holds its
# weights again, so only the shapes of the last runs stay (one size with guidance off and on).
COMPILED_SHAPES_KEPT = 2
# The example inputs' text length when tracing; compilation reshapes to the run's own.
TRACE_TEXT_TOKENS = 77


def openvino_version() -> str | None:
    """The installed OpenVINO's version, None when it is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.get_version()


@dataclass(frozen=True)
class ConversionKey:
    """What a converted model computes, so that a saved one is reused exactly when it fits."""

    part: str  # "unet", "tiny-encoder", "tiny-decoder"
    source: str  # the weights file or folder, with its size and modification time
    loras: tuple[str, ...]  # the fused LoRA set: each file as it is, and its scale
    dtype: str
    openvino: str

    @property
    def digest(self) -> str:
        text = json.dumps(
            [self.part, self.source, self.loras, self.dtype, self.openvino], sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def file_identity(path: Path) -> str:
    """A file or folder as it is now: a file changed in place is another model."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:24] + f":{path}"


def lora_identities(loras: Sequence[ActiveLora]) -> tuple[str, ...]:
    return tuple(f"{file_identity(lora.file.path)}@{lora.scale}" for lora in loras)


def unsupported_unet(unet: UNet2DConditionModel) -> str:
    """Why this backend cannot run `unet` ("" when it can): SD 1.5 and 2.x UNets, 4 or 9 input
    channels, without added conditioning."""
    config = unet.config
    if config.get("addition_embed_type") is not None:
        return "its UNet takes added conditioning (SDXL), which the OpenVINO backend lacks"
    if config.get("time_cond_proj_dim") is not None:
        return "its UNet takes a guidance embedding (LCM-distilled), which OpenVINO here lacks"
    return ""


class CompiledByShape:
    """An OpenVINO model compiled once per static input shapes, on the CPU."""

    def __init__(self, model: Any, threads: int) -> None:
        self._model = model
        self._threads = threads
        self._requests: OrderedDict[tuple[tuple[int, ...], ...], Any] = OrderedDict()
        self.compilations = 0  # for tests and benchmarks
        self.precision = ""  # the inference precision OpenVINO chose for this CPU: f32, bf16

    def __call__(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        arrays = [value.detach().to(torch.float32).contiguous().numpy() for value in inputs]
        shapes = tuple(array.shape for array in arrays)
        request = self._requests.get(shapes)
        if request is None:
            request = self._compile(shapes)
        self._requests.move_to_end(shapes)
        return torch.from_numpy(request.infer(arrays)[0].copy())

    def _compile(self, shapes: tuple[tuple[int, ...], ...]) -> Any:
        import openvino

        model = self._model.clone()
        model.reshape({port: openvino.PartialShape(list(shape))
                       for port, shape in zip(model.inputs, shapes, strict=True)})  # fmt: skip
        compiled = openvino.Core().compile_model(
            model, "CPU", {"INFERENCE_NUM_THREADS": self._threads}
        )
        self.compilations += 1
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        while len(self._requests) >= COMPILED_SHAPES_KEPT:
            self._requests.popitem(last=False)
        self._requests[shapes] = compiled.create_infer_request()
        return self._requests[shapes]


class OpenVinoUNet(torch.nn.Module):
    """The UNet as a pipeline calls it, computed by OpenVINO. The torch UNet stays inside it
    (its config, dtype and device answer the pipeline's questions; LoRAs are fused into it)."""

    def __init__(self, torch_unet: UNet2DConditionModel, compiled: CompiledByShape) -> None:
        super().__init__()
        self.torch_unet = torch_unet
        self.compiled = compiled

    @property
    def config(self) -> Any:
        return self.torch_unet.config

    @property
    def dtype(self) -> torch.dtype:
        return self.torch_unet.dtype

    @property
    def device(self) -> torch.device:
        return self.torch_unet.device

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor,
        timestep_cond: torch.Tensor | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        added_cond_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
    ) -> Any:
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        if timestep_cond is not None or added_cond_kwargs or cross_attention_kwargs:
            raise ValueError(
                "the OpenVINO UNet takes no timestep_cond, added_cond_kwargs or "
                "cross_attention_kwargs (LoRAs are fused into its weights)"
            )
        timestep = torch.as_tensor(timestep, dtype=torch.float32).reshape(())
        noise = self.compiled([sample, timestep, encoder_hidden_states]).to(sample.dtype)
        return UNet2DConditionOutput(sample=noise) if return_dict else (noise,)


class OpenVinoPart(torch.nn.Module):
    """A tiny autoencoder's encoder or decoder computed by OpenVINO; the torch module stays
    inside, so the autoencoder's dtype and device are still its parameters'."""

    def __init__(self, torch_part: torch.nn.Module, compiled: CompiledByShape) -> None:
        super().__init__()
        self.torch_part = torch_part
        self.compiled = compiled

    def forward(self, pixels_or_latents: torch.Tensor) -> torch.Tensor:
        return self.compiled([pixels_or_latents]).to(pixels_or_latents.dtype)


class _UNetTracing(torch.nn.Module):
    """The UNet with the three inputs the converted model takes, returning the tensor alone."""

    def __init__(self, unet: UNet2DConditionModel) -> None:
        super().__init__()
        self.unet = unet

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor
    ) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


def torch_module(module: Any) -> Any:
    """The torch module inside an OpenVINO wrapper, or `module` itself."""
    if isinstance(module, OpenVinoUNet):
        return module.torch_unet
    if isinstance(module, OpenVinoPart):
        return module.torch_part
    return module


@dataclass(frozen=True)
class UNetSource:
    """The UNet to run: the model's name and weights on disk, and the LoRAs fused into it."""

    model_name: str
    weights: Path
    loras: tuple[ActiveLora, ...]


class OpenVinoBackend:
    """Converts, caches and compiles a registry's UNets and tiny autoencoders for OpenVINO, and
    puts them on pipelines; remembers what failed so that a failure costs one attempt."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.conversions = 0  # modules converted (not read from the cache): tests, benchmarks
        self._loaded: dict[ConversionKey, CompiledByShape] = {}
        self._failed: dict[ConversionKey, str] = {}
        self._tiny_failed: dict[int, str] = {}

    def put_unet(self, pipe: DiffusionPipeline, source: UNetSource) -> str:
        """Put the OpenVINO UNet of `source` on `pipe` (whose torch UNet has its LoRAs fused);
        returns "" or the one line saying why the run stays in PyTorch."""
        unet = torch_module(pipe.unet)
        pipe.unet = unet
        version = openvino_version()
        if version is None:
            return f"the OpenVINO backend is not installed ({INSTALL_HINT}); running in PyTorch"
        if reason := unsupported_unet(unet):
            return f"{source.model_name}: {reason}; running in PyTorch"
        key = ConversionKey(
            "unet",
            file_identity(source.weights),
            lora_identities(source.loras),
            str(unet.dtype),
            version,
        )
        # One converted UNet in memory: a full-size one holds its weights a second time.
        for other in [known for known in self._loaded if known.part == "unet" and known != key]:
            del self._loaded[other]
        compiled = self._converted(key, lambda: _convert_unet(unet), source.model_name)
        if isinstance(compiled, str):
            return compiled
        pipe.unet = OpenVinoUNet(unet, compiled)
        return ""

    def put_tiny_vae(self, vae: AutoencoderTiny, weights: Sequence[Path], name: str) -> str:
        """Put OpenVINO's encoder and decoder into the tiny autoencoder `vae` (in place: it is
        the registry's cached one); returns "" or why it stays in PyTorch."""
        if isinstance(vae.decoder, OpenVinoPart):
            return ""
        if id(vae) in self._tiny_failed:
            return self._tiny_failed[id(vae)]
        version = openvino_version()
        if version is None:
            return f"the OpenVINO backend is not installed ({INSTALL_HINT}); running in PyTorch"
        parts = {}
        for part, module in (("tiny-encoder", vae.encoder), ("tiny-decoder", vae.decoder)):
            source = "+".join(file_identity(path) for path in weights)
            key = ConversionKey(part, source, (), str(vae.dtype), version)
            channels = 3 if part == "tiny-encoder" else int(vae.config.latent_channels)
            compiled = self._converted(key, lambda m=module, c=channels: _convert_part(m, c), name)
            if isinstance(compiled, str):
                self._tiny_failed[id(vae)] = compiled
                return compiled
            parts[part] = compiled
        vae.encoder = OpenVinoPart(vae.encoder, parts["tiny-encoder"])
        vae.decoder = OpenVinoPart(vae.decoder, parts["tiny-decoder"])
        return ""

    def _converted(self, key: ConversionKey, convert: Any, name: str) -> CompiledByShape | str:
        """The model `key` names, from memory, the cache folder or a conversion now; or the
        line saying why not."""
        if key in self._loaded:
            return self._loaded[key]
        if key in self._failed:
            return self._failed[key]
        import openvino
        from tqdm import tqdm

        folder = self.cache_dir / key.digest
        xml = folder / "model.xml"
        try:
            if not xml.is_file():
                # Before minutes of converting: a cache folder that cannot be written fails now.
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                with tqdm(total=2, desc=f"OpenVINO: converting {name}'s {key.part} (once)",
                          unit="stage", leave=False) as bar:  # fmt: skip
                    log.info("converting the %s of %s for OpenVINO (once)", key.part, name)
                    converted = convert()
                    bar.update()
                    _save(converted, key, folder)
                    bar.update()
                del converted
                self.conversions += 1
            # Always the saved model (weights stored as fp16, OpenVINO's default): the first run
            # after a conversion paints what every later one does.
            model = openvino.Core().read_model(xml)
        except Exception as error:  # tracing and conversion raise many kinds
            message = (
                f"OpenVINO could not convert the {key.part} of {name} "
                f"({type(error).__name__}: {error}); running in PyTorch"
            )
            log.warning("%s", message)
            self._failed[key] = message
            return message
        compiled = CompiledByShape(model, torch.get_num_threads())
        self._loaded[key] = compiled
        return compiled


def _save(model: Any, key: ConversionKey, folder: Path) -> None:
    """Save under a temporary name first: an interrupted save never looks like a cached model."""
    import openvino

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    openvino.save_model(model, partial / "model.xml")
    (partial / "key.json").write_text(json.dumps(key.__dict__, indent=1), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def _traced(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> Any:
    """`module` converted for OpenVINO through a TorchScript trace of one call on `example`."""
    import openvino

    with torch.no_grad(), warnings.catch_warnings():
        # diffusers' shape checks read sizes as Python values: the trace keeps them constant,
        # which holds for the shapes this backend compiles (their ranks never change).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module.eval(), example, check_trace=False)
        return openvino.convert_model(traced, example_input=example)


def _convert_unet(unet: UNet2DConditionModel) -> Any:
    config = unet.config
    # An odd latent side makes the UNet pass its skip connections' sizes to its upsamplers, so
    # the traced model runs every size (traced at a multiple of 8, it would run only those).
    side = int(config.sample_size) + 1
    example = (
        torch.zeros(1, int(config.in_channels), side, side, dtype=unet.dtype),
        torch.tensor(999.0),
        torch.zeros(1, TRACE_TEXT_TOKENS, int(config.cross_attention_dim), dtype=unet.dtype),
    )
    return _traced(_UNetTracing(unet), example)


def _convert_part(module: torch.nn.Module, channels: int) -> Any:
    dtype = next(module.parameters()).dtype
    return _traced(module, (torch.zeros(1, channels, 64, 64, dtype=dtype),))
