"""Image models that are not diffusion pipelines (upscalers, object removers, face restorers,
repair models), loaded from their published weight files through spandrel, which recognises
the architecture from the tensors' names and shapes.

Each capability keeps its files in its own folder of the models folders (`model_files`:
`upscale_models/`, `inpaint/`, `facerestore_models/`) and says which of spandrel's purposes it
takes, so that a face restorer given as an object remover is a clear error, not a wrong picture.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .client.protocol import InvalidRequest, ModelLoadError
from .loras import read_state_dict, tensor_shapes
from .model_files import SAFE_WEIGHT_SUFFIXES

if TYPE_CHECKING:
    from spandrel import ModelDescriptor

# spandrel's words for what a model does, and ours.
Purpose = Literal["SR", "FaceSR", "Inpainting", "Restoration"]
PURPOSE_WORDS: dict[str, str] = {
    "SR": "an upscaler",
    "FaceSR": "a face restorer",
    "Inpainting": "an object remover (inpainting)",
    "Restoration": "a repair model (denoise, JPEG artifacts, colour)",
}


@dataclass(frozen=True)
class ImageModel:
    """A loaded image model: its name, file, and spandrel's descriptor (the module with its
    architecture, purpose, scale and input requirements)."""

    name: str
    path: Path
    descriptor: ModelDescriptor

    @property
    def architecture(self) -> str:
        return self.descriptor.architecture.name

    @property
    def purpose(self) -> str:
        return self.descriptor.purpose

    @property
    def scale(self) -> int:
        return self.descriptor.scale


def load_image_model(
    path: Path,
    *,
    field: str,
    purposes: tuple[Purpose, ...],
    allow_pickle: bool,
    device: str = "cpu",
) -> ImageModel:
    """The model in `path`, in eval mode on `device`. `field` is the request field that named
    it; a file of an architecture spandrel does not know, or of another purpose, is an
    `InvalidRequest` on that field; a pickled file without `allow_pickle`, or an install
    without spandrel, a `ModelLoadError`."""
    try:
        import spandrel
    except ImportError:
        raise ModelLoadError(
            f"{path.name} is loaded through spandrel, which is not installed: "
            'pip install "inlayer[restore]" into Inlayer\'s environment, then restart the server'
        ) from None

    _add_extra_architectures()
    state_dict = read_state_dict(path, allow_pickle=allow_pickle)
    try:
        descriptor = spandrel.ModelLoader("cpu").load_from_state_dict(state_dict)
    except spandrel.UnsupportedModelError:
        raise InvalidRequest(
            field,
            f"{path.name} is not a model of an architecture Inlayer can load (ESRGAN-family "
            "upscalers, LaMa, GFPGAN, RestoreFormer, DRUNet, FBCNN, …); check the file",
        ) from None
    except (KeyError, RuntimeError, ValueError) as error:
        raise ModelLoadError(f"cannot load {path.name}: {error}") from None
    if descriptor.purpose not in purposes:
        wanted = " or ".join(PURPOSE_WORDS[purpose] for purpose in purposes)
        raise InvalidRequest(
            field,
            f"{path.name} is {PURPOSE_WORDS.get(descriptor.purpose, descriptor.purpose)} "
            f"({descriptor.architecture.name}), not {wanted}",
        )
    descriptor.to(device).eval()
    return ImageModel(path.stem, path, descriptor)


def may_serve(path: Path, purposes: tuple[Purpose, ...]) -> bool:
    """Whether the file may hold a model of one of `purposes`: yes where its purpose is one of
    them or cannot be told before loading it (`listed_purpose`). The lists of what a field may
    name keep out the files that cannot serve it (a denoiser among the upscalers)."""
    purpose = listed_purpose(path)
    return purpose is None or purpose in purposes


def listed_purpose(path: Path) -> str | None:
    """What the model in `path` does (spandrel's purpose), told from its tensors' names and
    shapes alone: spandrel builds the model without its weights (`_built_empty`), so a list of
    models stays quick. None where that cannot tell: a pickled file (reading it would unpickle
    it), spandrel not installed, an unknown architecture, one that cannot be built without
    real weights (DDColor, MAT)."""
    if path.suffix not in SAFE_WEIGHT_SUFFIXES or not path.is_file():
        return None
    return _listed_purpose(path, path.stat().st_mtime_ns)


# Tensors up to this many numbers are made real (zeros) for `_built_empty`: buffers such as
# batch-norm statistics, which a model without weights still keeps on the CPU.
SMALL_TENSOR = 1 << 16


@functools.lru_cache(maxsize=256)
def _listed_purpose(path: Path, modified_ns: int) -> str | None:
    del modified_ns  # part of the cache key only: a replaced file is looked at again
    try:
        shapes = tensor_shapes(path, allow_pickle=False)  # the header alone
    except ModelLoadError:
        return None
    for on_meta_device in (True, False):
        try:
            # PyTorch warns that copying into a parameter on the meta device does nothing.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return _built_empty(shapes, on_meta_device=on_meta_device).purpose
        except Exception:  # a constructor can fail on tensors without numbers: try the other way
            continue
    return None


def _built_empty(shapes: dict[str, tuple[int, ...]], *, on_meta_device: bool) -> ModelDescriptor:
    """spandrel's model for tensors of these shapes, built without memory for its weights:
    everything on PyTorch's meta device, or (for constructors that compute with numbers, such
    as a drop-path schedule's `torch.linspace(...).item()`) only the parameters there."""
    import spandrel
    import torch
    from accelerate import init_empty_weights

    _add_extra_architectures()
    if on_meta_device:
        empty = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
        with torch.device("meta"):
            return spandrel.MAIN_REGISTRY.load(empty)
    empty = {
        key: torch.zeros(shape)
        if math.prod(shape) <= SMALL_TENSOR
        else torch.empty(shape, device="meta")
        for key, shape in shapes.items()
    }
    with init_empty_weights(include_buffers=False):
        return spandrel.MAIN_REGISTRY.load(empty)


@functools.cache
def _add_extra_architectures() -> None:
    """spandrel-extra-arches, where installed, adds MAT, CodeFormer and DDColor (under their
    own, partly non-commercial, licences: it is the user's choice to install it)."""
    try:
        import spandrel_extra_arches
    except ImportError:
        return
    spandrel_extra_arches.install(ignore_duplicates=True)
