"""Install the GIMP and Krita plug-ins into the editors' per-user folders.

Each plug-in carries Inlayer's standard-library client, the folder `core/client/` copied whole,
as a package named `inlayer_client` beside itself, because the editors' embedded Python cannot
import `inlayer.core` from Inlayer's own virtual environment:

    GIMP   <profile>/plug-ins/inlayer/inlayer.py            (executable)
           <profile>/plug-ins/inlayer/inlayer_client/...
    Krita  <resources>/pykrita/inlayer_krita.desktop
           <resources>/pykrita/inlayer_krita/...
           <resources>/pykrita/inlayer_krita/inlayer_client/...
           and `enable_inlayer_krita=true` in the [python] section of kritarc

A GIMP *profile* is the versioned folder GIMP keeps its settings in (`GIMP/3.0`, `GIMP/3.2`, ...;
what `GIMP3_DIRECTORY` points at). A Krita *resource folder* holds `pykrita/`; Krita reads
`kritarc` from a separate configuration folder.

Installing copies (or, with `link=True`, symlinks, for developers editing the checkout) and is
idempotent: files already in place are left alone, files the plug-in no longer has are removed
from its folder. Every function returns what it changed, one line per change.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from inlayer.core.client import __version__
from inlayer.core.client.paths import UserHost
from inlayer.core.client.protocol import InlayerError

# The plug-in sources sit beside this package, in the checkout and in an installed wheel alike.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
CLIENT_SOURCE = SOURCE_ROOT / "core" / "client"
GIMP_PLUGIN_SOURCE = SOURCE_ROOT / "gimp_plugin" / "inlayer"
KRITA_PLUGIN_SOURCE = SOURCE_ROOT / "krita_plugin"

GIMP_PLUGIN_NAME = "inlayer"
GIMP_ENTRY_FILE = "inlayer.py"
KRITA_PLUGIN_NAME = "inlayer_krita"
CLIENT_PACKAGE = "inlayer_client"
# The client modules the plug-ins import. The whole folder is copied; a source tree that lacks one
# of these is broken, and installing from it must fail rather than leave a plug-in that cannot load.
REQUIRED_CLIENT_MODULES = (
    "__init__.py",
    "protocol.py",
    "wire.py",
    "base.py",
    "http_client.py",
    "bounds.py",
    "canvas.py",
    "paths.py",
    "remote_server.py",
)

KRITARC_SECTION = "python"
KRITARC_ENABLE_KEY = f"enable_{KRITA_PLUGIN_NAME}"

_GIMP_PROFILE_NAME = re.compile(r"^3\.\d+$")
# Fixed timestamp for zip entries, so that the same sources give the same zip.
_ZIP_TIMESTAMP = (2024, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class KritaLocation:
    """One Krita installation's folders: where `pykrita/` goes and which kritarc enables it."""

    resource_dir: Path
    kritarc: Path


# --- finding the editors' folders -------------------------------------------------------------


def gimp_profile_parents(host: UserHost) -> list[Path]:
    """The folders that hold GIMP's versioned profiles on this platform (they may not exist)."""
    if host.platform == "win32":
        return [host.appdata / "GIMP"]
    if host.platform == "darwin":
        return [host.mac_app_support / "GIMP"]
    return [host.xdg_config / "GIMP", host.flatpak_apps / "org.gimp.GIMP" / "config" / "GIMP"]


def find_gimp_profiles(host: UserHost | None = None) -> list[Path]:
    """Every existing GIMP 3.x profile, plus `GIMP3_DIRECTORY` when it is set."""
    host = host or UserHost.current()
    profiles = []
    for parent in gimp_profile_parents(host):
        if parent.is_dir():
            profiles += sorted(
                child
                for child in parent.iterdir()
                if child.is_dir() and _GIMP_PROFILE_NAME.match(child.name)
            )
    override = host.env.get("GIMP3_DIRECTORY")
    if override and Path(override) not in profiles:
        profiles.append(Path(override))
    return profiles


