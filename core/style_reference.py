"""Style from a reference image: IP-Adapters from the `ipadapter/` folders, with the image
encoder each needs from the `clip_vision/` folders, through diffusers' `load_ip_adapter`.

A run enters here at two points of `Engine.run`:

- step 2, `StyleAdapters.equip`: with `EditRequest.style`, the IP-Adapter that fits the model
  (the named one, else the first installed of its family) loaded into the model's UNet (shared
  by all its pipelines; kept while the same one is asked for), its image encoder on the run's
  pipeline and its scale set; without a style, one loaded before is taken out again, so that the
  model paints as it does without;
- step 4, `style_arguments`: the reference image for the pipeline call.

Words used here:

- **IP-Adapter file**: a ``.safetensors`` file (pickled ``.bin`` only with `allow_pickle`) with
  ``image_proj.*`` and ``ip_adapter.*`` keys. Its **width** is the width of the text
  embeddings its cross-attention layers take (768 for SD 1.5, 2048 for SDXL); its **embedding
  width** the width of the image embeddings it projects (1024 for CLIP ViT-H/14, 1280 for
  ViT-bigG/14), which its image encoder must give.
- **Image encoder**: a transformers folder of a `CLIPVisionModelWithProjection` (config.json and
  weights), as h94/IP-Adapter ships it in ``models/image_encoder`` (SD 1.5) and
  ``sdxl_models/image_encoder``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .client.protocol import AddOnInfo, AddOnKind, EditRequest, InvalidRequest, ModelLoadError
from .loras import FAMILY_OF_WIDTH
from .model_files import (
    ALLOW_PICKLE_HINT,
    IMAGE_ENCODERS,
    IP_ADAPTERS,
    PICKLE_WEIGHT_SUFFIXES,
    ModelCatalog,
)
from .preprocessors import over

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from .models import LoadedModel, ModelRegistry

WHERE_TO_GET = (
    "put an IP-Adapter (.safetensors, e.g. ip-adapter_sd15.safetensors from h94/IP-Adapter) in "
    "an ipadapter/ folder and its image encoder (the image_encoder folder beside it there) in a "
    "clip_vision/ folder of a models folder"
)


@dataclass(frozen=True)
class IpAdapterFile:
    """An IP-Adapter as its file's header shows it (no weights read)."""

    name: str
    path: Path
    width: int  # of its cross-attention inputs: the text embeddings of the models it fits
    embedding_width: int  # of the image embeddings it takes: its image encoder's

    @property
    def family(self) -> str:
        return FAMILY_OF_WIDTH.get(self.width, "")


@dataclass(frozen=True)
class ImageEncoderFolder:
    name: str
    path: Path
    embedding_width: int  # its projection's width


def describe_ip_adapter(path: Path, name: str) -> IpAdapterFile:
    """Widths from the header: ``ip_adapter.1.to_k_ip.weight`` is (hidden, width); the image
    projection takes embeddings of ``image_proj.proj.weight``'s (or the resampler's) inputs."""
    if path.suffix in PICKLE_WEIGHT_SUFFIXES:
        return IpAdapterFile(name, path, 0, 0)
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as weights:
            keys = set(weights.keys())
            width = weights.get_slice("ip_adapter.1.to_k_ip.weight").get_shape()[1]
            projections = ("image_proj.proj.weight", "image_proj.proj_in.weight")
            projection = next(key for key in projections if key in keys)
            embedding_width = weights.get_slice(projection).get_shape()[1]
    except Exception as error:  # safetensors' own errors, a missing key, no projection
        raise ModelLoadError(f"{path} is not an IP-Adapter Inlayer can read: {error}") from None
    return IpAdapterFile(name, path, width, embedding_width)


def find_ip_adapters(catalog: ModelCatalog) -> list[IpAdapterFile]:
    found: dict[str, IpAdapterFile] = {}
    for model in catalog.find(IP_ADAPTERS):
        if model.name not in found and model.path.is_file():
            try:
                found[model.name] = describe_ip_adapter(model.path, model.name)
            except ModelLoadError:
                continue
    return list(found.values())


