"""Where Inlayer and the editors keep their per-user files, on each platform.

Standard library only (the plug-ins carry it). Inlayer's own files:

- `config_dir()/config.ini`: the user's settings (documented in docs/configuration.md).
- `config_dir()/token`: the server's access token, owner-only (0600).
- `config_dir()/server.json`: written by `inlayer serve` while it runs: {"url": ..., "pid": ...}.
- `data_dir()`: the virtual environment, downloaded models, the server's log.

Every per-platform folder rule lives in `UserHost`, so the installer can be tested against each
platform's layout by passing another `UserHost`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7878
APP_FOLDER = "inlayer"
CONFIG_DIR_ENV = "INLAYER_CONFIG_DIR"
DATA_DIR_ENV = "INLAYER_HOME"


@dataclass(frozen=True)
class UserHost:
    """Whose folders to look in: a `sys.platform` value, the home folder and the environment."""

    platform: str
    home: Path
    env: Mapping[str, str]

    @classmethod
    def current(cls) -> UserHost:
        return cls(sys.platform, Path.home(), os.environ)

    def _env_dir(self, name: str, fallback: Path) -> Path:
        value = self.env.get(name)
        return Path(value) if value else fallback

    @property
    def xdg_config(self) -> Path:
        return self._env_dir("XDG_CONFIG_HOME", self.home / ".config")

    @property
    def xdg_data(self) -> Path:
        return self._env_dir("XDG_DATA_HOME", self.home / ".local" / "share")

    @property
    def appdata(self) -> Path:
        return self._env_dir("APPDATA", self.home / "AppData" / "Roaming")

    @property
    def local_appdata(self) -> Path:
        return self._env_dir("LOCALAPPDATA", self.home / "AppData" / "Local")

    @property
    def mac_app_support(self) -> Path:
        return self.home / "Library" / "Application Support"

    @property
    def flatpak_apps(self) -> Path:
        return self.home / ".var" / "app"

    @property
    def config_base(self) -> Path:
        """Where applications keep settings: roaming AppData, Application Support, XDG config."""
        if self.platform == "win32":
            return self.appdata
        if self.platform == "darwin":
            return self.mac_app_support
        return self.xdg_config

    @property
    def data_base(self) -> Path:
        """Where applications keep data: local AppData, Application Support, XDG data."""
        if self.platform == "win32":
            return self.local_appdata
        if self.platform == "darwin":
            return self.mac_app_support
        return self.xdg_data

    @property
    def inlayer_config_dir(self) -> Path:
        """Inlayer's settings folder; `INLAYER_CONFIG_DIR` overrides it (tests, portable use)."""
        override = self.env.get(CONFIG_DIR_ENV)
        return Path(override) if override else self.config_base / APP_FOLDER

    @property
    def inlayer_data_dir(self) -> Path:
        """Inlayer's data folder (venv, models, logs); `INLAYER_HOME` overrides it."""
        override = self.env.get(DATA_DIR_ENV)
        return Path(override).expanduser() if override else self.data_base / APP_FOLDER


def config_dir() -> Path:
    return UserHost.current().inlayer_config_dir


def data_dir() -> Path:
    return UserHost.current().inlayer_data_dir


def settings_path() -> Path:
    return config_dir() / "config.ini"


def token_path() -> Path:
    return config_dir() / "token"


def server_info_path() -> Path:
    return config_dir() / "server.json"
