"""Finding model files by kind, and telling what a checkpoint is, without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from inlayer.core.model_files import CHECKPOINTS, ModelCatalog, ModelFileKind, find_model_files
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING, TINY_SD15_SINGLE

# Kinds as the coming capabilities will declare them: one subfolder of each models folder each.
LORAS = ModelFileKind(subfolder="loras", suffixes=(".safetensors",), folder_marker=None)
CONTROLNETS = ModelFileKind(
    subfolder="controlnet", suffixes=(".safetensors",), folder_marker="config.json"
)
UPSCALERS = ModelFileKind(
    subfolder="upscale_models", suffixes=(".pth", ".safetensors"), folder_marker=None
)


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def found(models_dirs: list[Path], kind: ModelFileKind) -> list[tuple[str, Path]]:
    return [(model.name, model.path) for model in find_model_files(models_dirs, kind)]


def test_each_kind_is_found_in_its_own_subfolder_only(tmp_path):
    models = tmp_path / "models"
    touch(models / "photo.safetensors")
    touch(models / "painter" / "model_index.json", "{}")
    touch(models / "photo.config" / "model_index.json", "{}")  # the architecture of photo
    touch(models / "notes.txt")
    touch(models / "loras" / "watercolour.safetensors")
    touch(models / "loras" / "watercolour.json")  # trigger words beside a LoRA: not a model
    touch(models / "controlnet" / "canny" / "config.json", "{}")
    touch(models / "controlnet" / "depth.safetensors")
    touch(models / "controlnet" / "openpose" / "model_index.json", "{}")  # not a ControlNet
    touch(models / "upscale_models" / "4x-ultrasharp.pth")

    assert found([models], CHECKPOINTS) == [
        ("painter", models / "painter"),
        ("photo", models / "photo.safetensors"),
    ]
    assert found([models], LORAS) == [("watercolour", models / "loras" / "watercolour.safetensors")]
    assert found([models], CONTROLNETS) == [
        ("canny", models / "controlnet" / "canny"),
        ("depth", models / "controlnet" / "depth.safetensors"),
    ]
    assert found([models], UPSCALERS) == [
        ("4x-ultrasharp", models / "upscale_models" / "4x-ultrasharp.pth")
    ]


def test_models_folders_are_searched_in_order(tmp_path):
    first, second, missing = tmp_path / "first", tmp_path / "second", tmp_path / "missing"
    touch(first / "loras" / "b.safetensors")
    touch(second / "loras" / "a.safetensors")
    touch(second / "loras" / "b.safetensors")
    assert found([first, missing, second], LORAS) == [
        ("b", first / "loras" / "b.safetensors"),
        ("a", second / "loras" / "a.safetensors"),
        ("b", second / "loras" / "b.safetensors"),
    ]


def test_of_two_checkpoints_with_one_name_the_first_folder_wins(tmp_path):
    touch(tmp_path / "first" / "model" / "model_index.json", json.dumps({"text_encoder_2": []}))
    touch(tmp_path / "second" / "model" / "model_index.json", "{}")
    catalog = ModelCatalog([tmp_path / "first", tmp_path / "second"])
    assert [(info.name, info.family) for info in catalog.list()] == [("model", "sdxl")]
    assert catalog.resolve("model").path == tmp_path / "first" / "model"


def test_listing_and_resolving_import_no_torch(tiny_models_dir):
    """Listing models for a menu must stay cheap: no torch, no diffusers."""
    script = f"""
import sys
from pathlib import Path
from inlayer.core.model_files import ModelCatalog
from inlayer.core.client.protocol import Mode

catalog = ModelCatalog([Path({str(tiny_models_dir)!r})])
names = [info.name for info in catalog.list()]
single = catalog.resolve({TINY_SD15_SINGLE!r})
print(names, single.family, catalog.default_for(Mode.INPAINT))
heavy = sorted(name for name in ("torch", "diffusers", "transformers") if name in sys.modules)
assert not heavy, heavy
"""
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert TINY_SD15 in completed.stdout and "sd15" in completed.stdout
    assert TINY_SD15_INPAINTING in completed.stdout
