"""The archives a user installs without a terminal, in real GIMP 3.0 / 3.2 and Krita 5.2 / 6.0.

`inlayer install-plugins --archives DIR` writes both zips. GIMP's is unpacked into a clean
profile's plug-ins folder, as an archive manager does (twice: unpacking an update over the old
folder), then GIMP runs an edit with it. Krita's is imported into a clean resource folder by
Krita's own importer (the code behind Tools > Scripts > Import Python Plugin from File...),
first an older build carrying a file this version no longer has, then this one over it, in one
Krita launch; the next launch loads the plug-in and runs an edit with it.
"""

from __future__ import annotations

import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from inlayer.core.client import __version__
from inlayer.packaging.plugins import KRITA_PLUGIN_NAME, archive_names, build_archives
from tests.editors.chroot import ChrootWorkspace
from tests.editors.test_gimp import RUN, assert_added_above_source, run_gimp_session, scenario
from tests.editors.test_krita import launch_krita
from tests.fixtures.models import TINY_SD15_INPAINTING

if TYPE_CHECKING:
    from tests.fixtures.server import ServerProcess

pytestmark = pytest.mark.editors

CHECK_EXTENSION = Path(__file__).with_name("krita_archive_check.py")
CHECK_PLUGIN = "inlayer_archive_check"
KRITA_TIMEOUT = 240
STALE_FILE = f"{KRITA_PLUGIN_NAME}/from_an_older_version.py"


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("archives")
    build_archives(folder)
    gimp_name, krita_name = archive_names(__version__)
    return {"gimp": folder / gimp_name, "krita": folder / krita_name}


def unpack(archive: Path, folder: Path) -> None:
    """As archive managers on Linux and macOS do: the files, with the Unix modes stored."""
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(folder)
        for info in opened.infolist():
            if not info.is_dir():
                (folder / info.filename).chmod(info.external_attr >> 16 & 0o777)


def new_workspace(chroot_root: Path, prefix: str) -> ChrootWorkspace:
    workspace = ChrootWorkspace(chroot_root, Path("/tmp") / f"{prefix}-{uuid.uuid4().hex[:10]}")
    workspace.host_dir.mkdir(parents=True)
    return workspace


# --------------------------------------------------------------------------------------------
# GIMP
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gimp_from_archive(
    chroot_root: Path, archives: dict[str, Path], inlayer_server: ServerProcess
) -> Iterator[dict]:
    workspace = new_workspace(chroot_root, "inlayer-gimp-zip")
    try:
        workspace.host_path("config").mkdir()
        plug_ins = workspace.host_path("profile", "plug-ins")
        plug_ins.mkdir(parents=True)
        unpack(archives["gimp"], plug_ins)
        unpack(archives["gimp"], plug_ins)  # an update unpacked over the installed folder
        good = {"url": inlayer_server.url, "token": inlayer_server.token}
        image = {
            "width": 64,
            "height": 48,
            "layer": {"x": 0, "y": 0, "width": 64, "height": 48},
            "selection": {"rect": [16, 12, 24, 20]},
        }
        args = {**RUN, "prompt": "a stone", "model": TINY_SD15_INPAINTING}
        scenarios = [
            {
                "name": "inpaint",
                "server": good,
                "image": image,
                "procedure": "inlayer-inpaint",
                "args": args,
            },
            {"name": "fill", "server": good, "image": image, "procedure": "inlayer-fill"},
        ]
        yield run_gimp_session(workspace, scenarios)
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


@pytest.mark.parametrize("name", ["inpaint", "fill"])
def test_gimp_archive_unpacked_into_a_clean_profile_runs_an_edit(
    gimp_from_archive: dict, name: str
) -> None:
    seen = scenario(gimp_from_archive, name)
    assert_added_above_source(seen, count=1)
    assert seen["results"][0]["parasite"]["mode"] == name


# --------------------------------------------------------------------------------------------
# Krita
# --------------------------------------------------------------------------------------------


