"""ControlNets: found in the `controlnet/` folders, checked against the model, loaded once, and
put on the run's pipeline through diffusers' ControlNet pipelines.

A run with `EditRequest.controls` enters here at two points of `Engine.run`:

- step 2, `ControlNets.controlled`: each control's ControlNet resolved (a listed name or a path),
  its family checked against the model's, loaded (kept while the same ones are asked for), and
  the mode's ControlNet pipeline derived from the model's pipeline with `from_pipe`, so that the
  model's weights are shared, not loaded again; several controls go through diffusers'
  multi-ControlNet;
- step 4, `control_arguments`: each control image cut to the run's context and scaled to its
  working extent exactly as the canvas is (so lines stay registered), turned into its control
  map (`preprocessors`), and passed with its weight and step fractions.

Words used here:

- **ControlNet file**: a diffusers folder (``config.json`` and its weights) or a single file
  (``.safetensors``; pickled files only with `allow_pickle`), in diffusers' key layout or the
  original one A1111's and ComfyUI's files have. A single file's architecture is the side folder
  ``NAME.config/`` beside it, or else the configs Inlayer ships for its family.
- **Family**: the model family a ControlNet was trained for ("sd15", "sd21", "sdxl"), from its
  config or, for a single file, from the width of its cross-attention inputs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .client.bounds import Extent
from .client.protocol import (
    AddOnInfo,
    AddOnKind,
    ControlChoice,
    EditRequest,
    InvalidRequest,
    Mode,
    ModelLoadError,
)
from .geometry import resize_rgb
from .loras import FAMILY_OF_WIDTH
from .model_files import (
    ALLOW_PICKLE_HINT,
    CONTROLNETS,
    PICKLE_WEIGHT_SUFFIXES,
    SAFE_WEIGHT_SUFFIXES,
    ModelCatalog,
    ModelFile,
    side_config_folder,
)
from .preprocessors import control_map

if TYPE_CHECKING:
    from diffusers import ControlNetModel, DiffusionPipeline

    from .engine import PipelineInput
    from .models import LoadedModel, ModelRegistry

CONFIGS_DIR = Path(__file__).parent / "configs"

_SD_CONTROLNET_PIPELINES = {
    Mode.TXT2IMG: "StableDiffusionControlNetPipeline",
    Mode.IMG2IMG: "StableDiffusionControlNetImg2ImgPipeline",
    Mode.INPAINT: "StableDiffusionControlNetInpaintPipeline",
}
CONTROLNET_PIPELINES = {
    "sd15": _SD_CONTROLNET_PIPELINES,
    "sd21": _SD_CONTROLNET_PIPELINES,
    "sdxl": {
        Mode.TXT2IMG: "StableDiffusionXLControlNetPipeline",
        Mode.IMG2IMG: "StableDiffusionXLControlNetImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionXLControlNetInpaintPipeline",
    },
}
# Keys that only an SDXL ControlNet has: its size and crop conditioning (both layouts).
_SDXL_KEY_PARTS = ("add_embedding.", "label_emb.")


@dataclass(frozen=True)
class ControlNetFile:
    """A ControlNet as its config or its file's header shows it (no weights read)."""

    name: str
    path: Path
    family: str  # "sd15", "sd21", "sdxl"
    width: int  # of its cross-attention inputs: the text embeddings of the models it fits

    def info(self) -> AddOnInfo:
        return AddOnInfo(self.name, AddOnKind.CONTROLNET, self.family, str(self.path))


def _family(width: int, sdxl: bool) -> str:
    return "sdxl" if sdxl else FAMILY_OF_WIDTH.get(width, "sd15")


