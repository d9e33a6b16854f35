"""Run real GIMP 3 and Krita 5.2 inside the Debian 13 chroot built by build_chroot.sh.

The editors live in the chroot; Inlayer's server runs outside it, on the host's loopback, which
the chroot shares. Files are exchanged through a scratch folder under the chroot's /tmp:
`ChrootWorkspace.host_path(...)` is where the host sees it, `inside(...)` where the editor does.

Tests using these fixtures are skipped (with the reason) when INLAYER_CHROOT is unset or the
process is not root; tests/run.sh builds the chroot and sets the variable.
"""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def chroot_root() -> Iterator[Path]:
    root = os.environ.get("INLAYER_CHROOT")
    if not root:
        pytest.skip("INLAYER_CHROOT is not set: run tests/run.sh as root to build the chroot")
    if os.geteuid() != 0:
        pytest.skip("the real-editor tests need root (chroot and mount)")
    path = Path(root)
    if not (path / ".inlayer-ready").exists():
        pytest.skip(f"{path} is not a finished chroot: rerun tests/editors/build_chroot.sh")
    mounted = _mount_editor_filesystems(path)
    try:
        yield path
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def chroot_workspace(chroot_root: Path) -> Iterator[ChrootWorkspace]:
    """A fresh scratch folder inside the chroot, removed after the test."""
    workspace = ChrootWorkspace(chroot_root, Path("/tmp") / f"inlayer-test-{uuid.uuid4().hex[:10]}")
    workspace.host_dir.mkdir(parents=True)
    try:
        yield workspace
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)
