"""config.ini parsing, environment overrides and the model folders it yields."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from inlayer.core import settings
from inlayer.core.client import paths
from inlayer.core.client.protocol import Mode
from inlayer.core.settings import Settings, SettingsError, load_settings

ENVIRONMENT_VARIABLES = [*settings.ENVIRONMENT.values(), "INLAYER_HOME", "XDG_DATA_HOME"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("INLAYER_HOME", str(tmp_path / "home"))
    loaded = load_settings()
    assert loaded == Settings()
    assert loaded.download_dir == tmp_path / "home" / "models"
    assert loaded.all_models_dirs == [tmp_path / "home" / "models"]


def test_the_template_is_valid_and_means_the_defaults(tmp_path):
    assert settings.write_template()
    path = paths.settings_path()
    assert load_settings(path) == Settings()
    # configparser (what a plug-in would use) reads it too.
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.read(path)
    assert parser.get("server", "port") == "7878"
    # It never overwrites the user's file.
    write(path, "[server]\nport = 9000\n")
    assert not settings.write_template()
    assert load_settings().port == 9000


def test_reads_every_section(tmp_path):
    a1111 = tmp_path / "stable-diffusion-webui"
    (a1111 / "models" / "Stable-diffusion").mkdir(parents=True)
    comfy_checkpoints = tmp_path / "ComfyUI-checkpoints"
    comfy_checkpoints.mkdir()
    path = write(
        tmp_path / "config.ini",
        f"""
[server]
host = 0.0.0.0
port = 8000  # inline comment

[models]
dirs =
    {tmp_path / "mine"}
    {tmp_path / "shared"}
a1111 = {a1111}
comfyui = {comfy_checkpoints}
inpaint = sd15-inpainting
txt2img = owner/repo
allow_pickle = yes

[device]
device = cuda:1
dtype = float16
cpu_offload = true
""",
    )
    loaded = load_settings(path)
    assert loaded.host == "0.0.0.0"
    assert loaded.port == 8000
    assert loaded.models_dirs == (tmp_path / "mine", tmp_path / "shared")
    assert loaded.download_dir == tmp_path / "mine"
    # An installation folder leads to its checkpoints; a checkpoints folder is taken as is.
    assert loaded.all_models_dirs == [
        tmp_path / "mine",
        tmp_path / "shared",
        a1111 / "models" / "Stable-diffusion",
        comfy_checkpoints,
    ]
    assert loaded.default_models == {Mode.INPAINT: "sd15-inpainting", Mode.TXT2IMG: "owner/repo"}
    assert loaded.allow_pickle is True
    assert (loaded.device, loaded.dtype, loaded.cpu_offload) == ("cuda:1", "float16", True)


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = write(tmp_path / "config.ini", "[server]\nport = 8000\n[device]\ndevice = cpu\n")
    monkeypatch.setenv("INLAYER_PORT", "9100")
    monkeypatch.setenv("INLAYER_DEVICE", "auto")
    monkeypatch.setenv("INLAYER_MODELS_DIRS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    loaded = load_settings(path)
    assert loaded.port == 9100
    assert loaded.device is None
    assert loaded.models_dirs == (tmp_path / "a", tmp_path / "b")


def test_paths_expand_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = write(tmp_path / "config.ini", "[models]\ndirs = ~/models\n")
    assert load_settings(path).models_dirs == (tmp_path / "models",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nport = eighty\n", "[server] port: expected a port number"),
        ("[server]\nport = 70000\n", "expected a port number"),
        ("[models]\nallow_pickle = maybe\n", "[models] allow_pickle: expected true or false"),
        ("[device]\ndtype = float8\n", "[device] dtype: expected one of auto, float16"),
        ("[models]\ndir = /models\n", "unknown key 'dir' in [models]"),
        ("[model]\ndirs = /models\n", "unknown section [model]"),
        ("[models]\nfill = anything\n", "unknown key 'fill'"),
        ("port = 1\n", "File contains no section headers"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path / "config.ini", text)
    with pytest.raises(SettingsError, match=r"config\.ini") as error:
        load_settings(path)
    assert message in str(error.value)


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("INLAYER_CPU_OFFLOAD", "sometimes")
    with pytest.raises(SettingsError, match="INLAYER_CPU_OFFLOAD: expected true or false"):
        load_settings()


def test_model_registry_gets_every_folder_and_the_device_settings(tmp_path):
    loaded = Settings(
        models_dirs=(tmp_path / "models",),
        comfyui_dir=tmp_path / "ComfyUI",
        allow_pickle=True,
        device="cpu",
        dtype="float32",
        default_models={Mode.INPAINT: "my-inpainting"},
    )
    registry = loaded.model_registry()
    assert registry.default_for(Mode.INPAINT) == "my-inpainting"
    assert registry.models_dirs == [tmp_path / "models", tmp_path / "ComfyUI"]
    assert registry.allow_pickle is True
    assert registry.device == "cpu"


def test_the_environment_reaches_the_registry_through_the_settings(monkeypatch):
    """The registry reads no environment itself (test_models.py); the settings hand it over."""
    import torch

    monkeypatch.setenv("INLAYER_DEVICE", "cpu")
    monkeypatch.setenv("INLAYER_DTYPE", "bfloat16")
    monkeypatch.setenv("INLAYER_ALLOW_PICKLE", "1")
    registry = load_settings().model_registry()
    assert (registry.device, registry.dtype, registry.allow_pickle) == ("cpu", torch.bfloat16, True)
    assert registry.catalog.allow_pickle  # a hub download then fetches pickled weights too
