"""Per-user tokens: `inlayer token add NAME`, `inlayer token revoke NAME`, `inlayer token list`.

A studio hands each person their own token and withdraws it when they leave, without touching
anyone else's. The server's own token (the token file, or INLAYER_TOKEN) keeps working beside
them. `tokens.json` in Inlayer's config folder (owner-only) keeps, per name, a SHA-256 hash of
the token and when it was made: the token itself is shown once, when it is added, and is stored
nowhere, so a copy of the file lets no one in. The running server re-reads the file whenever it
changes, so an added or revoked token takes effect at the next request, without a restart.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from inlayer.core.client import paths
from inlayer.core.client.protocol import InlayerError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class TokenError(InlayerError):
    """A token command that cannot be done (a bad or unknown name, an unreadable file)."""


def tokens_path() -> Path:
    return paths.config_dir() / "tokens.json"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class UserToken:
    name: str
    sha256: str  # of the token: the token itself is never stored
    created: str  # ISO 8601, UTC


def read_tokens(path: Path) -> dict[str, UserToken]:
    """The tokens in `path`, by name; none when it does not exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise TokenError(f"{path} cannot be read as a token list ({error})") from None
    if not isinstance(data, dict):
        raise TokenError(f"{path} is not a token list (a JSON object of names)")
    tokens = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise TokenError(f"{path}: the entry {name!r} has no sha256")
        tokens[name] = UserToken(name, entry["sha256"], str(entry.get("created", "")))
    return tokens


def _write_tokens(path: Path, tokens: dict[str, UserToken]) -> None:
    """Replace the file at once (a server reading it sees the old or the new list, never half),
    owner-only from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {t.name: {"sha256": t.sha256, "created": t.created} for t in tokens.values()}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2, sort_keys=True)
        file.write("\n")
    os.replace(temporary, path)


def add_token(name: str, path: Path | None = None) -> str:
    """A new token for `name` (shown to the caller once); refuses a name that has one."""
    path = path or tokens_path()
    if not NAME_PATTERN.fullmatch(name):
        raise TokenError(
            f"NAME {name!r} is not a token name: use 1 to 64 letters, digits, '.', '_', '@' "
            "or '-', starting with a letter or digit"
        )
    tokens = read_tokens(path)
    if name in tokens:
        raise TokenError(
            f"{name!r} has a token already; `inlayer token revoke {name}` first to replace it"
        )
    token = secrets.token_urlsafe(32)
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    tokens[name] = UserToken(name, _digest(token), created)
    _write_tokens(path, tokens)
    return token


def revoke_token(name: str, path: Path | None = None) -> None:
    path = path or tokens_path()
    tokens = read_tokens(path)
    if name not in tokens:
        raise TokenError(f"{name!r} has no token; the names that have one: {sorted(tokens)}")
    del tokens[name]
    _write_tokens(path, tokens)


class UserTokens:
    """The server's view of `tokens.json`: re-read when the file changes (a `stat` per
    request costs microseconds)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or tokens_path()
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) read last
        self._digests: dict[str, str] = {}  # sha256 -> name

    def owner(self, token: str) -> str | None:
        """The name whose token this is, or None."""
        presented = _digest(token).encode()
        for digest, name in self._current().items():
            if hmac.compare_digest(presented, digest.encode()):
                return name
        return None

    def _current(self) -> dict[str, str]:
        try:
            stat = self.path.stat()
            seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen:
                tokens = {}
                # A file that cannot be read lets no user token in (the server's token works).
                with contextlib.suppress(TokenError):
                    tokens = read_tokens(self.path) if seen is not None else {}
                self._digests = {t.sha256: t.name for t in tokens.values()}
                self._seen = seen
            return self._digests


# --- the command ------------------------------------------------------------------------------


def _add(args: argparse.Namespace) -> int:
    token = add_token(args.name)
    print(token)
    print(
        f"Token for {args.name!r} added to {tokens_path()}. It is shown only now: hand it to "
        f"{args.name} (in the plug-in's settings, or INLAYER_TOKEN). A running server accepts "
        "it at once.",
        file=sys.stderr,
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    revoke_token(args.name)
    print(f"Token of {args.name!r} revoked; a running server refuses it at once.", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    tokens = read_tokens(tokens_path())
    if not tokens:
        print(f"No user tokens (in {tokens_path()}).", file=sys.stderr)
    for token in sorted(tokens.values(), key=lambda t: t.name):
        print(f"{token.name}\t{token.created}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add `inlayer token add|revoke|list` to the `inlayer` command (core/cli.py)."""
    parser = commands.add_parser(
        "token",
        help="hand out and withdraw per-user tokens for the server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subcommands = parser.add_subparsers(dest="token_command", required=True, metavar="SUBCOMMAND")
    add = subcommands.add_parser("add", help="make a token for NAME and print it (once)")
    add.add_argument("name", metavar="NAME")
    add.set_defaults(handler=_add)
    revoke = subcommands.add_parser("revoke", help="withdraw NAME's token")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=_revoke)
    subcommands.add_parser("list", help="the names that have a token").set_defaults(handler=_list)
