"""The server the plug-ins talk to when it is not this computer's: the URL and token the user
entered in a plug-in's settings (GIMP: Filters → Inlayer → Server settings…; Krita: the docker's
Server… button).

Standard library only (the plug-ins carry it). Kept in `remote.json` in Inlayer's config folder,
owner-only (it holds a token), so that both editors share one setting. `HttpClient` reads it
after the INLAYER_SERVER/INLAYER_TOKEN environment and before the local server's server.json.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .protocol import InvalidRequest


@dataclass(frozen=True)
class RemoteServer:
    url: str  # http(s)://host[:port][/path]
    token: str  # the token its administrator handed out (`inlayer token add NAME`)


def remote_server_path() -> Path:
    return paths.config_dir() / "remote.json"


def check_url(url: str) -> str:
    """`url` without surrounding space and trailing slash; InvalidRequest naming the field
    when it is not an http(s) URL of a host."""
    url = url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(
            "server URL",
            f"{url!r} is not an address like https://inlayer.example.com or "
            "http://192.168.1.20:7878",
        )
    try:
        parts.port  # noqa: B018 -- reading it checks it
    except ValueError:
        raise InvalidRequest("server URL", f"{url!r} has a port that is not a number") from None
    return url


def load_remote_server() -> RemoteServer | None:
    """The remote server the settings name; None when they name none (or cannot be read: the
    plug-in then uses the local server, and says so if that fails)."""
    try:
        data = json.loads(remote_server_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    url, token = data.get("url"), data.get("token")
    if not isinstance(url, str) or not url or not isinstance(token, str):
        return None
    return RemoteServer(url, token)


def save_remote_server(url: str, token: str) -> RemoteServer | None:
    """Keep `url` and `token` for both plug-ins; an empty `url` goes back to the local server.
    Raises InvalidRequest naming the field that is wrong, and then changes nothing."""
    path = remote_server_path()
    if not url.strip():
        if path.exists():
            path.unlink()
        return None
    server = RemoteServer(check_url(url), token.strip())
    if not server.token:
        raise InvalidRequest("token", "is empty: enter the token the server's administrator gave")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Owner-only from the start: it holds a token.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump({"url": server.url, "token": server.token}, file)
    os.replace(temporary, path)
    return server
