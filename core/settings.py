"""The user's settings: one commented file, `config_dir()/config.ini`, plus environment overrides.

Standard library only (configparser): reading the settings never imports torch. Every key is
optional; docs/configuration.md documents them and `inlayer config --init` writes the commented
template below. Precedence: environment variable > config.ini > built-in default. This is the one
place the core reads its environment variables: the model registry takes the values from here
(`Settings.model_registry`).

Words used here:

- **Models folders** (`[models] dirs`): where Inlayer looks for diffusers folders and checkpoint
  files; the first one receives `inlayer models pull` downloads.
- **Checkpoint folders of other tools** (`[models] a1111`, `comfyui`): an AUTOMATIC1111 or ComfyUI
  installation whose checkpoints Inlayer lists and loads in place, so nothing is downloaded twice.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .client import paths
from .client.protocol import InlayerError, Mode

if TYPE_CHECKING:
    from .models import ModelRegistry

# Where each tool keeps its checkpoints inside its installation folder.
A1111_CHECKPOINTS = Path("models") / "Stable-diffusion"
COMFYUI_CHECKPOINTS = Path("models") / "checkpoints"

# Modes that use a model, and so may name a default one (fill needs none).
MODEL_MODES = tuple(mode for mode in Mode if mode != Mode.FILL)
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"
DTYPE_CHOICES = ("auto", "float16", "bfloat16", "float32")
BACKEND_CHOICES = ("torch", "openvino")  # models.BACKENDS (this module imports no torch)

TEMPLATE = f"""\
# Inlayer settings (docs/configuration.md explains every key).
# Lines starting with # or ; are comments. Environment variables override these values.

[server]
# Address and port of `inlayer serve`; the plug-ins find the running server by itself.
# Anything but 127.0.0.1 exposes the server to the network (it still needs the token).
host = {paths.DEFAULT_HOST}
port = {paths.DEFAULT_PORT}
# token: the AUTOMATIC1111 routes (/sdapi/v1) need the token like every other route.
# none: they answer without one, for A1111 clients that cannot send it; only while the server
# listens on this computer alone (127.0.0.1), and the Host and Origin checks stay. Any program
# of any user of this computer can then run jobs: docs/security.md says what that risks.
a1111_auth = token

[models]
# Folders holding models (diffusers folders, .safetensors files), one per line.
# The first one receives `inlayer models pull` downloads. Default: the `models` folder in
# Inlayer's data folder.
# dirs =
#     ~/models/stable-diffusion
# Installation folders of AUTOMATIC1111 (models/Stable-diffusion) and ComfyUI
# (models/checkpoints), whose checkpoints Inlayer uses in place, with their LoRAs (models/Lora,
# models/loras) and tiny autoencoders (models/VAE-approx, models/vae_approx).
# a1111 = ~/stable-diffusion-webui
# comfyui = ~/ComfyUI
# The model a request without one uses, per mode (a name `inlayer models` lists, a path or a
# Hugging Face repo id). Default: the first model that can do it (an inpainting model for inpaint).
# inpaint =
# img2img =
# txt2img =
# Load pickled checkpoints (.ckpt, .bin, .pt): unpickling runs code, so only for files you trust.
allow_pickle = false

[device]
# {DEVICE_CHOICES}
device = auto
# {", ".join(DTYPE_CHOICES)} (auto: float16 on a GPU, float32 on the CPU)
dtype = auto
# Keep the model in main memory and move each part to the GPU only while it runs: slower, but
# fits large models on small GPUs.
cpu_offload = false
# Compile the UNet with torch.compile on a GPU: the first edit of each size takes a minute or
# two longer, the next ones run faster. A new prompt or seed compiles nothing.
compile = false
# torch, or openvino: on the CPU, the UNet and tiny autoencoder run as OpenVINO models
# (pip install "inlayer[openvino]"), converted once per model and LoRA set into Inlayer's
# data folder (cache/openvino); where that fails the edit runs in PyTorch and says why.
backend = torch

