"""The plug-in installer against temporary profile folders laid out like each platform's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from inlayer.packaging import plugins
from inlayer.packaging.plugins import (
    CLIENT_PACKAGE,
    KRITA_PLUGIN_NAME,
    UserHost,
)
from tests.editors.chroot import editor_chroots

# (platform, GIMP profiles parent, Krita resource folder, kritarc), relative to the home folder,
# with the environment variables that point there set as each platform sets them.
LAYOUTS = {
    "linux": ("linux", ".config/GIMP", ".local/share/krita", ".config/kritarc"),
    "flatpak": (
        "linux",
        ".var/app/org.gimp.GIMP/config/GIMP",
        ".var/app/org.kde.krita/data/krita",
        ".var/app/org.kde.krita/config/kritarc",
    ),
    "windows": ("win32", "AppData/Roaming/GIMP", "AppData/Roaming/krita", "AppData/Local/kritarc"),
    "macos": (
        "darwin",
        "Library/Application Support/GIMP",
        "Library/Application Support/krita",
        "Library/Preferences/kritarc",
    ),
}

KRITARC = """\
[General]
ShowSplash=false

[python]
enable_comics_project_management_tools=true
enable_inlayer_krita=false

[MainWindow]
State=AAAA/wAAAAD9
"""


def host_for(platform: str, home: Path) -> UserHost:
    env = {}
    if platform == "win32":
        env = {
            "APPDATA": str(home / "AppData/Roaming"),
            "LOCALAPPDATA": str(home / "AppData/Local"),
        }
    return UserHost(platform, home, env)


def installed_files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("layout", LAYOUTS)
def test_finds_every_versioned_gimp_profile_and_krita_folder(tmp_path, layout):
    platform, gimp_parent, krita_dir, kritarc = LAYOUTS[layout]
    for version in ("3.0", "3.2", "2.10", "backup"):
        (tmp_path / gimp_parent / version).mkdir(parents=True)
    (tmp_path / krita_dir).mkdir(parents=True)
    host = host_for(platform, tmp_path)

    assert plugins.find_gimp_profiles(host) == [
        tmp_path / gimp_parent / "3.0",
        tmp_path / gimp_parent / "3.2",
    ]
    assert plugins.find_krita_locations(host) == [
        plugins.KritaLocation(tmp_path / krita_dir, tmp_path / kritarc)
    ]
    assert plugins.kritarc_for(tmp_path / krita_dir, host) == tmp_path / kritarc


def test_finds_nothing_where_no_editor_ran(tmp_path):
    host = host_for("linux", tmp_path)
    assert plugins.find_gimp_profiles(host) == []
    assert plugins.find_krita_locations(host) == []


def test_gimp3_directory_counts_as_a_profile(tmp_path):
    host = UserHost("linux", tmp_path, {"GIMP3_DIRECTORY": str(tmp_path / "portable")})
    assert plugins.find_gimp_profiles(host) == [tmp_path / "portable"]


def test_gimp_install_copies_plugin_and_vendored_client(tmp_path):
    profile = tmp_path / "GIMP" / "3.2"
    actions = plugins.install_gimp(profile)

    folder = profile / "plug-ins" / "inlayer"
    files = installed_files(folder)
    assert len(actions) == len(files)
    for relative, source in plugins.gimp_plugin_files().items():
        expected = source if isinstance(source, bytes) else source.read_bytes()
        assert files[relative] == expected
    for name in plugins.REQUIRED_CLIENT_MODULES:
        assert f"{CLIENT_PACKAGE}/{name}" in files
    # The whole client folder travels, not a chosen few of its modules.
    client_source = {p.name for p in plugins.CLIENT_SOURCE.glob("*.py")}
    assert {name for name in files if name.startswith(CLIENT_PACKAGE)} == {
        f"{CLIENT_PACKAGE}/{name}" for name in client_source
    }
    assert os.access(folder / "inlayer.py", os.X_OK)


def test_install_from_an_incomplete_client_folder_fails_and_installs_nothing(tmp_path, monkeypatch):
    broken = tmp_path / "client"
    shutil.copytree(plugins.CLIENT_SOURCE, broken, ignore=shutil.ignore_patterns("__pycache__"))
    (broken / "wire.py").unlink()
    monkeypatch.setattr(plugins, "CLIENT_SOURCE", broken)
    profile = tmp_path / "3.0"

    with pytest.raises(plugins.IncompleteSource, match=r"lacks wire\.py.*Reinstall"):
        plugins.install_gimp(profile)
    assert not (profile / "plug-ins" / "inlayer").exists()


def test_install_is_idempotent_and_removes_stale_files(tmp_path):
    profile = tmp_path / "3.0"
    plugins.install_gimp(profile)
    folder = profile / "plug-ins" / "inlayer"
    before = installed_files(folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "inlayer.cpython-313.pyc").write_bytes(b"cache")

    assert plugins.install_gimp(profile) == [f"GIMP plug-in in {folder} already up to date"]

    (folder / "old_module.py").write_text("gone in this version\n")
    (folder / CLIENT_PACKAGE / "protocol.py").write_text("edited by hand\n")
    actions = plugins.install_gimp(profile)
    assert any("old_module.py" in action and "removed" in action for action in actions)
    assert any(action.endswith("protocol.py") for action in actions)
    assert installed_files(folder) == before | {"__pycache__/inlayer.cpython-313.pyc": b"cache"}


def test_installed_client_imports_with_the_standard_library_alone(tmp_path):
    """What GIMP's and Krita's Python can do: no site-packages, no Inlayer checkout."""
    plugins.install_gimp(tmp_path)
    folder = tmp_path / "plug-ins" / "inlayer"
    installed = sorted((folder / CLIENT_PACKAGE).glob("*.py"))
    modules = [f"{CLIENT_PACKAGE}.{path.stem}" for path in installed if path.stem != "__init__"]
    assert len(modules) == len(plugins.REQUIRED_CLIENT_MODULES) - 1
    script = (
        f"import sys; sys.path.insert(0, {str(folder)!r}); import " + ", ".join(modules) + "\n"
        # Nothing outside the standard library and the client itself was imported.
        "outside = [m for m in sys.modules if m.split('.')[0] in ('inlayer', 'numpy', 'torch')]\n"
        "assert not outside, outside"
    )
    # -I: ignore PYTHONPATH and the user's site; -S: no site-packages.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr


def test_link_mode_symlinks_into_the_checkout(tmp_path):
    profile = tmp_path / "3.0"
    plugins.install_gimp(profile)  # a copy first: linking must replace it
    actions = plugins.install_gimp(profile, link=True)

    folder = profile / "plug-ins" / "inlayer"
    for name in plugins.REQUIRED_CLIENT_MODULES:
        linked = folder / CLIENT_PACKAGE / name
        assert linked.is_symlink()
        assert linked.resolve() == plugins.CLIENT_SOURCE / name
    assert all(action.startswith("linked ") for action in actions)
    assert plugins.install_gimp(profile, link=True) == [
        f"GIMP plug-in in {folder} already up to date"
    ]
    # Back to copies: every link becomes a plain file again.
    plugins.install_gimp(profile)
    assert not any(path.is_symlink() for path in folder.rglob("*"))


def test_uninstall_gimp(tmp_path):
    plugins.install_gimp(tmp_path)
    (tmp_path / "plug-ins" / "other").mkdir()
    assert plugins.uninstall_gimp(tmp_path) == [f"removed {tmp_path / 'plug-ins' / 'inlayer'}"]
    assert [path.name for path in (tmp_path / "plug-ins").iterdir()] == ["other"]
    assert plugins.uninstall_gimp(tmp_path) == [f"GIMP plug-in not installed in {tmp_path}"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_krita_install_enables_the_plugin_and_keeps_kritarc(tmp_path, layout):
    platform, _, krita_dir, kritarc_name = LAYOUTS[layout]
    resource_dir, kritarc = tmp_path / krita_dir, tmp_path / kritarc_name
    kritarc.parent.mkdir(parents=True)
    kritarc.write_text(KRITARC)
    resource_dir.mkdir(parents=True)
    (location,) = plugins.find_krita_locations(host_for(platform, tmp_path))

    plugins.install_krita(location.resource_dir, kritarc=location.kritarc)

    pykrita = resource_dir / "pykrita"
    package = pykrita / KRITA_PLUGIN_NAME
    assert (package / CLIENT_PACKAGE / "protocol.py").is_file()
    assert (pykrita / f"{KRITA_PLUGIN_NAME}.desktop").is_file()
    assert kritarc.read_text() == KRITARC.replace(
        "enable_inlayer_krita=false", "enable_inlayer_krita=true"
    )
    assert plugins.install_krita(resource_dir, kritarc=kritarc) == [
        f"Krita plug-in in {pykrita} already up to date"
    ]

    plugins.uninstall_krita(resource_dir, kritarc=kritarc)
    assert not package.exists()
    assert not (pykrita / f"{KRITA_PLUGIN_NAME}.desktop").exists()
    assert kritarc.read_text() == KRITARC.replace("enable_inlayer_krita=false\n", "")


def test_krita_install_adds_the_python_section_to_a_new_kritarc(tmp_path):
    kritarc = tmp_path / "config" / "kritarc"
    actions = plugins.install_krita(tmp_path / "krita", kritarc=kritarc)
    assert f"enabled {KRITA_PLUGIN_NAME} in {kritarc}" in actions
    assert kritarc.read_text() == "[python]\nenable_inlayer_krita=true\n"

    kritarc.write_text("[General]\nShowSplash=false\n")
    plugins.install_krita(tmp_path / "krita", kritarc=kritarc)
    assert kritarc.read_text() == (
        "[General]\nShowSplash=false\n\n[python]\nenable_inlayer_krita=true\n"
    )


def test_krita_zip_holds_desktop_file_and_package_with_vendored_client(tmp_path):
    output = tmp_path / "inlayer_krita.zip"
    plugins.build_krita_zip(output)

    with zipfile.ZipFile(output) as archive:
        names = set(archive.namelist())
        init = archive.read(f"{KRITA_PLUGIN_NAME}/{CLIENT_PACKAGE}/__init__.py")
    expected = {f"{KRITA_PLUGIN_NAME}/{name}" for name in plugins.krita_plugin_files()}
    expected |= {f"{KRITA_PLUGIN_NAME}/", f"{KRITA_PLUGIN_NAME}/{CLIENT_PACKAGE}/"}
    expected.add(f"{KRITA_PLUGIN_NAME}.desktop")
    assert names == expected
    assert f"{KRITA_PLUGIN_NAME}/{CLIENT_PACKAGE}/protocol.py" in names
    assert not any("__pycache__" in name for name in names)
    assert init == (plugins.CLIENT_SOURCE / "__init__.py").read_bytes()

    # The same sources give the same bytes (reproducible builds).
    again = tmp_path / "again.zip"
    plugins.build_krita_zip(again)
    assert again.read_bytes() == output.read_bytes()


KRITA_IMPORTER = Path("usr/share/krita/pykrita/plugin_importer/plugin_importer.py")


def test_krita_own_importer_accepts_the_zip(tmp_path):
    """Krita's Tools > Scripts > Import Python Plugin from File, run on the zip: the importer
    shipped with Krita 5.2 (in the editors' chroot; standard library only) extracts it. Krita 6's
    importer needs Krita's translation function: tests/editors/test_archives.py runs it there."""
    chroot = next(
        (
            chroot.root
            for chroot in editor_chroots()
            if (chroot.package_version("krita") or "").startswith("5.")
        ),
        None,
    )
    if chroot is None or not (chroot / KRITA_IMPORTER).is_file():
        pytest.skip("needs Krita 5.2's plug-in importer from the editors' chroot (INLAYER_CHROOTS)")
    output = tmp_path / "inlayer_krita.zip"
    plugins.build_krita_zip(output)
    resources = tmp_path / "resources"
    resources.mkdir()

    result = subprocess.run(
        [sys.executable, str(chroot / KRITA_IMPORTER), str(output), str(resources)],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "Imported plugin: Inlayer" in result.stdout
    pykrita = resources / "pykrita"
    assert (pykrita / f"{KRITA_PLUGIN_NAME}.desktop").is_file()
    with zipfile.ZipFile(output) as archive:
        packaged = {
            name.removeprefix(f"{KRITA_PLUGIN_NAME}/")
            for name in archive.namelist()
            if name.startswith(f"{KRITA_PLUGIN_NAME}/") and not name.endswith("/")
        }
    assert set(installed_files(pykrita / KRITA_PLUGIN_NAME)) == packaged


def test_archives_carry_each_plugin_with_the_whole_client_folder(tmp_path):
    """`inlayer install-plugins --archives DIR`: what a user without a terminal unpacks."""
    actions = plugins.build_archives(tmp_path)

    gimp_name, krita_name = plugins.archive_names(plugins.__version__)
    assert actions == [f"wrote {tmp_path / gimp_name}", f"wrote {tmp_path / krita_name}"]
    client = {path.name for path in plugins.CLIENT_SOURCE.glob("*.py")}
    for name, folder in ((gimp_name, "inlayer"), (krita_name, KRITA_PLUGIN_NAME)):
        with zipfile.ZipFile(tmp_path / name) as archive:
            names = set(archive.namelist())
        assert {f"{folder}/{CLIENT_PACKAGE}/{module}" for module in client} <= names
        # Nothing that needs a compiler or belongs to one Python build.
        assert not any(entry.endswith((".pyc", ".so", ".pyd")) for entry in names)


def test_gimp_archive_unpacked_is_the_installed_plugin(tmp_path):
    """Unpacked into a plug-ins folder, the zip gives what `install_gimp` writes, with the entry
    file executable, and its client imports with the standard library alone."""
    (gimp_zip,) = [
        Path(line.removeprefix("wrote "))
        for line in plugins.build_gimp_zip(tmp_path / "inlayer-gimp.zip")
    ]
    plugins.install_gimp(tmp_path / "profile")
    installed = installed_files(tmp_path / "profile" / "plug-ins" / "inlayer")

    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(gimp_zip) as archive:
        archive.extractall(unpacked)
        # Archive managers on Linux and macOS apply the Unix mode stored with each entry.
        for info in archive.infolist():
            if not info.is_dir():
                (unpacked / info.filename).chmod(info.external_attr >> 16 & 0o777)
    plugin = unpacked / "inlayer"
    assert installed_files(plugin) == installed
    assert os.access(plugin / "inlayer.py", os.X_OK)
    assert not os.access(plugin / CLIENT_PACKAGE / "protocol.py", os.X_OK)
    script = f"import sys; sys.path.insert(0, {str(plugin)!r}); import {CLIENT_PACKAGE}.http_client"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True)
    assert result.returncode == 0, result.stderr