def describe_controlnet(found: ModelFile) -> ControlNetFile:
    """Family and width of a ControlNet folder (its config) or file (its header)."""
    path = found.path
    config_folder = path if path.is_dir() else side_config_folder(path)
    config_path = config_folder / "config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"cannot read {config_path}: {error}") from None
        width = int(config.get("cross_attention_dim") or 0)
        sdxl = config.get("addition_embed_type") == "text_time"
        return ControlNetFile(found.name, path, _family(width, sdxl), width)
    if path.suffix not in SAFE_WEIGHT_SUFFIXES:
        # A pickled file's tensors are known only once loaded; its name says SD 1.5 or SDXL.
        sdxl = "xl" in path.stem.lower()
        return ControlNetFile(found.name, path, "sdxl" if sdxl else "sd15", 0)
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as weights:
            keys = list(weights.keys())
            width_keys = [key for key in keys if key.endswith("attn2.to_k.weight")]
            width = weights.get_slice(width_keys[0]).get_shape()[1] if width_keys else 0
    except Exception as error:  # safetensors raises its own error types for broken headers
        raise ModelLoadError(f"{path} is not a readable .safetensors file: {error}") from None
    sdxl = any(part in key for key in keys for part in _SDXL_KEY_PARTS)
    return ControlNetFile(found.name, path, _family(width, sdxl), width)


def find_controlnets(catalog: ModelCatalog) -> list[ControlNetFile]:
    """Every readable ControlNet in the `controlnet/` folders (of one name, the first)."""
    found: dict[str, ControlNetFile] = {}
    for model in catalog.find(CONTROLNETS):
        if model.name not in found:
            try:
                found[model.name] = describe_controlnet(model)
            except ModelLoadError:
                continue
    return list(found.values())


def resolve_controlnet(ref: str, catalog: ModelCatalog, field: str) -> ControlNetFile:
    """The ControlNet a control's `model` names: a listed name or a path."""
    found = catalog.find_one(CONTROLNETS, ref)
    if found is not None:
        return describe_controlnet(found)
    listed = sorted({model.name for model in catalog.find(CONTROLNETS)})
    known = f"installed: {', '.join(listed)}" if listed else "none is installed"
    raise InvalidRequest(
        field,
        f"ControlNet {ref!r} not found ({known}); put a diffusers folder or a .safetensors file "
        "in a controlnet/ folder of a models folder, pass its path, or fetch one with "
        "`inlayer models pull controlnet-scribble-sd15`",
    )


def check_fits(controlnet: ControlNetFile, model: LoadedModel, field: str) -> None:
    """A ControlNet of another family than the model cannot guide it: say both."""
    width_differs = controlnet.width and controlnet.width != model.cross_attention_dim
    if controlnet.family != model.info.family or width_differs:
        raise InvalidRequest(
            field,
            f"ControlNet {controlnet.name} is for {controlnet.family} models, but "
            f"{model.info.name} is a {model.info.family} model; choose a {model.info.family} "
            "ControlNet or another model",
        )


class ControlNets:
    """The ControlNets of a registry's runs, loaded once and kept while they are asked for."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._loaded: dict[tuple[Path, int], ControlNetModel] = {}

    def controlled(
        self, pipe: DiffusionPipeline, model: LoadedModel, request: EditRequest
    ) -> DiffusionPipeline:
        """Step 2: the request's mode's ControlNet pipeline over `pipe`'s weights, with the
        request's ControlNets (several as one multi-ControlNet)."""
        import diffusers

        if self.registry.openvino is not None:
            raise InvalidRequest(
                "controls", "the OpenVINO backend runs no ControlNet; use the torch backend"
            )
        files = []
        for index, control in enumerate(request.controls):
            field = f"controls[{index}].model"
            controlnet = resolve_controlnet(control.model, self.registry.catalog, field)
            check_fits(controlnet, model, field)
            files.append(controlnet)
        keys = [(file.path, file.path.stat().st_mtime_ns) for file in files]
        # Keep only the ControlNets this run uses: one SDXL ControlNet weighs 2.5 GB.
        self._loaded = {key: net for key, net in self._loaded.items() if key in keys}
        for key, file in zip(keys, files, strict=True):
            if key not in self._loaded:
                self._loaded[key] = self._load(file)
        nets = [self._loaded[key] for key in keys]
        cls = getattr(diffusers, CONTROLNET_PIPELINES[model.info.family][request.mode])
        controlled = cls.from_pipe(
            pipe, controlnet=nets[0] if len(nets) == 1 else nets, dtype=self.registry.dtype
        )
        controlled.set_progress_bar_config(disable=True)
        if self.registry.cpu_offload:
            controlled.enable_model_cpu_offload(device=self.registry.device)
        return controlled

    def _load(self, file: ControlNetFile) -> ControlNetModel:
        from diffusers import ControlNetModel

        allow_pickle = self.registry.allow_pickle
        if not allow_pickle:
            pickled = file.path.suffix in PICKLE_WEIGHT_SUFFIXES or (
                file.path.is_dir()
                and not any(p.suffix in SAFE_WEIGHT_SUFFIXES for p in file.path.iterdir())
            )
            if pickled:
                raise ModelLoadError(f"ControlNet {file.name} is pickled; {ALLOW_PICKLE_HINT}")
        dtype = self.registry.dtype
        try:
            if file.path.is_dir():
                net = ControlNetModel.from_pretrained(
                    file.path,
                    dtype=dtype,
                    use_safetensors=None if allow_pickle else True,
                    local_files_only=True,
                )
            else:
                side = side_config_folder(file.path)
                config = side if side.is_dir() else CONFIGS_DIR / f"controlnet-{file.family}"
                net = ControlNetModel.from_single_file(
                    str(file.path), config=str(config), dtype=dtype, local_files_only=True
                )
        except Exception as error:  # diffusers raises many types for a file it cannot read
            raise ModelLoadError(f"cannot load ControlNet {file.name}: {error}") from error
        return net.to(self.registry.device)


