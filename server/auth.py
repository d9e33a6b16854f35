"""Who may talk to the server: the token, the Host and Origin checks, and the body size limit.

- Every request but `/v1/health` needs the token (the server's, or a user's from `inlayer token
  add`: user_tokens.py): `Authorization: Bearer TOKEN`, or, on the
  AUTOMATIC1111 routes and the API docs, HTTP Basic auth with the token as password (A1111
  clients and browsers send that). By the user's choice (`a1111_auth = none`), the A1111 routes
  answer without it; only on loopback, and the Host and Origin checks still apply.
- The Host header must name this server (127.0.0.1:PORT, localhost:PORT or [::1]:PORT): a web
  page that re-points its own domain at 127.0.0.1 (DNS rebinding) sends its domain as Host.
- A browser request from another origin (its `Origin` header) is refused: a page the user visits
  must not drive the server, even with a token it guessed.
- Bodies larger than `max_body_bytes` are refused with 413 before they are read into memory.

It is a plain ASGI middleware so that the checks cost microseconds and run before FastAPI parses
anything.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from inlayer.core.client import paths
from inlayer.core.client.protocol import AuthenticationFailed, InlayerError, TooLarge

from .service import HTTP_STATUS_BY_CODE, error_body
from .user_tokens import UserTokens

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/v1/health"})
# Routes a browser or an AUTOMATIC1111 client reaches with HTTP Basic auth.
A1111_PREFIX = "/sdapi/"
CONTROLNET_PREFIX = "/controlnet/"  # the routes of A1111's ControlNet extension
BASIC_AUTH_PREFIXES = (A1111_PREFIX, CONTROLNET_PREFIX, "/docs", "/openapi.json")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def load_or_create_token(token_file: Path | None = None) -> str:
    """`INLAYER_TOKEN` when set; else the token file, created owner-only on first start."""
    from_env = os.environ.get("INLAYER_TOKEN", "").strip()
    if from_env:
        return from_env
    path = token_file or paths.token_path()
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            os.chmod(path, 0o600)
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # Created with 0600 from the start: never readable by others, not even for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host header values this server answers; None = any (bound to every interface)."""
    if host in WILDCARD_HOSTS:
        return None
    if host in ("127.0.0.1", "::1", "localhost"):
        names: tuple[str, ...] = LOOPBACK_HOSTS
    else:
        names = (f"[{host}]" if ":" in host else host,)
    return frozenset(f"{name}:{port}" for name in names)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


class ForeignHost(InlayerError):
    code = "foreign_host"


class ForeignOrigin(InlayerError):
    code = "forbidden"


class BodyTooLarge(InlayerError):
    code = TooLarge.code


class _BodyOverflow(Exception):
    """A streamed body passed the limit. Not an InlayerError: the guard answers it, not the
    route that was reading the body."""


async def _refuse(
    send: Send, status: int, error: InlayerError, extra: dict[str, str] | None = None
) -> None:
    body = json.dumps(error_body(error)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        hosts: frozenset[str] | None,
        max_body_bytes: int,
        open_prefixes: tuple[str, ...] = (),
        user_tokens: UserTokens | None = None,
    ) -> None:
        """`open_prefixes`: paths that need no token (the Host and Origin checks still apply).
        `user_tokens`: per-user tokens accepted beside `token`."""
        self.app = app
        self.token = token.encode()
        self.user_tokens = user_tokens
        self.hosts = hosts
        self.max_body_bytes = max_body_bytes
        self.open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host", "")
        if self.hosts is not None and host not in self.hosts:
            # 421 Misdirected Request: this server does not answer for that name.
            await _refuse(send, 421, ForeignHost(f"Host {host!r} is not this server"))
            return
        origin = headers.get("origin")
        if origin is not None and not self._same_origin(origin, host):
            await _refuse(send, 403, ForeignOrigin(f"requests from origin {origin!r} are refused"))
            return
        path = scope["path"]
        basic_allowed = path.startswith(BASIC_AUTH_PREFIXES)
        needs_token = path not in PUBLIC_PATHS and not path.startswith(self.open_prefixes)
        if needs_token and not self._authorized(headers, basic_allowed):
            challenge = {"www-authenticate": 'Basic realm="Inlayer"'} if basic_allowed else {}
            refusal = AuthenticationFailed(
                "a valid Inlayer token is required (Authorization: Bearer TOKEN); "
                "it is in the token file in Inlayer's config folder"
            )
            await _refuse(send, 401, refusal, challenge)
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _refuse(send, HTTP_STATUS_BY_CODE[BodyTooLarge.code], self._too_large())
            return
        await self._call_limited(scope, receive, send)

    async def _call_limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count streamed (chunked) bodies too; answer 413 once they pass the limit."""
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyOverflow
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyOverflow:
            if not started:
                await _refuse(send, HTTP_STATUS_BY_CODE[BodyTooLarge.code], self._too_large())

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(
            f"the body is larger than this server's limit of {self.max_body_bytes} bytes"
        )

    def _same_origin(self, origin: str, host: str) -> bool:
        return origin in (f"http://{host}", f"https://{host}") and (
            self.hosts is None or host in self.hosts
        )

    def _authorized(self, headers: dict[str, str], basic_allowed: bool) -> bool:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self._known(credentials.strip().encode())
        if scheme == "basic" and basic_allowed:
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
            _, _, password = decoded.partition(b":")
            return self._known(password)
        return False

    def _known(self, token: bytes) -> bool:
        """The server's token, or a user's that has not been revoked."""
        if hmac.compare_digest(token, self.token):
            return True
        if self.user_tokens is None:
            return False
        try:
            return self.user_tokens.owner(token.decode()) is not None
        except UnicodeDecodeError:
            return False