def find_image_encoders(catalog: ModelCatalog) -> list[ImageEncoderFolder]:
    encoders = []
    for model in catalog.find(IMAGE_ENCODERS):
        if not model.path.is_dir():
            continue
        try:
            config = json.loads((model.path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        width = int(config.get("projection_dim") or 0)
        encoders.append(ImageEncoderFolder(model.name, model.path, width))
    return encoders


def ip_adapter_infos(catalog: ModelCatalog) -> list[AddOnInfo]:
    """The IP-Adapters, for `inlayer models` and /v1/add-ons."""
    return [
        AddOnInfo(a.name, AddOnKind.IP_ADAPTER, a.family, str(a.path))
        for a in find_ip_adapters(catalog)
    ]


def choose_ip_adapter(
    request: EditRequest, model: LoadedModel, catalog: ModelCatalog
) -> IpAdapterFile:
    """The named IP-Adapter, or the first installed one of the model's width."""
    assert request.style is not None
    installed = find_ip_adapters(catalog)
    wanted = request.style.model
    if wanted:
        named = [a for a in installed if a.name == wanted]
        if not named:
            names = [a.name for a in installed]
            raise InvalidRequest("style.model", f"IP-Adapter {wanted!r} not found ({names})")
        adapter = named[0]
        if adapter.width and adapter.width != model.cross_attention_dim:
            raise InvalidRequest(
                "style.model",
                f"IP-Adapter {adapter.name} is for {adapter.family or 'other'} models, but "
                f"{model.info.name} is a {model.info.family} model",
            )
        return adapter
    fitting = [a for a in installed if a.width in (0, model.cross_attention_dim)]
    if not fitting:
        raise InvalidRequest(
            "style", f"no IP-Adapter for {model.info.family} models is installed; {WHERE_TO_GET}"
        )
    return fitting[0]


class StyleAdapters:
    """The IP-Adapter in the loaded model's UNet, and the image encoders, loaded once."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._in_unet: tuple[int, Path] | None = None  # (id of the UNet, the adapter's file)
        self._encoders: dict[Path, Any] = {}

    def equip(self, pipe: DiffusionPipeline, model: LoadedModel, request: EditRequest) -> None:
        """Step 2: the request's style on `pipe` (or none, when the request has none)."""
        loaded = self._in_unet if self._in_unet and self._in_unet[0] == id(pipe.unet) else None
        if request.style is None:
            if loaded is not None:
                pipe.unload_ip_adapter()
                self._in_unet = None
            return
        if not hasattr(pipe, "load_ip_adapter"):
            raise InvalidRequest(
                "style", f"{request.mode.value} with {model.info.family} takes no style reference"
            )
        adapter = choose_ip_adapter(request, model, self.registry.catalog)
        encoder = self._encoder(adapter)
        if loaded is None or loaded[1] != adapter.path:
            if loaded is not None:
                pipe.unload_ip_adapter()
            self._load(pipe, adapter)
            self._in_unet = (id(pipe.unet), adapter.path)
        from transformers import CLIPImageProcessor

        side = int(encoder.config.image_size)
        processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size=side)
        pipe.register_modules(image_encoder=encoder, feature_extractor=processor)
        pipe.set_ip_adapter_scale(float(request.style.scale))

    def _load(self, pipe: DiffusionPipeline, adapter: IpAdapterFile) -> None:
        if adapter.path.suffix in PICKLE_WEIGHT_SUFFIXES and not self.registry.allow_pickle:
            raise ModelLoadError(f"IP-Adapter {adapter.name} is pickled; {ALLOW_PICKLE_HINT}")
        try:
            pipe.load_ip_adapter(
                str(adapter.path.parent),
                subfolder="",
                weight_name=adapter.path.name,
                image_encoder_folder=None,
                local_files_only=True,
            )
        except Exception as error:  # diffusers raises many types for a file it cannot read
            raise ModelLoadError(f"cannot load IP-Adapter {adapter.name}: {error}") from error

    def _encoder(self, adapter: IpAdapterFile) -> Any:
        """The image encoder whose embeddings the adapter takes."""
        encoders = find_image_encoders(self.registry.catalog)
        fitting = [e for e in encoders if e.embedding_width == adapter.embedding_width]
        if not fitting:
            found = ", ".join(f"{e.name} ({e.embedding_width})" for e in encoders) or "none"
            raise InvalidRequest(
                "style",
                f"IP-Adapter {adapter.name} needs its image encoder (a CLIP vision model with "
                f"projection width {adapter.embedding_width}) in a clip_vision/ folder; found "
                f"{found}; {WHERE_TO_GET}",
            )
        folder = fitting[0].path
        if folder not in self._encoders:
            from transformers import CLIPVisionModelWithProjection

            try:
                encoder = CLIPVisionModelWithProjection.from_pretrained(
                    folder,
                    dtype=self.registry.dtype,
                    use_safetensors=not self.registry.allow_pickle,
                )
            except Exception as error:  # transformers raises many types for a folder
                raise ModelLoadError(f"cannot load image encoder {folder}: {error}") from error
            self._encoders = {folder: encoder.to(self.registry.device)}
        return self._encoders[folder]


def style_arguments(request: EditRequest) -> dict[str, Any]:
    """Step 4: the reference image as the pipeline takes it (over white where transparent)."""
    from PIL import Image

    assert request.style is not None
    image = request.style.image
    rgba = np.frombuffer(image.data, dtype=np.uint8).reshape(image.height, image.width, 4)
    return {"ip_adapter_image": Image.fromarray(over(rgba, 255))}