[output]
# Sign the images `inlayer run` writes and the AUTOMATIC1111 routes return with C2PA Content
# Credentials (Inlayer's own self-signed key; needs `pip install inlayer[credentials]`).
# Every image says it was made with AI in its metadata either way.
content_credentials = false
"""

A1111_AUTH_CHOICES = ("token", "none")


class SettingsError(InlayerError):
    """config.ini or an environment variable holds a value Inlayer cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = paths.DEFAULT_HOST
    port: int = paths.DEFAULT_PORT
    models_dirs: tuple[Path, ...] = ()
    a1111_dir: Path | None = None
    comfyui_dir: Path | None = None
    default_models: dict[Mode, str] = field(default_factory=dict)
    allow_pickle: bool = False
    device: str | None = None  # None: the best one found
    dtype: str | None = None  # None: float16 on a GPU, float32 on the CPU
    cpu_offload: bool = False
    compile: bool = False  # torch.compile the UNet on a GPU
    backend: str = "torch"  # "openvino": the CPU's UNet and tiny autoencoder in OpenVINO
    a1111_auth: str = "token"  # "none": /sdapi/v1 without a token, on loopback only
    content_credentials: bool = False  # sign written and returned images with C2PA

    @property
    def download_dir(self) -> Path:
        """Where `inlayer models pull` puts models: the first models folder."""
        return self.models_dirs[0] if self.models_dirs else paths.data_dir() / "models"

    @property
    def all_models_dirs(self) -> list[Path]:
        """The models folders, then the checkpoint folders of AUTOMATIC1111 and ComfyUI."""
        folders = list(self.models_dirs) or [self.download_dir]
        for install_dir, checkpoints in (
            (self.a1111_dir, A1111_CHECKPOINTS),
            (self.comfyui_dir, COMFYUI_CHECKPOINTS),
        ):
            if install_dir is not None:
                # Accept the installation folder or its checkpoints folder itself.
                nested = install_dir / checkpoints
                folders.append(nested if nested.is_dir() else install_dir)
        return list(dict.fromkeys(folders))

    @property
    def tool_dirs(self) -> list[Path]:
        """The installation folders of AUTOMATIC1111 and ComfyUI, where configured."""
        return [folder for folder in (self.a1111_dir, self.comfyui_dir) if folder is not None]

    def model_registry(self) -> ModelRegistry:
        """A registry over every configured folder, with these defaults and device settings."""
        from .models import ModelRegistry

        return ModelRegistry(
            self.all_models_dirs,
            default_models=self.default_models,
            allow_pickle=self.allow_pickle,
            device=self.device,
            dtype=self.dtype,
            cpu_offload=self.cpu_offload,
            tool_dirs=self.tool_dirs,
            compile_unet=self.compile,
            backend=self.backend,
            openvino_cache=paths.data_dir() / "cache" / "openvino",
        )


def _path(value: str) -> Path:
    return Path(os.path.expandvars(value.strip())).expanduser()


def _paths(value: str) -> tuple[Path, ...]:
    """One folder per line (or separated by the platform's path separator, as in PATH)."""
    parts = (part for line in value.splitlines() for part in line.split(os.pathsep))
    return tuple(_path(part) for part in parts if part.strip())