def scaled_notice(request: EditRequest) -> str:
    """One line for the result's hint naming each control image scaled to the canvas."""
    canvas = canvas_extent(request)
    scaled = [
        f"controls[{index}].image {control.image.width}x{control.image.height} was scaled to the "
        f"canvas's {canvas.width}x{canvas.height}"
        for index, control in enumerate(request.controls)
        if (control.image.width, control.image.height) != (canvas.width, canvas.height)
    ]
    return "; ".join(scaled)


def canvas_extent(request: EditRequest) -> Extent:
    if request.image is not None:
        return Extent(request.image.width, request.image.height)
    return Extent(int(request.width or 0), int(request.height or 0))


def control_pixels(
    control: ControlChoice, canvas: Extent, context_slices: tuple[slice, slice], working: Extent
) -> np.ndarray:
    """The HxWx4 control image where the pipeline's input comes from: scaled to the canvas
    when it has another size, then cut to the context and scaled to the working extent with the
    very resizing the canvas gets (`engine.prepare`), so its lines stay registered."""
    image = control.image
    pixels = np.frombuffer(image.data, dtype=np.uint8).reshape(image.height, image.width, 4)
    if (image.width, image.height) != (canvas.width, canvas.height):
        pixels = resize_rgb(np.ascontiguousarray(pixels), canvas)
    return resize_rgb(np.ascontiguousarray(pixels[context_slices]), working)


def control_arguments(
    request: EditRequest, pipeline_input: PipelineInput, models_dirs: Sequence[Path]
) -> dict[str, Any]:
    """Step 4: the control maps of the request's controls, cut to the context and scaled to
    the working extent as the canvas is, with their weights and step fractions, under the
    argument names of the mode's ControlNet pipeline."""
    from PIL import Image

    canvas = canvas_extent(request)
    assert pipeline_input.context is not None  # engine.prepare says which part it shows
    context_slices, working = pipeline_input.context.slices, pipeline_input.working
    maps = []
    for index, control in enumerate(request.controls):
        rgba = control_pixels(control, canvas, context_slices, working)
        field = f"controls[{index}].preprocessor"
        maps.append(Image.fromarray(control_map(rgba, control.preprocessor, models_dirs, field)))
    controls = request.controls
    single = len(controls) == 1
    name = "image" if request.mode == Mode.TXT2IMG else "control_image"
    return {
        name: maps[0] if single else maps,
        "controlnet_conditioning_scale": (
            float(controls[0].weight) if single else [float(c.weight) for c in controls]
        ),
        "control_guidance_start": (
            float(controls[0].start) if single else [float(c.start) for c in controls]
        ),
        "control_guidance_end": (
            float(controls[0].end) if single else [float(c.end) for c in controls]
        ),
    }
