"""Run real GIMP 3 and Krita inside the Debian chroots built by build_chroot.sh.

Two generations of editors are tested, each in its own chroot: Debian 13 (GIMP 3.0, Krita 5.2
with PyQt5) and sid with experimental's Krita (GIMP 3.2, Krita 6.0 with PyQt6).
`INLAYER_CHROOTS` lists them as `generation=path` pairs separated by spaces (tests/run.sh sets
it); `INLAYER_CHROOT=path` alone names one. Every editor test runs once per chroot, and its id
names the editor versions found there (`gimp-3.2.6-krita-6.0.4`), so each result in pytest's
report says which editors it was obtained with.

The editors live in the chroot; Inlayer's server runs outside it, on the host's loopback, which
the chroot shares. Files are exchanged through a scratch folder under the chroot's /tmp:
`ChrootWorkspace.host_path(...)` is where the host sees it, `inside(...)` where the editor does.

Tests using these fixtures are skipped (with the reason) when no chroot is named or the process
is not root; tests/run.sh builds the chroots and names them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

# Mounted for the editors: /proc (GLib and Qt read it), /dev and /dev/pts (Xvfb, ptys), /dev/shm
# (Qt's shared memory) and /sys (GIO probes it).
_BIND_MOUNTS = ("dev", "dev/pts", "sys")


@dataclass(frozen=True)
class ChrootWorkspace:
    root: Path  # the chroot on the host
    inside_dir: Path  # the scratch folder as the editor sees it (absolute, inside the chroot)

    @property
    def host_dir(self) -> Path:
        return self.root / self.inside_dir.relative_to("/")

    def host_path(self, *parts: str) -> Path:
        return self.host_dir.joinpath(*parts)

    def inside(self, *parts: str) -> str:
        return str(self.inside_dir.joinpath(*parts))

    def run(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `args` inside the chroot with HOME in the workspace and a clean environment."""
        return run_in_chroot(
            self.root,
            args,
            env={"HOME": self.inside(), **(env or {})},
            timeout=timeout,
            stdin=stdin,
        )


def run_in_chroot(
    root: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    base_env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HF_HUB_OFFLINE": "1",
    }
    command = ["chroot", str(root), "env", "-i"]
    command += [f"{key}={value}" for key, value in {**base_env, **(env or {})}.items()]
    command += list(args)
    return subprocess.run(command, input=stdin, capture_output=True, timeout=timeout, check=False)


def _mount_editor_filesystems(root: Path) -> list[Path]:
    """Mount what the editors need; return what this call mounted (to unmount it later)."""
    mounted: list[Path] = []
    proc = root / "proc"
    if not os.path.ismount(proc):
        subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
        mounted.append(proc)
    for name in _BIND_MOUNTS:
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(target):
            subprocess.run(["mount", "--bind", f"/{name}", str(target)], check=True)
            mounted.append(target)
    return mounted


@dataclass(frozen=True)
class EditorChroot:
    generation: str  # "trixie", "sid" (build_chroot.sh's argument), or "chroot" when unnamed
    root: Path

    def package_version(self, package: str) -> str | None:
        """The upstream version of an installed Debian package ("1:6.0.4.1+dfsg-1" gives
        "6.0.4"), read from the chroot's dpkg database (no need to enter the chroot)."""
        status = self.root / "var" / "lib" / "dpkg" / "status"
        if not status.is_file():
            return None
        for stanza in status.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            if re.search(rf"^Package: {re.escape(package)}$", stanza, re.MULTILINE):
                found = re.search(r"^Version: (?:\d+:)?(\d+(?:\.\d+){0,2})", stanza, re.MULTILINE)
                return found.group(1) if found else None
        return None

    @property
    def editors(self) -> str:
        """The editor versions, as the test ids show them."""
        gimp, krita = self.package_version("gimp"), self.package_version("krita")
        return f"gimp-{gimp or 'missing'}-krita-{krita or 'missing'}"


def editor_chroots() -> list[EditorChroot]:
    """The chroots the environment names: INLAYER_CHROOTS, else INLAYER_CHROOT."""
    pairs = os.environ.get("INLAYER_CHROOTS", "").split()
    if pairs:
        chroots = []
        for pair in pairs:
            generation, separator, path = pair.partition("=")
            if not separator or not path:
                raise ValueError(f"INLAYER_CHROOTS: '{pair}' is not generation=path")
            chroots.append(EditorChroot(generation, Path(path)))
        return chroots
    single = os.environ.get("INLAYER_CHROOT")
    return [EditorChroot("chroot", Path(single))] if single else []


def _chroot_params() -> list[object]:
    chroots = editor_chroots()
    if not chroots:
        return [pytest.param(None, id="no-editors")]
    return [pytest.param(chroot, id=chroot.editors) for chroot in chroots]


def pytest_report_header() -> list[str]:
    return [
        f"editor chroot {chroot.generation}: {chroot.editors} ({chroot.root})"
        for chroot in editor_chroots()
    ]


@pytest.fixture(scope="session", params=_chroot_params())
def editor_chroot(request: pytest.FixtureRequest) -> Iterator[EditorChroot]:
    """Each chroot in turn, mounted for the editors; the editor tests run once per chroot."""
    chroot: EditorChroot | None = request.param
    if chroot is None:
        pytest.skip("no editors' chroot: run tests/run.sh as root to build them (INLAYER_CHROOTS)")
    if os.geteuid() != 0:
        pytest.skip("the real-editor tests need root (chroot and mount)")
    if not (chroot.root / ".inlayer-ready").exists():
        pytest.skip(f"{chroot.root} is not a finished chroot: rerun tests/editors/build_chroot.sh")
    with mounted_for_editors(chroot.root):
        yield chroot


@contextlib.contextmanager
def mounted_for_editors(root: Path) -> Iterator[None]:
    """The chroot at `root` with what the editors need mounted, unmounted after."""
    mounted = _mount_editor_filesystems(root)
    try:
        yield
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture(scope="session")
def chroot_root(editor_chroot: EditorChroot) -> Path:
    return editor_chroot.root


@pytest.fixture
def chroot_workspace(chroot_root: Path) -> Iterator[ChrootWorkspace]:
    """A fresh scratch folder inside the chroot, removed after the test."""
    workspace = ChrootWorkspace(chroot_root, Path("/tmp") / f"inlayer-test-{uuid.uuid4().hex[:10]}")
    workspace.host_dir.mkdir(parents=True)
    try:
        yield workspace
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)