def _bool(value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{where}: expected true or false, got {value!r}")


def _port(value: str, where: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise SettingsError(f"{where}: expected a port number 0-65535, got {value!r}")
    return port


def _choice(value: str, choices: tuple[str, ...], where: str) -> str:
    word = value.strip().lower()
    if word not in choices:
        raise SettingsError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return word


def _auto(value: str) -> str | None:
    value = value.strip()
    return None if value in ("", "auto") else value


def _backend(value: str, where: str) -> str:
    backend = value.strip() or "torch"
    if backend not in BACKEND_CHOICES:
        raise SettingsError(f"{where}: expected one of {', '.join(BACKEND_CHOICES)}, got {value!r}")
    return backend


def _dtype(value: str, where: str) -> str | None:
    if value.strip() not in (*DTYPE_CHOICES, ""):
        raise SettingsError(f"{where}: expected one of {', '.join(DTYPE_CHOICES)}, got {value!r}")
    return _auto(value)


# (section, key) -> environment variable that overrides it.
ENVIRONMENT = {
    ("server", "host"): "INLAYER_HOST",
    ("server", "port"): "INLAYER_PORT",
    ("models", "dirs"): "INLAYER_MODELS_DIRS",
    ("models", "a1111"): "INLAYER_A1111_DIR",
    ("models", "comfyui"): "INLAYER_COMFYUI_DIR",
    ("models", "allow_pickle"): "INLAYER_ALLOW_PICKLE",
    ("device", "device"): "INLAYER_DEVICE",
    ("device", "dtype"): "INLAYER_DTYPE",
    ("device", "cpu_offload"): "INLAYER_CPU_OFFLOAD",
    ("device", "compile"): "INLAYER_COMPILE",
    ("device", "backend"): "INLAYER_BACKEND",
    ("server", "a1111_auth"): "INLAYER_A1111_AUTH",
    ("output", "content_credentials"): "INLAYER_CONTENT_CREDENTIALS",
}
KNOWN_KEYS = {
    "server": {"host", "port", "a1111_auth"},
    "models": {"dirs", "a1111", "comfyui", "allow_pickle"} | {mode.value for mode in MODEL_MODES},
    "device": {"device", "dtype", "cpu_offload", "compile", "backend"},
    "output": {"content_credentials"},
}


def _read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    if path.is_file():
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as error:
            raise SettingsError(f"{path}: {error}") from None
    for section in parser.sections():
        if section not in KNOWN_KEYS:
            raise SettingsError(f"{path}: unknown section [{section}]")
        unknown = set(parser[section]) - KNOWN_KEYS[section]
        if unknown:
            raise SettingsError(f"{path}: unknown key {sorted(unknown)[0]!r} in [{section}]")
    return parser


def load_settings(path: Path | None = None) -> Settings:
    """The effective settings: `path` (default `config_dir()/config.ini`, which may be absent)
    with the environment's overrides applied. Raises SettingsError naming the bad key."""
    path = path or paths.settings_path()
    parser = _read(path)

    def value(section: str, key: str) -> tuple[str | None, str]:
        """The raw value, and where it came from for error messages."""
        variable = ENVIRONMENT.get((section, key))
        if variable and os.environ.get(variable) is not None:
            return os.environ[variable], variable
        return parser.get(section, key, fallback=None), f"{path} [{section}] {key}"

    defaults = Settings()
    host, _ = value("server", "host")
    port, port_where = value("server", "port")
    dirs, _ = value("models", "dirs")
    a1111, _ = value("models", "a1111")
    comfyui, _ = value("models", "comfyui")
    pickle, pickle_where = value("models", "allow_pickle")
    device, _ = value("device", "device")
    dtype, dtype_where = value("device", "dtype")
    offload, offload_where = value("device", "cpu_offload")
    compile_unet, compile_where = value("device", "compile")
    backend, backend_where = value("device", "backend")
    a1111_auth, a1111_auth_where = value("server", "a1111_auth")
    credentials, credentials_where = value("output", "content_credentials")
    default_models = {}
    for mode in MODEL_MODES:
        model, _ = value("models", mode.value)
        if model and model.strip():
            default_models[mode] = model.strip()
    return Settings(
        host=host.strip() if host and host.strip() else defaults.host,
        port=_port(port, port_where) if port is not None else defaults.port,
        models_dirs=_paths(dirs) if dirs else (),
        a1111_dir=_path(a1111) if a1111 and a1111.strip() else None,
        comfyui_dir=_path(comfyui) if comfyui and comfyui.strip() else None,
        default_models=default_models,
        allow_pickle=_bool(pickle, pickle_where) if pickle is not None else False,
        device=_auto(device) if device is not None else None,
        dtype=_dtype(dtype, dtype_where) if dtype is not None else None,
        cpu_offload=_bool(offload, offload_where) if offload is not None else False,
        compile=_bool(compile_unet, compile_where) if compile_unet is not None else False,
        backend=_backend(backend, backend_where) if backend is not None else defaults.backend,
        a1111_auth=_choice(a1111_auth, A1111_AUTH_CHOICES, a1111_auth_where)
        if a1111_auth is not None
        else defaults.a1111_auth,
        content_credentials=_bool(credentials, credentials_where)
        if credentials is not None
        else False,
    )


def write_template(path: Path | None = None) -> bool:
    """Write the commented template unless a settings file exists; returns whether it did."""
    path = path or paths.settings_path()
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE, encoding="utf-8")
    return True
