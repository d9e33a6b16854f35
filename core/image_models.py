"""Image models that are not diffusion pipelines (upscalers, object removers, face restorers,
repair models), loaded from their published weight files through spandrel, which recognises
the architecture from the tensors' names and shapes.

Each capability keeps its files in its own folder of the models folders (`model_files`:
`upscale_models/`, `inpaint/`, `facerestore_models/`) and says which of spandrel's purposes it
takes, so that a face restorer given as an object remover is a clear error, not a wrong picture.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .client.protocol import InvalidRequest, ModelLoadError
from .loras import read_state_dict

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
    `InvalidRequest` on that field; a pickled file without `allow_pickle` a `ModelLoadError`."""
    import spandrel

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


@functools.cache
def _add_extra_architectures() -> None:
    """spandrel-extra-arches, where installed, adds MAT, CodeFormer and DDColor (under their
    own, partly non-commercial, licences: it is the user's choice to install it)."""
    try:
        import spandrel_extra_arches
    except ImportError:
        return
    spandrel_extra_arches.install(ignore_duplicates=True)
