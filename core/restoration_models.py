"""The image models of remove, restore and select: which file a request names, loaded once
(`image_models.load_image_model`, through spandrel) and run on numpy pixels.

A request names a model by the name `inlayer models` lists (the file name without its
extension) or by a path. Loaded models stay in memory, a few at a time, keyed by the file and
its modification time, so that repeated edits skip the load and a replaced file is read again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .client.protocol import GeneratedImage, InvalidRequest
from .image_models import ImageModel, Purpose, load_image_model, may_serve
from .model_files import (
    FACE_RESTORERS,
    MODEL_FILE_SUFFIXES,
    OBJECT_REMOVERS,
    SEGMENTERS,
    SUBJECT_SEGMENTERS,
    UPSCALERS,
    ModelFileKind,
)

if TYPE_CHECKING:
    import torch

    from .models import ModelRegistry

# Loaded image models kept in memory: a remover, a face restorer and a repair model together.
CACHED_IMAGE_MODELS = 4
# The grey a one-channel model sees: ITU-R BT.601 luma, OpenCV's RGB-to-grey weights.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Outcome:
    """What a mode without diffusion made: its layers, the model that made them ("" for none or
    several), and one line for the user saying what was done."""

    images: list[GeneratedImage]
    model: str
    hint: str


@dataclass(frozen=True)
class ModelSource:
    """Where image models come from for one run: the registry's folders and its policies."""

    registry: ModelRegistry

    def names(self, kind: ModelFileKind, purposes: tuple[Purpose, ...] = ()) -> list[str]:
        """The models of `kind` by name; with `purposes`, those that may serve one of them
        (`image_models.may_serve`)."""
        return [
            found.name
            for found in self.registry.catalog.find(kind)
            if not purposes or may_serve(found.path, purposes)
        ]

    def segmenter_names(self) -> list[str]:
        """What select's `segmenter` may name, in the order a request naming none tries them:
        the subject segmenters, then Segment Anything."""
        return self.names(SUBJECT_SEGMENTERS) + self.names(SEGMENTERS)

    def path_of(self, kind: ModelFileKind, reference: str, field: str) -> Path:
        """The file `reference` names: a listed name, else a path to a weights file."""
        reference = reference.strip()
        listed = self.registry.catalog.find(kind)
        for found in listed:
            if reference in (found.name, found.path.name):
                return found.path
        path = Path(reference).expanduser()
        if path.is_file() and path.suffix in MODEL_FILE_SUFFIXES:
            return path
        names = ", ".join(found.name for found in listed) or "none installed"
        raise InvalidRequest(
            field,
            f"{reference!r} is neither a model in the {kind.subfolder}/ folder of a models "
            f"folder ({names}) nor a weights file; `inlayer models pull` fetches the usual ones",
        )

    def names_by_field(self) -> dict[str, list[str]]:
        """The names each request field that names an image model may take (a server takes
        only these, never a path)."""
        repair = self.names(UPSCALERS, ("Restoration",))
        return {
            "remover": self.names(OBJECT_REMOVERS, ("Inpainting",)),
            "restore_faces": self.names(FACE_RESTORERS, ("FaceSR",)),
            "denoise": repair,
            "colorize": repair,
            "segmenter": self.segmenter_names(),
        }

    def load(
        self, kind: ModelFileKind, reference: str, *, field: str, purposes: tuple[Purpose, ...]
    ) -> ImageModel:
        path = self.path_of(kind, reference, field)
        return _load_cached(
            path,
            path.stat().st_mtime_ns,
            field,
            purposes,
            self.registry.allow_pickle,
            self.registry.device,
        )


@functools.lru_cache(maxsize=CACHED_IMAGE_MODELS)
def _load_cached(
    path: Path,
    modified_ns: int,
    field: str,
    purposes: tuple[Purpose, ...],
    allow_pickle: bool,
    device: str,
) -> ImageModel:
    del modified_ns  # part of the cache key only: a replaced file is loaded again
    return load_image_model(
        path, field=field, purposes=purposes, allow_pickle=allow_pickle, device=device
    )


def rgb_tensor(rgb: np.ndarray, device: str) -> torch.Tensor:
    """An HxWx3 uint8 image as the 1x3xHxW float tensor in [0, 1] spandrel's models take."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).to(device)
    return tensor.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_rgb(tensor: torch.Tensor) -> np.ndarray:
    """A 1x3xHxW tensor in [0, 1] as HxWx3 uint8."""
    import torch

    pixels = tensor[0].clamp(0, 1).mul(255.0).round_().to("cpu", dtype=torch.uint8)
    return np.ascontiguousarray(pixels.permute(1, 2, 0).numpy())


def run_image_model(model: ImageModel, rgb: np.ndarray) -> np.ndarray:
    """The model's HxWx3 uint8 output for an HxWx3 uint8 input (spandrel pads to the sizes the
    architecture needs and crops back)."""
    import torch

    device = next(model.descriptor.model.parameters()).device
    tensor = rgb_tensor(rgb, str(device))
    if model.descriptor.input_channels == 1:  # a colorizer (DDColor) sees the picture's grey
        luma = torch.tensor(LUMA_WEIGHTS, device=tensor.device).view(1, 3, 1, 1)
        tensor = (tensor * luma).sum(dim=1, keepdim=True)
    with torch.inference_mode():
        output = model.descriptor(tensor)
    if output.shape[1] == 1:  # a grey model's picture: the same grey on all three channels
        output = output.expand(-1, 3, -1, -1)
    return tensor_rgb(output)


def blend(original: np.ndarray, restored: np.ndarray, weight: float | np.ndarray) -> np.ndarray:
    """`restored` mixed over `original` (both HxWx3 uint8) by `weight` in [0, 1]: a number, or
    an HxW float array. Where the weight is 0 the original is kept exactly."""
    weights = np.asarray(weight, dtype=np.float32)
    if weights.ndim == 2:
        weights = weights[..., None]
    mixed = original + (restored.astype(np.float32) - original) * weights
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