def krita_locations(host: UserHost) -> list[KritaLocation]:
    """Krita's resource folder and kritarc on this platform (they may not exist)."""
    if host.platform == "win32":
        return [KritaLocation(host.appdata / "krita", host.local_appdata / "kritarc")]
    if host.platform == "darwin":
        return [
            KritaLocation(
                host.mac_app_support / "krita", host.home / "Library" / "Preferences" / "kritarc"
            )
        ]
    flatpak = host.flatpak_apps / "org.kde.krita"
    return [
        KritaLocation(host.xdg_data / "krita", host.xdg_config / "kritarc"),
        KritaLocation(flatpak / "data" / "krita", flatpak / "config" / "kritarc"),
    ]


def find_krita_locations(host: UserHost | None = None) -> list[KritaLocation]:
    """The Krita installations that have been run at least once (resource folder or kritarc)."""
    host = host or UserHost.current()
    return [
        location
        for location in krita_locations(host)
        if location.resource_dir.is_dir() or location.kritarc.is_file()
    ]


def kritarc_for(resource_dir: Path, host: UserHost | None = None) -> Path:
    """The kritarc that belongs with `resource_dir`: the known layout's, else the platform's."""
    host = host or UserHost.current()
    locations = krita_locations(host)
    for location in locations:
        if location.resource_dir == resource_dir:
            return location.kritarc
    return locations[0].kritarc


# --- what gets installed ------------------------------------------------------------------------


class IncompleteSource(InlayerError):
    """The source tree lacks files a plug-in needs: a broken checkout or wheel."""


def client_files() -> dict[str, Path | bytes]:
    """The `inlayer_client` package: the folder `core/client/`, whole."""
    files = _source_files(CLIENT_SOURCE)
    missing = [name for name in REQUIRED_CLIENT_MODULES if name not in files]
    if missing:
        raise IncompleteSource(
            f"Inlayer's client folder {CLIENT_SOURCE} lacks {', '.join(missing)}: this copy of "
            "Inlayer is incomplete. Reinstall it (`./install.sh`, or `pip install` again)."
        )
    return files


def _source_files(folder: Path) -> dict[str, Path | bytes]:
    """Every file under `folder` by relative path, without bytecode caches."""
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _with_client(files: dict[str, Path | bytes]) -> dict[str, Path | bytes]:
    return files | {f"{CLIENT_PACKAGE}/{name}": source for name, source in client_files().items()}


def gimp_plugin_files() -> dict[str, Path | bytes]:
    """The contents of `plug-ins/inlayer/`, by relative path."""
    return _with_client(_source_files(GIMP_PLUGIN_SOURCE))


def krita_plugin_files() -> dict[str, Path | bytes]:
    """The contents of `pykrita/inlayer_krita/`, by relative path."""
    return _with_client(_source_files(KRITA_PLUGIN_SOURCE / KRITA_PLUGIN_NAME))


def krita_desktop_file() -> Path:
    return KRITA_PLUGIN_SOURCE / f"{KRITA_PLUGIN_NAME}.desktop"


# --- copying and linking ------------------------------------------------------------------------


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _place_file(source: Path | bytes, target: Path, *, link: bool, executable: bool) -> bool:
    """Put one file at `target`; returns whether anything changed."""
    mode = 0o755 if executable else 0o644
    if isinstance(source, Path) and link:
        if target.is_symlink() and Path(os.readlink(target)) == source:
            return False
        if target.exists() or target.is_symlink():
            _remove(target)
        target.symlink_to(source)
        if executable and not os.access(source, os.X_OK):
            source.chmod(source.stat().st_mode | 0o111)
        return True
    content = source if isinstance(source, bytes) else source.read_bytes()
    if target.is_symlink() or target.is_dir():
        _remove(target)
    elif (
        target.is_file()
        and target.read_bytes() == content
        and (sys.platform == "win32" or target.stat().st_mode & 0o777 == mode)
    ):
        return False
    target.write_bytes(content)
    target.chmod(mode)
    return True


