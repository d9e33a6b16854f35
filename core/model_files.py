"""Model files: which files in the models folders are models, of which kind, and what each is.

Nothing here imports torch or reads weights: listing models for a plug-in's menu or a server's
`/v1/models` must stay cheap. Loading is `models.py`'s work.

Words used here:

- **Models folder**: a folder the settings name (`[models] dirs`, plus the checkpoint folders of
  AUTOMATIC1111 and ComfyUI).
- **Kind** (`ModelFileKind`): what a model file is for, and where it lives in a models folder.
  Checkpoints (whole Stable Diffusion models) lie in the models folder itself; another kind
  (LoRAs, tiny VAEs, ControlNets, upscalers) is one more `ModelFileKind` naming its subfolder,
  its file suffixes and, where it comes as a folder, the file that marks such a folder.
- **Model reference** (a request's `model` field) names a checkpoint; `ModelCatalog.resolve`
  takes one of:

  - a name the catalog lists: every diffusers folder (``model_index.json`` inside) and every
    checkpoint file in a models folder, under its folder or file name without extension;
  - a path to such a folder or file (pickled ``.ckpt`` / ``.bin`` / ``.pt`` files load only with
    `allow_pickle`, because unpickling runs code);
  - a Hugging Face repo id (``owner/name``), downloaded on first use into the hub cache, unless
    ``HF_HUB_OFFLINE`` is set.

What a checkpoint is (family, inpainting) comes from its configs, or for a single file from its
tensor names and shapes, read from the file's header.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client.protocol import Mode, ModelInfo, ModelLoadError, ModelNotFound

log = logging.getLogger(__name__)

SAFE_WEIGHT_SUFFIXES = (".safetensors",)
PICKLE_WEIGHT_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
MODEL_FILE_SUFFIXES = SAFE_WEIGHT_SUFFIXES + PICKLE_WEIGHT_SUFFIXES
ALLOW_PICKLE_HINT = (
    "pickled weights can run code when loaded; if you trust this file, allow them with "
    "--allow-pickle (CLI), allow_pickle = true in config.ini, or INLAYER_ALLOW_PICKLE=1"
)
SIDE_CONFIG_SUFFIX = ".config"  # NAME.config/ beside NAME.safetensors holds its architecture

# The files of a hub repo that loading needs: configs, tokenizers and safetensors weights, not
# the half-precision, EMA or safety-checker extras many repos also hold.
HUB_FILE_PATTERNS = ("model_index.json", "*/*.json", "*/*.txt", "*/*.safetensors")
HUB_PICKLE_PATTERNS = ("*/*.bin",)  # fetched only where pickled weights are allowed
HUB_IGNORE_PATTERNS = ("*.fp16.*", "*non_ema*", "*.ema.*", "safety_checker/*")

# What an ordinary model serves; a dedicated inpainting model (9-channel UNet) serves inpaint only,
# an instruction-edit model (InstructPix2Pix-class, 8-channel UNet: the image's latents beside
# the noise) edit only.
ORDINARY_MODES = (Mode.INPAINT, Mode.IMG2IMG, Mode.TXT2IMG)
INPAINTING_MODES = (Mode.INPAINT,)
EDIT_MODES = (Mode.EDIT,)
EDIT_UNET_IN_CHANNELS = 8

# Keys that identify the architecture of an original (LDM-layout) single-file checkpoint.
LDM_UNET_INPUT_KEY = "model.diffusion_model.input_blocks.0.0.weight"
LDM_SD15_TEXT_PREFIX = "cond_stage_model.transformer."
LDM_SDXL_TEXT_PREFIX = "conditioner.embedders.1.model."
LDM_SD2_TEXT_PREFIX = "cond_stage_model.model."


@dataclass(frozen=True)
class ModelFileKind:
    """Where a kind of model lies in a models folder, and how it looks there."""

    subfolder: str  # inside each models folder; "" for the models folder itself
    suffixes: tuple[str, ...]  # of single files
    folder_marker: str | None  # the file inside a folder that makes it one model; None: files only
    # Where AUTOMATIC1111 and ComfyUI keep this kind inside their installation folders.
    tool_subfolders: tuple[str, ...] = ()

    def is_model(self, path: Path) -> bool:
        """Whether `path` looks like a model of this kind: a marked folder or a weights file."""
        if path.is_dir():
            return self.folder_marker is not None and (path / self.folder_marker).is_file()
        return path.suffix in self.suffixes and path.is_file()


CHECKPOINTS = ModelFileKind(
    subfolder="", suffixes=MODEL_FILE_SUFFIXES, folder_marker="model_index.json"
)
# LoRAs (core/loras.py): single files, in ComfyUI's folder name.
LORAS = ModelFileKind(
    subfolder="loras",
    suffixes=MODEL_FILE_SUFFIXES,
    folder_marker=None,
    tool_subfolders=("models/Lora", "models/loras"),
)
# Tiny autoencoders (core/tiny_vae.py): a diffusers folder, one file, or an encoder/decoder pair.
TINY_VAES = ModelFileKind(
    subfolder="vae_approx",
    suffixes=MODEL_FILE_SUFFIXES,
    folder_marker="config.json",
    tool_subfolders=("models/VAE-approx", "models/vae_approx"),
)

# ControlNets (diffusers folders or single files) and IP-Adapters with their image encoders.
CONTROLNETS = ModelFileKind(
    subfolder="controlnet",
    suffixes=MODEL_FILE_SUFFIXES,
    folder_marker="config.json",
    tool_subfolders=("models/ControlNet", "models/controlnet"),
)
IP_ADAPTERS = ModelFileKind(
    subfolder="ipadapter",
    suffixes=MODEL_FILE_SUFFIXES,
    folder_marker=None,
    tool_subfolders=("models/ipadapter", "models/ControlNet"),
)
IMAGE_ENCODERS = ModelFileKind(
    subfolder="clip_vision",
    suffixes=MODEL_FILE_SUFFIXES,
    folder_marker="config.json",
    tool_subfolders=("models/clip_vision",),
)
# The depth-estimation models of the ControlNet depth preprocessor (core/preprocessors.py):
# transformers folders (DPT, Depth Anything).
DEPTH_ESTIMATORS = ModelFileKind(subfolder="annotators", suffixes=(), folder_marker="config.json")
# Image models loaded through spandrel (core/image_models.py): single files.
UPSCALERS = ModelFileKind(
    subfolder="upscale_models",
    suffixes=MODEL_FILE_SUFFIXES,
    folder_marker=None,
    tool_subfolders=("models/ESRGAN", "models/RealESRGAN", "models/upscale_models"),
)
OBJECT_REMOVERS = ModelFileKind(
    subfolder="inpaint",
    suffixes=MODEL_FILE_SUFFIXES,
    folder_marker=None,
    tool_subfolders=("models/inpaint",),
)
FACE_RESTORERS = ModelFileKind(
    subfolder="facerestore_models",
    suffixes=MODEL_FILE_SUFFIXES,
    folder_marker=None,
    tool_subfolders=("models/GFPGAN", "models/Codeformer", "models/facerestore_models"),
)
# Full autoencoders in place of a checkpoint's own (core/full_vae.py): a diffusers folder or a file.
FULL_VAES = ModelFileKind(
    subfolder="vae",
    suffixes=MODEL_FILE_SUFFIXES,
    folder_marker="config.json",
    tool_subfolders=("models/VAE", "models/vae"),
)
# Face detectors for the face restorers (core/face_restore.py): OpenCV's YuNet, an ONNX file,
# in ComfyUI's (facexlib's) folder name.
FACE_DETECTORS = ModelFileKind(
    subfolder="facedetection",
    suffixes=(".onnx",),
    folder_marker=None,
    tool_subfolders=("models/facedetection",),
)

# Segment Anything models for select (core/sam_selection.py): transformers folders (config.json,
# model.safetensors, preprocessor_config.json), in ComfyUI's folder name (its extensions and
# AUTOMATIC1111's keep the original single .pth files there, which are not listed).
SEGMENTERS = ModelFileKind(
    subfolder="sams",
    suffixes=(),
    folder_marker="config.json",
    tool_subfolders=("models/sams", "models/sam"),
)
# Salient-object models for select (core/salient_selection.py): ONNX files of IS-Net, BiRefNet
# or U²-Net as rembg publishes them, in the folder name of ComfyUI's rembg nodes.
SUBJECT_SEGMENTERS = ModelFileKind(
    subfolder="rembg",
    suffixes=(".onnx",),
    folder_marker=None,
    tool_subfolders=("models/rembg",),
)


@dataclass(frozen=True)
class ModelFile:
    """A model's path, and the name it goes by: its folder's name, or its file's name without
    the extension."""

    name: str
    path: Path

    @staticmethod
    def of(path: Path) -> ModelFile:
        return ModelFile(path.name if path.is_dir() else path.stem, path)


def find_model_files(
    models_dirs: Sequence[Path], kind: ModelFileKind, tool_dirs: Sequence[Path] = ()
) -> list[ModelFile]:
    """Every model of `kind` in the models folders, then in the installation folders of other
    tools (`tool_dirs`): folder by folder, by name within each."""
    found = []
    folders = [models_dir / kind.subfolder for models_dir in models_dirs]
    folders += [tool / sub for tool in tool_dirs for sub in kind.tool_subfolders]
    for folder in dict.fromkeys(folders):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):  # hidden: e.g. a download still under way
                continue
            # A side config folder describes the file beside it; it is not a model of its own.
            if kind.is_model(path) and not (
                path.is_dir() and path.name.endswith(SIDE_CONFIG_SUFFIX)
            ):
                found.append(ModelFile.of(path))
    return found


def side_config_folder(checkpoint: Path) -> Path:
    """Where the architecture of a single-file checkpoint may lie beside it."""
    return checkpoint.with_name(checkpoint.stem + SIDE_CONFIG_SUFFIX)


@dataclass(frozen=True)
class Checkpoint:
    """A whole Stable Diffusion model: where it lives, and what it is."""

    name: str
    path: Path  # a diffusers folder or a single checkpoint file
    format: str  # "diffusers", "safetensors", "ckpt", "hub"
    family: str  # "sd15", "sd21" (SD 2.x, e.g. SD-Turbo), "sdxl"
    inpainting: bool  # a dedicated inpainting model (9-channel UNet)
    source: str  # what the user sees: a folder, a file or a repo id
    instruct: bool = False  # an instruction-edit model (8-channel UNet)

    @property
    def modes(self) -> tuple[Mode, ...]:
        if self.instruct:
            return EDIT_MODES
        return INPAINTING_MODES if self.inpainting else ORDINARY_MODES

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            family=self.family,
            modes=tuple(mode.value for mode in self.modes),
            inpainting=self.inpainting,
            source=self.source,
            format=self.format,
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read {path}: {error}") from None


def describe_folder(
    path: Path, name: str, *, source: str = "", fmt: str = "diffusers"
) -> Checkpoint:
    """Family and inpainting of a diffusers folder, read from its configs (no weights read)."""
    index = _read_json(path / "model_index.json")
    unet_config_path = path / "unet" / "config.json"
    unet = _read_json(unet_config_path) if unet_config_path.exists() else {}
    if "text_encoder_2" in index:
        family = "sdxl"
    elif unet.get("use_linear_projection") or unet.get("cross_attention_dim") == 1024:
        family = "sd21"  # OpenCLIP's text encoder, linear attention projections
    else:
        family = "sd15"
    in_channels = unet.get("in_channels", 4)
    instruct = in_channels == EDIT_UNET_IN_CHANNELS
    return Checkpoint(name, path, fmt, family, in_channels == 9, source or str(path), instruct)


def describe_single_file(path: Path, name: str) -> Checkpoint:
    """Family and inpainting of a single checkpoint, read from its tensor names and shapes."""
    if path.suffix not in SAFE_WEIGHT_SUFFIXES:
        # The architecture of a pickled file is only known once loaded; assume SD 1.5 unless
        # its side config says otherwise.
        side = side_config_folder(path)
        if side.is_dir():
            described = describe_folder(side, name, source=str(path), fmt="ckpt")
            return dataclasses.replace(described, path=path)
        return Checkpoint(name, path, "ckpt", "sd15", "inpaint" in path.stem.lower(), str(path))
    from safetensors import safe_open

    try:
        # The numpy view reads names and shapes from the header without importing torch.
        with safe_open(str(path), framework="numpy") as checkpoint:
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
    instruct = in_channels == EDIT_UNET_IN_CHANNELS
    return Checkpoint(name, path, "safetensors", family, in_channels == 9, str(path), instruct)


def describe_checkpoint(found: ModelFile) -> Checkpoint:
    if found.path.is_dir():
        return describe_folder(found.path, found.name)
    return describe_single_file(found.path, found.name)


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


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class ModelCatalog:
    """The checkpoints of the models folders: lists them, resolves model references, and picks
    the model a request without one uses."""

    def __init__(
        self,
        models_dirs: Sequence[Path] = (),
        *,
        allow_pickle: bool = False,
        default_models: Mapping[Mode, str] | None = None,
        tool_dirs: Sequence[Path] = (),
    ) -> None:
        """`tool_dirs`: installation folders of AUTOMATIC1111 and ComfyUI, searched for the
        kinds they keep apart from their checkpoints (LoRAs, tiny autoencoders)."""
        self.models_dirs = [Path(d).expanduser() for d in models_dirs]
        self.tool_dirs = [Path(d).expanduser() for d in tool_dirs]
        self.allow_pickle = allow_pickle  # also fetch a hub repo's pickled weights
        self.default_models = dict(default_models or {})  # the user's choice per mode

    def find(self, kind: ModelFileKind) -> list[ModelFile]:
        return find_model_files(self.models_dirs, kind, self.tool_dirs)

    def find_one(self, kind: ModelFileKind, ref: str) -> ModelFile | None:
        """The model of `kind` a reference names: a listed name (or file name), or a path."""
        ref = ref.strip()
        for model in self.find(kind):
            if ref in (model.name, model.path.name):
                return model
        path = Path(ref).expanduser()
        return ModelFile.of(path) if kind.is_model(path) else None

    def list(self) -> list[ModelInfo]:
        """Every checkpoint in the models folders, sorted by name; broken ones are skipped, and
        of two with one name the first folder's wins."""
        found: dict[str, ModelInfo] = {}
        for model in self.find(CHECKPOINTS):
            if model.name in found:
                continue
            try:
                found[model.name] = describe_checkpoint(model).info()
            except ModelLoadError as error:
                log.warning("skipping %s: %s", model.path, error)
        return [found[name] for name in sorted(found)]

    def resolve(self, ref: str) -> Checkpoint:
        """The checkpoint a reference names; ModelNotFound saying where Inlayer looked."""
        found = self.find_one(CHECKPOINTS, ref)
        if found is not None:
            return describe_checkpoint(found)
        ref = ref.strip()
        path = Path(ref).expanduser()
        if path.exists():
            raise ModelNotFound(
                f"{ref} is neither a diffusers folder (with model_index.json) nor a "
                f"checkpoint file ({', '.join(MODEL_FILE_SUFFIXES)})"
            )
        if looks_like_repo_id(ref):
            return self._from_hub(ref)
        raise ModelNotFound(f"model {ref!r} not found; {self._where_to_get_models()}")

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

    def _where_to_get_models(self) -> str:
        listed = {model.name for model in self.find(CHECKPOINTS)}
        looked = ", ".join(str(d) for d in self.models_dirs) or "no models folder configured"
        known = f"available: {', '.join(sorted(listed))}" if listed else "none installed"
        return (
            f"looked in {looked} ({known}); put a diffusers folder or a .safetensors file "
            "there, pass a path, or a Hugging Face repo id such as "
            "stable-diffusion-v1-5/stable-diffusion-v1-5"
        )

    def _from_hub(self, repo_id: str) -> Checkpoint:
        """A hub repo's diffusers files in the local cache, downloaded first when allowed."""
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        # Read at each use, not at import as huggingface_hub does, so that a process can turn
        # downloads off after importing Inlayer.
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
