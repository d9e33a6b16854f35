"""Upscale a layer or a selection ×2 or ×4: a model upscaler, or Lanczos when none is installed.

Model upscalers are ESRGAN-family files (RealESRGAN, 4x-UltraSharp, …) in an `upscale_models/`
folder of the models folders (ComfyUI's name; AUTOMATIC1111's `models/ESRGAN` is read too),
loaded through spandrel (`image_models.load_image_model`), which recognises the architecture from
the weights. A model is run in tiles with a margin of context each, so that a big picture needs
the memory of one tile; a model whose own scale differs from the one asked for is followed by a
Lanczos resize to the asked size. Alpha is scaled linearly. The engine may then refine the
upscaled picture with the diffusion model (`tiled_refine`) when the request has a strength.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .client.bounds import Bounds, Extent
from .client.protocol import (
    MAX_PIXELS,
    MAX_SIDE,
    AddOnInfo,
    AddOnKind,
    Cancelled,
    InvalidRequest,
)
from .geometry import resize_rgb
from .image_models import PURPOSE_WORDS, ImageModel, listed_purpose, load_image_model, may_serve
from .model_files import UPSCALERS, ModelCatalog

LANCZOS = "Lanczos"  # the upscaler without a model, as AUTOMATIC1111 names it
MODEL_TILE = 256  # px of input a model call sees at most, plus the margin
MODEL_TILE_MARGIN = 32  # px of context around a tile: beyond what a pixel of ESRGAN sees


@dataclass(frozen=True)
class UpscalerChoice:
    """An upscaler a request may name: Lanczos (no file) or an installed model file."""

    name: str
    path: Path | None  # None: Lanczos


def upscaler_choices(catalog: ModelCatalog) -> list[UpscalerChoice]:
    """Lanczos, then every installed upscaler file, by folder and name; not the repair models
    that lie beside them in upscale_models/ (they keep the size)."""
    found = {LANCZOS.lower(): UpscalerChoice(LANCZOS, None)}
    for model_file in catalog.find(UPSCALERS):
        if may_serve(model_file.path, ("SR",)):
            choice = UpscalerChoice(model_file.name, model_file.path)
            found.setdefault(model_file.name.lower(), choice)
    return list(found.values())


def installed_upscalers(catalog: ModelCatalog) -> list[AddOnInfo]:
    """The installed upscaler files, as the lists of what a request may add name them."""
    return [
        AddOnInfo(choice.name, AddOnKind.UPSCALER, "", str(choice.path))
        for choice in upscaler_choices(catalog)
        if choice.path is not None
    ]


def choose_upscaler(catalog: ModelCatalog, name: str) -> UpscalerChoice:
    """The upscaler `name` (a listed name, any case, or a file's path) names; "" means the
    first installed model, else Lanczos."""
    choices = upscaler_choices(catalog)
    if not name:
        return choices[1] if len(choices) > 1 else choices[0]
    for choice in choices:
        if choice.name.lower() == name.lower():
            return choice
    names = [choice.name for choice in choices]
    for model_file in catalog.find(UPSCALERS):  # left out of the choices: another purpose
        if model_file.name.lower() != name.lower():
            continue
        purpose = listed_purpose(model_file.path)
        if purpose is not None:
            raise InvalidRequest(
                "upscaler",
                f"{model_file.name} is {PURPOSE_WORDS.get(purpose, purpose)}, not an upscaler "
                f"(it keeps the size); choose one of {names}",
            )
    path = Path(name).expanduser()
    if path.is_file():
        return UpscalerChoice(path.stem, path)
    raise InvalidRequest(
        "upscaler",
        f"{name!r} is not installed; choose one of {names}, or put "
        f"an ESRGAN-family .safetensors file in an {UPSCALERS.subfolder}/ folder of the models "
        "folders",
    )


def upscaled_extent(size: Extent, scale: float, field: str = "scale") -> Extent:
    """`size` times `scale`, or an `InvalidRequest` on `field` beyond the size limit."""
    target = Extent(round(size.width * scale), round(size.height * scale))
    if max(target.width, target.height) > MAX_SIDE or target.pixel_count > MAX_PIXELS:
        raise InvalidRequest(
            field,
            f"×{scale:g} of {size.width}x{size.height} would be {target.width}x{target.height}, "
            f"more than the limit ({MAX_SIDE} px a side, {MAX_PIXELS // 1_000_000} megapixels); "
            "upscale a selection or a smaller copy, or by less",
        )
    return target


def load_upscaler(choice: UpscalerChoice, *, allow_pickle: bool, device: str) -> ImageModel | None:
    """The model of `choice`, loaded; None for Lanczos."""
    if choice.path is None:
        return None
    return load_image_model(
        choice.path, field="upscaler", purposes=("SR",), allow_pickle=allow_pickle, device=device
    )


def lanczos(pixels: np.ndarray, target: Extent) -> np.ndarray:
    return cv2.resize(pixels, (target.width, target.height), interpolation=cv2.INTER_LANCZOS4)


def upscale_rgba(
    pixels: np.ndarray,
    target: Extent,
    model: ImageModel | None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """HxWx4 uint8 `pixels` scaled to `target`: RGB by `model` (then Lanczos to the exact size)
    or by Lanczos alone; alpha linearly."""
    rgb = np.ascontiguousarray(pixels[..., :3])
    if model is not None:
        rgb = run_in_tiles(rgb, model, cancel)
    result = np.empty((target.height, target.width, 4), dtype=np.uint8)
    result[..., :3] = lanczos(rgb, target) if rgb.shape[:2] != result.shape[:2] else rgb
    # Linear for alpha: Lanczos would ring, and transparent areas would show a faint halo.
    alpha = np.ascontiguousarray(pixels[..., 3])
    result[..., 3] = cv2.resize(
        alpha, (target.width, target.height), interpolation=cv2.INTER_LINEAR
    )
    return result


def upscale_rgb(
    rgb: np.ndarray, target: Extent, model: ImageModel | None, cancel: threading.Event | None
) -> np.ndarray:
    """HxWx3 uint8 `rgb` scaled up to `target`: by `model` then Lanczos to the exact size, or
    bicubic without a model (as the engine scales its results)."""
    if (rgb.shape[1], rgb.shape[0]) == (target.width, target.height):
        return rgb
    if model is None:
        return resize_rgb(rgb, target)
    upscaled = run_in_tiles(rgb, model, cancel)
    return lanczos(upscaled, target) if upscaled.shape[:2] != rgb.shape[:2] else upscaled


def run_in_tiles(rgb: np.ndarray, model: ImageModel, cancel: threading.Event | None) -> np.ndarray:
    """`model` (scale s) over HxWx3 uint8 `rgb`, tile by tile: each tile is run with a margin of
    its surroundings and only its own part of the output is kept, so no seam shows."""
    import torch

    scale = model.scale
    height, width = rgb.shape[:2]
    picture = Bounds(0, 0, width, height)
    output = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    parameter = next(model.descriptor.model.parameters())
    for y in range(0, height, MODEL_TILE):
        for x in range(0, width, MODEL_TILE):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            tile = Bounds(x, y, MODEL_TILE, MODEL_TILE).intersection(picture)
            seen = tile.pad(MODEL_TILE_MARGIN).clamp(picture.extent)
            tensor = torch.from_numpy(np.ascontiguousarray(rgb[seen.slices]))
            tensor = tensor.permute(2, 0, 1)[None].to(parameter.device, parameter.dtype) / 255.0
            with torch.inference_mode():
                upscaled = model.descriptor(tensor)[0].clamp(0, 1).mul(255).round()
            upscaled = upscaled.byte().permute(1, 2, 0).cpu().numpy()
            inside = tile.relative_to(seen)
            kept = Bounds(
                inside.x * scale, inside.y * scale, tile.width * scale, tile.height * scale
            )
            output[tile.y * scale : tile.bottom * scale, tile.x * scale : tile.right * scale] = (
                upscaled[kept.slices]
            )
    return output