def older_build(archive: Path, output: Path) -> Path:
    """The same archive with one more file, as an older Inlayer might have carried."""
    with zipfile.ZipFile(archive) as current, zipfile.ZipFile(output, "w") as older:
        for info in current.infolist():
            older.writestr(info, current.read(info))
        older.writestr(STALE_FILE, "raise ImportError('an older Inlayer module')\n")
    return output


def run_krita(workspace: ChrootWorkspace, plan: dict[str, Any]) -> dict[str, Any]:
    return launch_krita(workspace, "INLAYER_KRITA_ARCHIVE_TEST", plan, timeout=KRITA_TIMEOUT)


@pytest.fixture(scope="module")
def krita_from_archive(
    chroot_root: Path, archives: dict[str, Path], inlayer_server: ServerProcess
) -> Iterator[dict[str, Any]]:
    """Two Krita launches on one clean HOME: the import, then an edit."""
    workspace = new_workspace(chroot_root, "inlayer-krita-zip")
    try:
        pykrita = workspace.host_path(".local", "share", "krita", "pykrita")
        (pykrita / CHECK_PLUGIN).mkdir(parents=True)
        shutil.copy(CHECK_EXTENSION, pykrita / CHECK_PLUGIN / "__init__.py")
        (pykrita / f"{CHECK_PLUGIN}.desktop").write_text(
            "[Desktop Entry]\nType=Service\nServiceTypes=Krita/PythonPlugin\n"
            f"X-KDE-Library={CHECK_PLUGIN}\nX-Python-2-Compatible=false\nName=Archive check\n"
        )
        workspace.host_path(".config").mkdir()
        workspace.host_path(".config", "kritarc").write_text(
            f"[python]\nenable_{CHECK_PLUGIN}=true\n"
        )
        config = workspace.host_path("inlayer-config")
        config.mkdir()
        for name in ("token", "server.json"):
            shutil.copy(inlayer_server.config_dir / name, config / name)
        workspace.host_path("run").mkdir(mode=0o700)
        older = older_build(archives["krita"], workspace.host_path("older.zip"))
        current = shutil.copy(archives["krita"], workspace.host_path("current.zip"))
        imported = run_krita(
            workspace,
            {
                "stage": "import",
                "archives": [workspace.inside(older.name), workspace.inside(Path(current).name)],
            },
        )
        stale_left = (pykrita / STALE_FILE).exists()
        edited = run_krita(workspace, {"stage": "edit", "model": TINY_SD15_INPAINTING})
        yield {"import": imported, "stale_left": stale_left, "edit": edited, "pykrita": pykrita}
    finally:
        shutil.rmtree(workspace.host_dir, ignore_errors=True)


def test_krita_imports_the_archive_over_an_older_one_cleanly(
    krita_from_archive: dict[str, Any],
) -> None:
    imported = krita_from_archive["import"]
    assert "crash" not in imported, imported.get("crash")
    assert imported["imported"] == [KRITA_PLUGIN_NAME, KRITA_PLUGIN_NAME]
    assert imported["overwrite_asked"] == [KRITA_PLUGIN_NAME], "Krita asks before replacing"
    assert not krita_from_archive["stale_left"], "the older version's files are gone"


def test_krita_loads_the_imported_plugin_and_runs_an_edit(
    krita_from_archive: dict[str, Any],
) -> None:
    edited = krita_from_archive["edit"]
    assert "crash" not in edited, edited.get("crash")
    assert edited["plugin_loaded"], "Krita loaded the plug-in the import enabled"
    assert edited["loaded_from"].endswith(f"pykrita/{KRITA_PLUGIN_NAME}")
    expected_binding = "PyQt6" if edited["krita"].startswith("6.") else "PyQt5"
    assert edited["binding"] == expected_binding
    assert edited["docker_registered"]
    assert len(edited["new_layers"]) == 1 and "a stone" in edited["new_layers"][0]
    assert edited["layer_names"][-1] == edited["new_layers"][0], "the result is on top"
    assert edited["source_unchanged"]
