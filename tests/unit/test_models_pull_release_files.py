"""`inlayer models pull` of a model published only as a pickled `.pth` on its project's release
page (GFPGAN, CodeFormer): the published file, checked against its pinned SHA-256, read by
torch's weights-only unpickler and kept as `.safetensors`; nothing pickled stays behind.

The release page is played by the stand-in on 127.0.0.1 (tests/fixtures/hub.py), which
redirects a release asset to its file as GitHub does. The published file is a random-weight
RestoreFormer (a face restorer of spandrel's, at toy size) pickled the way GFPGAN's and
CodeFormer's makers pickle theirs: the tensors under "params_ema".
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from inlayer.core.cli import main
from inlayer.core.image_models import load_image_model
from inlayer.core.model_files import (
    FACE_RESTORERS,
    SUBJECT_SEGMENTERS,
    ModelFileKind,
    find_model_files,
)
from inlayer.packaging import cli as packaging_cli
from inlayer.packaging import release_files
from inlayer.packaging.cli import KnownModel
from inlayer.packaging.release_files import ReleaseFile
from tests.fixtures.hub import HubRepo, stand_in_hub
from tests.fixtures.image_models import (
    build_tiny_esrgan,
    build_tiny_restoreformer,
    write_stand_in_subject_segmenter,
)

PROJECT = "someone/restorer"
PUBLISHED = "RestoreFormer.pth"
NAME = "tiny-restorer"


def pickled(state: dict) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"params_ema": state}, buffer)
    return buffer.getvalue()


@dataclass
class Release:
    repo: HubRepo
    published: bytes
    models: Path  # the first models folder, where the pull writes
    target: Path
    kind: ModelFileKind

    def listed(self) -> list[str]:
        return [found.name for found in find_model_files([self.models], self.kind)]

    def leftovers(self) -> list[str]:
        folder = self.target.parent
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@contextmanager
def publish(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    published: bytes,
    *,
    pinned: bytes,
    filename: str = PUBLISHED,
    kind: ModelFileKind = FACE_RESTORERS,
) -> Iterator[Release]:
    """Serve `published` as the release asset `filename` of a known model whose pinned SHA-256
    and size are those of `pinned`: a pickled face restorer, or a file kept as published."""
    repo = HubRepo(PROJECT, {filename: published})
    pickled = filename.endswith(".pth")
    release = ReleaseFile(
        PROJECT,
        "v1.0",
        filename,
        size=len(pinned),
        sha256=hashlib.sha256(pinned).hexdigest(),
        pickled_purpose="FaceSR" if pickled else None,
        modules=("spandrel",) if pickled else ("onnxruntime",),
    )
    known = KnownModel(PROJECT, "a published model", (), kind=kind, release=release)
    monkeypatch.setitem(packaging_cli.KNOWN_MODELS, NAME, known)
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("INLAYER_MODELS_DIRS", str(tmp_path / "models"))
    with stand_in_hub(repo) as endpoint:
        monkeypatch.setattr(release_files, "RELEASES_HOST", endpoint)
        models = tmp_path / "models"
        target = models / kind.subfolder / f"{NAME}{known.file_suffix}"
        yield Release(repo, published, models, target, kind)


@pytest.fixture(scope="module")
def restorer_state() -> dict:
    return build_tiny_restoreformer(seed=3).state_dict()


@pytest.fixture
def release(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, restorer_state: dict
) -> Iterator[Release]:
    published = pickled(restorer_state)
    with publish(monkeypatch, tmp_path, published, pinned=published) as serving:
        yield serving


def test_the_published_pickle_is_kept_as_safetensors_and_loads_without_pickle(
    release: Release, restorer_state: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "pull", NAME]) == 0
    out = capsys.readouterr().out
    assert f"Downloading {release_files.RELEASES_HOST}/{PROJECT}/releases/download/" in out
    assert "100 % of" in out
    assert f"Use it as face restorer (restore's --faces) {NAME!r}" in out
    # Only the safetensors file is left: neither the pickle nor a hidden part of it.
    assert release.leftovers() == [f"{NAME}.safetensors"]
    assert release.listed() == [NAME]

    model = load_image_model(
        release.target, field="restore_faces", purposes=("FaceSR",), allow_pickle=False
    )
    assert model.architecture == "RestoreFormer"
    import torch
    from safetensors import safe_open

    with safe_open(str(release.target), framework="pt") as kept:
        assert kept.metadata()["source_sha256"] == hashlib.sha256(release.published).hexdigest()
        for key, tensor in restorer_state.items():
            assert torch.equal(kept.get_tensor(key), tensor), key

    # Asked again, it is there already and nothing is downloaded.
    downloads = len(release.repo.downloads)
    assert main(["models", "pull", NAME]) == 0
    assert "is already there" in capsys.readouterr().out
    assert len(release.repo.downloads) == downloads


def test_a_dropped_download_is_kept_hidden_and_the_next_pull_goes_on_from_there(
    release: Release, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = len(release.published) // 3
    release.repo.cut_after[PUBLISHED] = [cut]

    assert main(["models", "pull", NAME]) == 1
    err = capsys.readouterr().err
    assert f"broke off after {cut} of {len(release.published)} bytes" in err
    assert f"Run `inlayer models pull {NAME}` again" in err
    assert not release.target.exists()
    assert release.listed() == []  # the part is hidden: nobody's model

    assert main(["models", "pull", NAME]) == 0
    assert release.repo.starts == [0, cut]  # the second request asked for the rest only
    assert release.leftovers() == [f"{NAME}.safetensors"]


def test_a_file_that_is_not_the_published_one_is_deleted_and_named(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    restorer_state: dict,
    capsys: pytest.CaptureFixture[str],
) -> None:
    genuine = pickled(restorer_state)
    tampered = bytearray(genuine)
    tampered[-100] ^= 0xFF  # same size, one byte changed
    with publish(monkeypatch, tmp_path, bytes(tampered), pinned=genuine) as release:
        assert main(["models", "pull", NAME]) == 1
        err = capsys.readouterr().err
        assert "is not the published one" in err
        assert hashlib.sha256(genuine).hexdigest() in err
        assert release.leftovers() == []  # the impostor is gone, nothing is listed


def test_a_published_pickle_that_would_run_code_is_refused_by_the_weights_only_reader(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "code-ran"

    class RunsCode:
        def __reduce__(self):
            return (Path.touch, (marker,))

    import torch

    buffer = io.BytesIO()
    torch.save({"params_ema": RunsCode()}, buffer)
    hostile = buffer.getvalue()
    # Even a file that matched its pin (a hostile release) only gets tensors built from it.
    with publish(monkeypatch, tmp_path, hostile, pinned=hostile) as release:
        assert main(["models", "pull", NAME]) == 1
        err = capsys.readouterr().err
        assert "cannot convert" in err
        assert "Weights only load failed" in err
        assert not marker.exists()
        assert not release.target.exists()


def test_a_published_file_of_another_purpose_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upscaler = pickled(build_tiny_esrgan().state_dict())
    with publish(monkeypatch, tmp_path, upscaler, pinned=upscaler) as release:
        assert main(["models", "pull", NAME]) == 1
        err = capsys.readouterr().err
        assert "is an upscaler (ESRGAN), not a face restorer" in err
        assert release.listed() == []
        # The checked download stays (hidden), so that nothing is fetched twice.
        assert release.leftovers() == [f".{NAME}.download.pth"]


def test_a_copy_another_tool_downloaded_is_converted_instead_of_downloading(
    release: Release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    comfyui = tmp_path / "ComfyUI"
    theirs = comfyui / "models" / "facerestore_models" / PUBLISHED
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(release.published)
    monkeypatch.setenv("INLAYER_COMFYUI_DIR", str(comfyui))

    assert main(["models", "pull", NAME]) == 0
    assert release.repo.downloads == []
    assert release.leftovers() == [f"{NAME}.safetensors"]
    assert theirs.read_bytes() == release.published  # their copy stays as it was


def test_a_missing_extra_is_said_before_anything_is_downloaded(
    release: Release, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "spandrel", None)  # as if inlayer[restore] were absent
    assert main(["models", "pull", NAME]) == 1
    assert 'pip install "inlayer[restore]"' in capsys.readouterr().err
    assert release.repo.downloads == []
    assert release.leftovers() == []


def test_codeformer_asks_for_the_extra_that_loads_it(
    release: Release, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "spandrel_extra_arches", None)
    assert main(["models", "pull", "codeformer"]) == 1
    assert 'pip install "inlayer[restore-extra]"' in capsys.readouterr().err


@pytest.mark.parametrize("model", ["gfpgan", "codeformer"])
def test_the_published_architectures_convert_and_weigh_what_the_pins_say(
    model: str, tmp_path: Path
) -> None:
    """GFPGAN v1.4 and CodeFormer at their published sizes (random weights, spandrel's and
    spandrel-extra-arches' classes), pickled as their makers pickle them."""
    import dataclasses

    import torch
    from spandrel_extra_arches.architectures.CodeFormer import CodeFormer

    from tests.fixtures.image_models import build_gfpgan

    release = packaging_cli.KNOWN_MODELS[model].release
    assert release is not None
    module = build_gfpgan() if model == "gfpgan" else CodeFormer()
    published = tmp_path / f".{model}.download.pth"
    torch.save({"params_ema": module.state_dict()}, published)
    # The same tensors pickled weigh what the published file weighs, to within its pickle's
    # own bookkeeping: the pin names the architecture built here.
    assert abs(published.stat().st_size - release.size) < release.size / 1000
    local = dataclasses.replace(
        release,
        size=published.stat().st_size,
        sha256=release_files.sha256_of(published),
    )
    target = tmp_path / f"{model}.safetensors"
    expected = "GFPGAN" if model == "gfpgan" else "CodeFormer"
    assert release_files.convert(local, published, target) == expected
    loaded = load_image_model(
        target, field="restore_faces", purposes=("FaceSR",), allow_pickle=False
    )
    assert loaded.architecture == expected


def test_a_published_onnx_file_is_kept_as_published(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A subject segmenter, as rembg publishes IS-Net and BiRefNet: checked, kept byte for
    byte, and a copy already in a rembg/ folder (ComfyUI's here) is used as it is."""
    segmenter = write_stand_in_subject_segmenter(tmp_path / "made" / "segmenter.onnx", 32)
    published = segmenter.read_bytes()
    onnx = "segmenter.onnx"
    with publish(
        monkeypatch, tmp_path, published, pinned=published, filename=onnx, kind=SUBJECT_SEGMENTERS
    ) as release:
        assert release.target == tmp_path / "models" / "rembg" / f"{NAME}.onnx"
        assert main(["models", "pull", NAME]) == 0
        assert "Use it as segmenter (select's --segmenter)" in capsys.readouterr().out
        assert release.target.read_bytes() == published
        assert release.leftovers() == [f"{NAME}.onnx"]

        theirs = tmp_path / "ComfyUI" / "models" / "rembg" / onnx
        theirs.parent.mkdir(parents=True)
        theirs.write_bytes(published)
        monkeypatch.setenv("INLAYER_COMFYUI_DIR", str(tmp_path / "ComfyUI"))
        release.target.unlink()
        assert main(["models", "pull", NAME]) == 0
        assert f"is already there: {theirs}" in capsys.readouterr().out
        assert len(release.repo.downloads) == 1  # the first pull's only
