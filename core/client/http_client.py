"""The client the plug-ins use to run edits on `inlayer serve` over HTTP.

Standard library only, Python 3.10+: GIMP's and Krita's embedded Python carry this folder (as
`inlayer_client`). Every failure reaches the caller as an `InlayerError` whose message a
plug-in shows as it is.

    client = connect()                       # HTTP unless INLAYER_TRANSPORT=inprocess
    result = client.run(request, on_progress=show, cancel=stop_event)

Where the HTTP client finds the server: the `url`/`token` arguments, else the INLAYER_SERVER and
INLAYER_TOKEN environment variables, else the remote server of the plug-ins' settings
(remote.json: remote_server.py), else server.json and token in Inlayer's config folder (written
by `inlayer serve`), else http://127.0.0.1:7878.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.parse
from typing import Any

from . import paths, wire
from .base import Client
from .protocol import (
    PROTOCOL_VERSION,
    AddOnInfo,
    AuthenticationFailed,
    ConnectionFailed,
    EditRequest,
    EditResult,
    InlayerError,
    InvalidRequest,
    JobStatus,
    ModelInfo,
    ProgressCallback,
    ServerBusy,
    ServerHealth,
    error_from,
)
from .remote_server import load_remote_server

SERVER_ENV = "INLAYER_SERVER"
TOKEN_ENV = "INLAYER_TOKEN"
TRANSPORT_ENV = "INLAYER_TRANSPORT"
# How long a status request may wait on the server for the job's next change: while nothing
# changes, a client asks twice a second. A cancel goes out at once whatever this is (`Client.wait`).
STATUS_WAIT_SECONDS = 0.5


def _server_info_url() -> str | None:
    try:
        info = json.loads(paths.server_info_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = info.get("url") if isinstance(info, dict) else None
    return url if isinstance(url, str) else None


def _token_from_file() -> str | None:
    try:
        return paths.token_path().read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class HttpClient(Client):
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        reconnect_seconds: float = 10.0,
    ) -> None:
        """`timeout`: seconds one HTTP exchange may take. `reconnect_seconds`: how long `wait`
        keeps trying when the connection drops mid-job before it gives up."""
        remote = None if url or os.environ.get(SERVER_ENV) else load_remote_server()
        # A server found through the config folder may move: a restarted `inlayer serve` writes
        # its new address there. One named by the caller, the environment or the plug-ins'
        # settings stays where it is.
        self._follows_config_folder = not (url or os.environ.get(SERVER_ENV) or remote)
        if token:
            self.token, self._token_source = token, "the caller"
        elif os.environ.get(TOKEN_ENV):
            self.token, self._token_source = os.environ[TOKEN_ENV], TOKEN_ENV
        elif remote is not None:
            self.token, self._token_source = remote.token, "the plug-in's server settings"
        else:
            self.token, self._token_source = _token_from_file(), str(paths.token_path())
        self._token_from_folder = self._token_source == str(paths.token_path())
        self.timeout = timeout
        self.reconnect_seconds = reconnect_seconds
        self._point_at(
            url
            or os.environ.get(SERVER_ENV)
            or (remote.url if remote else None)
            or _server_info_url()
            or f"http://{paths.DEFAULT_HOST}:{paths.DEFAULT_PORT}"
        )

    def _point_at(self, url: str) -> None:
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InlayerError(f"The Inlayer server address {self.url!r} is not an http:// URL.")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base_path = parts.path
        self._server_health: ServerHealth | None = None  # the latest, for its protocol version

    def _follow_restarted_server(self) -> bool:
        """Point at the address (and token) the config folder names now, when it names another
        server than this client's: whether it did. A crashed server leaves its old address
        there; a restarted one replaces it."""
        if not self._follows_config_folder:
            return False
        url = _server_info_url()
        if not url or url.rstrip("/") == self.url:
            return False
        self._point_at(url)
        if self._token_from_folder:
            self.token = _token_from_file()
        return True

    # ---- the API -----------------------------------------------------------------------------

    def health(self) -> ServerHealth:
        health = self._parse("health", wire.health_from_json, self._json("GET", "/v1/health"))
        self._server_health = health
        return health

    def models(self) -> list[ModelInfo]:
        answer = self._json("GET", "/v1/models")
        return self._parse("models", lambda data: [wire.model_from_json(m) for m in data], answer)

    def add_ons(self) -> list[AddOnInfo]:
        answer = self._json("GET", "/v1/add-ons")
        return self._parse("add-ons", lambda data: [wire.add_on_from_json(a) for a in data], answer)

    def image_models(self) -> dict[str, list[str]]:
        answer = self._json("GET", "/v1/image-models")
        return self._parse(
            "image-models",
            lambda data: {str(field): [str(n) for n in names] for field, names in data.items()},
            answer,
        )

    def submit(self, request: EditRequest) -> str:
        self._check_protocol()
        body = wire.encode_request(request)
        answer = self._json("POST", "/v1/jobs", body, wire.CONTENT_TYPE)
        return self._parse("submit", lambda data: str(data["job_id"]), answer)

    def cancel(self, job_id: str) -> None:
        self._json("POST", f"/v1/jobs/{urllib.parse.quote(job_id)}/cancel")

    def status(self, job_id: str, preview_after: int = -1, revision: int = 0) -> JobStatus:
        path = f"/v1/jobs/{urllib.parse.quote(job_id)}?preview_after={preview_after}"
        if revision:  # the server answers when the job changes, or after STATUS_WAIT_SECONDS
            path += f"&revision={revision}&wait={STATUS_WAIT_SECONDS}"
        body = self._exchange("GET", path)
        try:
            return wire.decode_status(body)
        except (InvalidRequest, ValueError, KeyError, TypeError) as error:
            raise self._malformed("job status", error) from None

    def _check_protocol(self) -> None:
        """Refuse to send jobs to a server that speaks another protocol version: the two would
        misread each other's envelopes. The server's health is asked once, then remembered."""
        health = self._server_health or self.health()
        if health.protocol != PROTOCOL_VERSION:
            raise InlayerError(
                f"This plug-in and the Inlayer server at {self.url} come from different "
                f"versions of Inlayer (protocol {PROTOCOL_VERSION} here, {health.protocol} on "
                f"the server, which is Inlayer {health.version}). Install the plug-ins that "
                "match the server with `inlayer install-plugins` and restart the editor; if "
                "you have just updated Inlayer, restart the server (`inlayer serve`) too."
            )

    def wait(
        self,
        job_id: str,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        poll_interval: float = 0.1,
    ) -> EditResult:
        """As `Client.wait`, riding out short connection drops (`reconnect_seconds`)."""
        give_up_at: float | None = None
        while True:
            try:
                return super().wait(job_id, on_progress, cancel, poll_interval)
            except _ServerGone:
                raise ConnectionFailed(
                    f"The Inlayer server at {self.url} stopped while running the edit (did it "
                    "crash or quit?). Start it again with `inlayer serve` and retry."
                ) from None
            except _JobUnknown:
                raise ConnectionFailed(
                    f"The Inlayer server at {self.url} no longer knows this edit (it restarted, "
                    "or the result expired). Run the edit again."
                ) from None
            except _ConnectionDropped as error:
                now = time.monotonic()
                give_up_at = give_up_at or now + self.reconnect_seconds
                if now >= give_up_at:
                    raise ConnectionFailed(
                        f"Lost the connection to the Inlayer server at {self.url} while it ran "
                        f"the edit, for {self.reconnect_seconds:g} s ({error.reason}). The "
                        f"result stays on the server for a while: job id {job_id}."
                    ) from None
                time.sleep(min(poll_interval * 5, 1.0))

    # ---- one exchange ------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return kind(self._host, self._port, timeout=self.timeout)

    def _exchange(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> bytes:
        try:
            return self._exchange_once(method, path, body, content_type)
        except _ServerGone:
            if not self._follow_restarted_server():
                raise
            return self._exchange_once(method, path, body, content_type)

    def _exchange_once(
        self, method: str, path: str, body: bytes | None, content_type: str
    ) -> bytes:
        headers = {"Accept": "application/json, " + wire.CONTENT_TYPE}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connection = self._connection()
        try:
            connection.request(method, self._base_path + path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except ConnectionRefusedError:
            raise _ServerGone(
                f"The Inlayer server is not running at {self.url}: start it with `inlayer serve`."
            ) from None
        except TimeoutError:
            raise _ConnectionDropped(
                f"The Inlayer server at {self.url} did not answer within {self.timeout:g} s.",
                "no answer",
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise _ConnectionDropped(
                f"Lost the connection to the Inlayer server at {self.url} ({error!r}).",
                repr(error),
            ) from None
        finally:
            connection.close()
        if response.status >= 400:
            raise self._error(response.status, response.getheader("Retry-After"), data)
        return data

    def _json(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> Any:
        data = self._exchange(method, path, body, content_type)
        try:
            return json.loads(data)
        except ValueError as error:
            raise self._malformed(path, error) from None

    def _parse(self, what: str, parse: Any, data: Any) -> Any:
        try:
            return parse(data)
        except (KeyError, TypeError, ValueError) as error:
            raise self._malformed(what, error) from None

    def _malformed(self, what: str, error: Exception) -> InlayerError:
        return InlayerError(
            f"The server at {self.url} sent a {what} answer Inlayer cannot read ({error}); "
            "is it an Inlayer server of the same version as this plug-in?"
        )

    def _error(self, status: int, retry_after: str | None, data: bytes) -> InlayerError:
        try:
            answer = json.loads(data)
            detail, code = str(answer["detail"]), str(answer.get("code", ""))
            field_name = str(answer.get("field") or "")
            message = str(answer.get("message", detail))  # detail without the field it names
        except (ValueError, KeyError, TypeError):
            detail = message = data[:200].decode("utf-8", "replace")
            code, field_name = "", ""
        if status == 401:
            if not self.token:
                return AuthenticationFailed(
                    f"No token for the Inlayer server at {self.url}: start it once with "
                    f"`inlayer serve` (it writes {paths.token_path()}) or set {TOKEN_ENV}."
                )
            return AuthenticationFailed(
                f"The Inlayer server at {self.url} refused the token from {self._token_source}: "
                f"use that server's token (its {paths.token_path().name} file, or {TOKEN_ENV}), "
                "or one its administrator made for you (`inlayer token add NAME`)."
            )
        if status == 429:
            wait = retry_after or "a few"
            return ServerBusy(
                f"The Inlayer server is busy with other edits; try again in {wait} s.",
                retry_after=int(retry_after) if (retry_after or "").isdigit() else 1,
            )
        if status == 404 and code == "job_not_found":
            return _JobUnknown(message)
        if code:
            return error_from(code, message, field_name)
        return InlayerError(
            f"The server at {self.url} answered HTTP {status}: {detail} (is it an Inlayer server?)"
        )


class _ServerGone(ConnectionFailed):
    """Nothing listens at the URL: the server is not running (or died)."""


class _ConnectionDropped(ConnectionFailed):
    """The connection broke or timed out: the server may still be there."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _JobUnknown(InlayerError):
    code = "job_not_found"


def connect() -> Client:
    """The client a plug-in uses: HTTP, unless INLAYER_TRANSPORT=inprocess."""
    transport = os.environ.get(TRANSPORT_ENV, "http").strip().lower()
    if transport == "inprocess":
        # The in-process client needs torch and the whole core: it is not part of this
        # standard-library folder, so a plug-in's copy of the client cannot import it.
        try:
            from inlayer.core.inprocess import InProcessClient
        except ImportError as error:
            raise InlayerError(
                f"This Python cannot run Inlayer's core in-process ({error}). Start the server "
                f"with `inlayer serve` and unset {TRANSPORT_ENV}."
            ) from None
        return InProcessClient()
    if transport not in ("", "http"):
        raise InlayerError(f"{TRANSPORT_ENV}={transport!r} is unknown: use http or inprocess.")
    return HttpClient()
