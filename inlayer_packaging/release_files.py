"""Models published as files on their project's release page rather than on the Hugging Face
Hub, for `inlayer models pull`: the face restorers GFPGAN and CodeFormer (pickled `.pth` files)
and the subject segmenters IS-Net and BiRefNet (ONNX files, as rembg publishes them).

Each file's size and SHA-256 are pinned here. The pull takes the file (from the release, or a
copy another tool already has), checks that it is byte for byte the published one, and keeps it.

Unpickling can run code, so Inlayer loads pickled weights only with `allow_pickle`. The pickled
files here need no opt-in, because the pull keeps none of them: it reads the checked file with
torch's weights-only unpickler, checks with spandrel that it is the model it should be, and
writes its tensors as `.safetensors`. What Inlayer then loads is a safetensors file like any
other.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import importlib
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inlayer.core.client import __version__
from inlayer.core.model_files import ModelFileKind, find_model_files

# Where the projects publish their releases; a test points it at a stand-in on 127.0.0.1.
RELEASES_HOST = "https://github.com"
CHUNK = 1 << 20
READ_TIMEOUT_S = 60


@dataclass(frozen=True)
class ReleaseFile:
    """One published file: where it is, what it must be, and what it needs."""

    project: str  # owner/name on the releases host
    tag: str
    filename: str
    size: int  # bytes
    sha256: str
    # A pickled file: spandrel's purpose its model must have ("FaceSR": a face restorer); its
    # tensors are kept as .safetensors. None: the file is kept as published.
    pickled_purpose: str | None = None
    # Other names the same file goes by in other tools' folders (ComfyUI's, AUTOMATIC1111's).
    other_names: tuple[str, ...] = ()
    extra: str = "restore"  # the inlayer extra that loads it
    modules: tuple[str, ...] = ("spandrel",)  # what that extra brings, checked beforehand

    @property
    def url(self) -> str:
        return f"{RELEASES_HOST}/{self.project}/releases/download/{self.tag}/{self.filename}"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.filename, *self.other_names)


class ReleaseError(Exception):
    """The pull cannot go on; the message says why and what to do."""


def missing_extra(release: ReleaseFile) -> str | None:
    """The extra to install before `release` can be used, if it is missing: said before a
    download of hundreds of megabytes, not after."""
    for module in release.modules:
        try:
            importlib.import_module(module)
        except ImportError:
            return release.extra
    return None


def find_published_copy(
    release: ReleaseFile,
    kind: ModelFileKind,
    models_dirs: Sequence[Path],
    tool_dirs: Sequence[Path],
) -> Path | None:
    """A file already in a folder of `kind` (put there by hand or by another tool) that is the
    published one: the same name, size and SHA-256."""
    for found in find_model_files(models_dirs, kind, tool_dirs):
        path = found.path
        if (
            path.name in release.names
            and path.is_file()
            and path.stat().st_size == release.size
            and sha256_of(path) == release.sha256
        ):
            return path
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(release: ReleaseFile, destination: Path, progress: Callable[[int, int], None]) -> None:
    """`release` into `destination`, going on from the bytes a broken-off try left there
    (they are kept when it breaks off again); checked against the pinned size and SHA-256 (a
    file that is not the published one is deleted). `progress(bytes so far, total)` is called
    as bytes arrive."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    have = destination.stat().st_size if destination.exists() else 0
    if have > release.size:  # not a beginning of the published file: start afresh
        destination.unlink()
        have = 0
    if have < release.size:
        headers = {"User-Agent": f"inlayer/{__version__}"}
        if have:
            headers["Range"] = f"bytes={have}-"
        request = urllib.request.Request(release.url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=READ_TIMEOUT_S) as response:
                if have and response.status != 206:  # the server sends the whole file again
                    have = 0
                with destination.open("ab" if have else "wb") as out:
                    # More than the published size is another file: the check below says so.
                    while have <= release.size and (chunk := response.read(CHUNK)):
                        out.write(chunk)
                        have += len(chunk)
                        progress(min(have, release.size), release.size)
        except urllib.error.HTTPError as error:
            raise ReleaseError(f"{release.url} answered {error.code} {error.reason}") from None
        except (OSError, http.client.HTTPException) as error:
            if getattr(error, "errno", None) == errno.ENOSPC:
                raise ReleaseError(
                    f"the disk holding {destination.parent} is full; free some space"
                ) from None
            if isinstance(error, urllib.error.URLError):  # no connection at all
                raise ReleaseError(f"cannot reach {release.url}: {error.reason}") from None
            raise ReleaseError(
                f"the download of {release.url} broke off after {have} of {release.size} "
                f"bytes ({type(error).__name__}: {error})"
            ) from None
        if have < release.size:
            raise ReleaseError(
                f"the download of {release.url} broke off after {have} of {release.size} bytes"
            )
    checksum = sha256_of(destination)
    if destination.stat().st_size != release.size or checksum != release.sha256:
        destination.unlink()
        raise ReleaseError(
            f"the file downloaded from {release.url} is not the published one (SHA-256 "
            f"{checksum}, expected {release.sha256}); it was deleted"
        )


def convert(release: ReleaseFile, published: Path, target: Path) -> str:
    """The tensors of the pickled file `published` (checked beforehand) as `target`
    (.safetensors), through spandrel so that the file holds the model it should; returns the
    architecture's name."""
    from safetensors.torch import save_file

    from inlayer.core.client.protocol import InvalidRequest, ModelLoadError
    from inlayer.core.image_models import load_image_model

    assert release.pickled_purpose is not None  # only pickled files are converted
    purpose = release.pickled_purpose
    field = f"the file {published.name}"
    try:
        # The SHA-256 is checked, and torch's weights-only unpickler builds tensors only.
        model = load_image_model(published, field=field, purposes=(purpose,), allow_pickle=True)
    except (InvalidRequest, ModelLoadError) as error:
        raise ReleaseError(str(error)) from None
    state = model.descriptor.model.state_dict()
    staging = target.with_name(f".{target.stem}.converting{target.suffix}")  # hidden: unlisted
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {key: value.contiguous() for key, value in state.items()},
        str(staging),
        metadata={"source": release.url, "source_sha256": release.sha256},
    )
    # The written file must load the way every run loads it: without pickle.
    try:
        load_image_model(staging, field=field, purposes=(purpose,), allow_pickle=False)
    except (InvalidRequest, ModelLoadError) as error:
        staging.unlink()
        raise ReleaseError(f"the converted {target.name} does not load: {error}") from None
    os.replace(staging, target)
    return model.architecture


class ProgressLine:
    """How far a download is: a percentage on one line where the output is a terminal, else
    a line at every tenth."""

    def __init__(self) -> None:
        self.tenths_shown = -1

    def __call__(self, have: int, total: int) -> None:
        percent = 100 * have // total
        size = f"{percent:3d} % of {total / 1e6:.0f} MB"
        if sys.stdout.isatty():
            print(f"\r  {size}", end="" if have < total else "\n", flush=True)
        elif percent // 10 > self.tenths_shown:
            self.tenths_shown = percent // 10
            print(f"  {size}", flush=True)
