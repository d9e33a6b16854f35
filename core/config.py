"""Where Inlayer keeps its per-user files. Standard library only (the plug-ins carry it).

- `config_dir()/config.ini`: the user's settings (documented in docs/configuration.md).
- `config_dir()/token`: the server's access token, owner-only (0600).
- `config_dir()/server.json`: written by `inlayer serve` while it runs: {"url": ..., "pid": ...}.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7878


def config_dir() -> Path:
    """The per-user folder; `INLAYER_CONFIG_DIR` overrides it (tests, portable installs)."""
    override = os.environ.get("INLAYER_CONFIG_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "inlayer"


def settings_path() -> Path:
    return config_dir() / "config.ini"


def token_path() -> Path:
    return config_dir() / "token"


def server_info_path() -> Path:
    return config_dir() / "server.json"