def _sync_folder(
    files: Mapping[str, Path | bytes], folder: Path, *, link: bool, executable: str = ""
) -> list[str]:
    """Make `folder` hold exactly `files` (bytecode caches aside). `executable` names the file
    that gets the executable bit."""
    actions = []
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
        actions.append(f"removed {folder} (was not a folder)")
    folder.mkdir(parents=True, exist_ok=True)
    for relative, source in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if _place_file(source, target, link=link, executable=relative == executable):
            verb = "linked" if link and isinstance(source, Path) else "wrote"
            actions.append(f"{verb} {target}")
    expected_dirs = {folder / relative for name in files for relative in Path(name).parents}
    for path in sorted(folder.rglob("*"), reverse=True):
        if "__pycache__" in path.relative_to(folder).parts:
            continue
        relative = path.relative_to(folder).as_posix()
        if relative in files or path in expected_dirs:
            continue
        _remove(path)
        actions.append(f"removed {path} (no longer part of the plug-in)")
    return actions


def _with_summary(actions: list[str], what: str) -> list[str]:
    return actions or [f"{what} already up to date"]


# --- kritarc ------------------------------------------------------------------------------------


def _set_kritarc_key(kritarc: Path, enabled: bool | None) -> bool:
    """Set `enable_inlayer_krita` in kritarc's [python] section (None removes it), editing only
    that line so the rest of the file stays exactly as Krita wrote it. Returns whether it
    changed. (configparser would lower-case Krita's keys and drop its layout.)"""
    text = kritarc.read_text(encoding="utf-8") if kritarc.is_file() else ""
    lines = text.splitlines()
    new_line = None if enabled is None else f"{KRITARC_ENABLE_KEY}={'true' if enabled else 'false'}"
    section_start = next(
        (i for i, line in enumerate(lines) if line.strip() == f"[{KRITARC_SECTION}]"), None
    )
    if section_start is None:
        if new_line is None:
            return False
        separator = [""] if lines and lines[-1].strip() else []
        lines += [*separator, f"[{KRITARC_SECTION}]", new_line]
    else:
        section_end = next(
            (
                i
                for i in range(section_start + 1, len(lines))
                if lines[i].startswith("[") and lines[i].rstrip().endswith("]")
            ),
            len(lines),
        )
        key_line = next(
            (
                i
                for i in range(section_start + 1, section_end)
                if lines[i].split("=", 1)[0].strip() == KRITARC_ENABLE_KEY
            ),
            None,
        )
        if key_line is None:
            if new_line is None:
                return False
            lines.insert(section_start + 1, new_line)
        elif new_line is None:
            del lines[key_line]
        elif lines[key_line] == new_line:
            return False
        else:
            lines[key_line] = new_line
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    kritarc.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return True


# --- install and uninstall ----------------------------------------------------------------------


def install_gimp(profile_dir: Path, *, link: bool = False) -> list[str]:
    """Install the GIMP plug-in into one GIMP profile (the folder that holds `plug-ins/`)."""
    folder = profile_dir / "plug-ins" / GIMP_PLUGIN_NAME
    actions = _sync_folder(gimp_plugin_files(), folder, link=link, executable=GIMP_ENTRY_FILE)
    return _with_summary(actions, f"GIMP plug-in in {folder}")


def uninstall_gimp(profile_dir: Path) -> list[str]:
    folder = profile_dir / "plug-ins" / GIMP_PLUGIN_NAME
    if not (folder.exists() or folder.is_symlink()):
        return [f"GIMP plug-in not installed in {profile_dir}"]
    _remove(folder)
    return [f"removed {folder}"]


def install_krita(
    resource_dir: Path, *, link: bool = False, kritarc: Path | None = None
) -> list[str]:
    """Install the Krita plug-in into one resource folder and enable it in `kritarc` (by default
    the one that belongs with `resource_dir`, see `kritarc_for`)."""
    kritarc = kritarc or kritarc_for(resource_dir)
    pykrita = resource_dir / "pykrita"
    pykrita.mkdir(parents=True, exist_ok=True)
    actions = []
    desktop = pykrita / f"{KRITA_PLUGIN_NAME}.desktop"
    if krita_desktop_file().is_file() and _place_file(
        krita_desktop_file(), desktop, link=link, executable=False
    ):
        actions.append(f"{'linked' if link else 'wrote'} {desktop}")
    actions += _sync_folder(krita_plugin_files(), pykrita / KRITA_PLUGIN_NAME, link=link)
    if _set_kritarc_key(kritarc, enabled=True):
        actions.append(f"enabled {KRITA_PLUGIN_NAME} in {kritarc}")
    return _with_summary(actions, f"Krita plug-in in {pykrita}")


