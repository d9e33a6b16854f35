"""`inlayer models pull` when the download breaks: a dropped connection, a full disk. Nothing
half-written is ever listed as a model; running the command again completes the download,
keeping the files that were already whole.

The Hugging Face Hub is played by a stand-in on 127.0.0.1 (tests/fixtures/hub.py), serving a
real tiny diffusers model; `huggingface_hub` downloads from it as from the hub.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants as hub_constants

from inlayer.core.cli import main
from inlayer.core.models import ModelRegistry
from inlayer.packaging.cli import staging_folder
from tests.fixtures.hub import HubRepo, stand_in_hub

REPO_ID = "someone/tiny-model"


@pytest.fixture
def hub(
    tiny_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HubRepo]:
    model = tiny_models_dir / "tiny-sd15"
    files = {
        path.relative_to(model).as_posix(): path.read_bytes()
        for path in sorted(model.rglob("*"))
        if path.is_file()
    }
    repo = HubRepo(REPO_ID, files)
    with stand_in_hub(repo) as endpoint:
        # huggingface_hub reads its environment once, on import: set what it read.
        monkeypatch.setattr(hub_constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(
            hub_constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hub_constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
        monkeypatch.setenv("INLAYER_MODELS_DIRS", str(tmp_path / "models"))
        yield repo


def weights(repo: HubRepo) -> str:
    return next(name for name in repo.files if name.startswith("unet/") and "safetensors" in name)


def listed(models_dir: Path) -> list[str]:
    return [model.name for model in ModelRegistry([models_dir]).list()]


def test_a_dropped_connection_leaves_no_model_and_the_next_pull_completes(
    hub: HubRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models, target = tmp_path / "models", tmp_path / "models" / "tiny-model"
    # The connection drops part-way through the UNet's weights, for every retry of this pull.
    hub.cut_after[weights(hub)] = [len(hub.files[weights(hub)]) // 3] * 20

    assert main(["models", "pull", REPO_ID]) == 1
    err = capsys.readouterr().err
    assert f"the download of {REPO_ID} broke off" in err
    assert f"Run `inlayer models pull {REPO_ID}` again" in err
    assert not target.exists()
    assert listed(models) == []  # the half-written copy is nobody's model

    whole_before = set(hub.downloads) - {weights(hub)}
    hub.cut_after.clear()  # the connection holds again
    hub.downloads.clear()
    assert main(["models", "pull", REPO_ID]) == 0
    assert weights(hub) in hub.downloads
    assert not whole_before & set(hub.downloads)  # the files already whole were kept
    assert listed(models) == ["tiny-model"]
    for name, data in hub.files.items():
        assert (target / name).read_bytes() == data
    assert not staging_folder(target).exists()
    assert not (target / ".cache").exists()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A models folder on a 64 KiB file system: a real full disk (ENOSPC), for root only."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a small tmpfs needs root: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_is_named_and_leaves_no_model(
    hub: HubRepo,
    full_disk: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("INLAYER_MODELS_DIRS", str(full_disk))
    assert main(["models", "pull", REPO_ID]) == 1
    err = capsys.readouterr().err
    assert f"the disk holding {full_disk} is full; free some space" in err
    assert listed(full_disk) == []
    assert not (full_disk / "tiny-model").exists()