def uninstall_krita(resource_dir: Path, *, kritarc: Path | None = None) -> list[str]:
    kritarc = kritarc or kritarc_for(resource_dir)
    pykrita = resource_dir / "pykrita"
    actions = []
    for path in (pykrita / f"{KRITA_PLUGIN_NAME}.desktop", pykrita / KRITA_PLUGIN_NAME):
        if path.exists() or path.is_symlink():
            _remove(path)
            actions.append(f"removed {path}")
    if _set_kritarc_key(kritarc, enabled=None):
        actions.append(f"removed {KRITARC_ENABLE_KEY} from {kritarc}")
    return actions or [f"Krita plug-in not installed in {resource_dir}"]


# --- archives: installing without a terminal ---------------------------------------------------


def _zip_entries(
    files: dict[str, Path | bytes], folder: str
) -> Iterator[tuple[str, Path | bytes | None]]:
    """(name, content) of each entry for `files` under `folder/`; None marks a folder. Krita's
    importer finds the plug-in package by its folder entry (`inlayer_krita/`), so every folder
    gets one, before its files."""
    written_folders: set[str] = set()
    for relative, source in files.items():
        name = f"{folder}/{relative}"
        for parent in reversed(Path(name).parents[:-1]):
            if parent.as_posix() not in written_folders:
                written_folders.add(parent.as_posix())
                yield f"{parent.as_posix()}/", None
        yield name, source


def _write_zip(
    output: Path,
    entries: Iterator[tuple[str, Path | bytes | None]],
    executable: frozenset[str] = frozenset(),
) -> None:
    """The same entries always give the same bytes (fixed timestamps and modes)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
            if source is None:
                info.external_attr = (0o40755 << 16) | 0x10  # a folder, for Unix and DOS readers
                archive.writestr(info, b"")
                continue
            content = source if isinstance(source, bytes) else source.read_bytes()
            # GIMP on Linux and macOS runs only plug-in files marked executable; unzip keeps it.
            info.external_attr = (0o755 if name in executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)


def build_krita_zip(output: Path) -> list[str]:
    """Write the zip Krita's *Tools > Scripts > Import Python Plugin from File* takes: the .desktop
    file and the plug-in package (with the client folder) at the top level."""

    def entries() -> Iterator[tuple[str, Path | bytes | None]]:
        yield f"{KRITA_PLUGIN_NAME}.desktop", krita_desktop_file()
        yield from _zip_entries(krita_plugin_files(), KRITA_PLUGIN_NAME)

    _write_zip(output, entries())
    return [f"wrote {output}"]


def build_gimp_zip(output: Path) -> list[str]:
    """Write the GIMP plug-in as a zip holding the folder `inlayer/` (with the client folder), to
    unpack into a profile's plug-ins folder or into a folder added under *Preferences > Folders >
    Plug-ins*."""
    entry = f"{GIMP_PLUGIN_NAME}/{GIMP_ENTRY_FILE}"
    _write_zip(
        output,
        _zip_entries(gimp_plugin_files(), GIMP_PLUGIN_NAME),
        executable=frozenset({entry}),
    )
    return [f"wrote {output}"]


def archive_names(version: str) -> tuple[str, str]:
    """The file names of the GIMP and the Krita archive of an Inlayer version."""
    return f"inlayer-gimp-{version}.zip", f"inlayer-krita-{version}.zip"


def build_archives(folder: Path) -> list[str]:
    """Both plug-ins as archives in `folder`, named after this Inlayer's version."""
    gimp_name, krita_name = archive_names(__version__)
    return build_gimp_zip(folder / gimp_name) + build_krita_zip(folder / krita_name)
