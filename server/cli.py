"""`inlayer serve` (also `python -m inlayer.server`): start the HTTP server over the core.

On start it writes the token (if INLAYER_TOKEN is unset and none exists yet) and
config_dir()/server.json {"url", "pid"}, which the plug-ins' client reads; it removes server.json
when it stops.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from inlayer.core.client import paths
from inlayer.core.client.protocol import MAX_PIXELS
from inlayer.core.command_line import add_model_options, settings_from

from .auth import WILDCARD_HOSTS, allowed_hosts, load_or_create_token

log = logging.getLogger("inlayer.server")

LOOPBACK_ADDRESSES = ("127.0.0.1", "::1", "localhost")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=None,
        help=f"address to listen on (default: config.ini, else {paths.DEFAULT_HOST}, this "
        "machine only); anything else exposes the server to the network",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"default: config.ini, else {paths.DEFAULT_PORT}; 0 = any free port",
    )
    add_model_options(parser, device=True)
    parser.add_argument(
        "--queue-size", type=int, default=8, help="jobs that may wait (default %(default)s)"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        help="largest image accepted, in pixels (default %(default)s)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=None,
        help="largest request body in MiB (default: what --max-pixels needs)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(
            f"inlayer serve: cannot listen on {host}:{port} ({error.strerror}); is another "
            "server running there? Pick another with --port."
        ) from None
    sock.listen(128)
    return sock


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _write_server_info(url: str) -> Path:
    path = paths.server_info_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n", encoding="utf-8")
    return path


def _remove_server_info(path: Path) -> None:
    """Remove server.json unless another server has written its own since."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from inlayer.core.engine import Engine
    from inlayer.core.restoration_models import ModelSource
    from inlayer.core.settings import SettingsError

    from .app import create_app
    from .jobs import JobQueue
    from .service import Limits, Service

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from(args)
    except SettingsError as error:
        raise SystemExit(f"inlayer serve: {error}") from None
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port

    a1111_without_token = settings.a1111_auth == "none"
    if a1111_without_token and host not in LOOPBACK_ADDRESSES:
        raise SystemExit(
            f"inlayer serve: a1111_auth = none lets any program reach the AUTOMATIC1111 routes "
            f"without the token, so it works only while the server listens on 127.0.0.1, not "
            f"on {host}. Use the token (a1111_auth = token) or listen on 127.0.0.1."
        )
    token = load_or_create_token()
    if host not in LOOPBACK_ADDRESSES:
        banner = "!" * 78
        print(
            f"\n{banner}\nWARNING: Inlayer listens on {host}: other machines can reach it.\n"
            "Anyone with the token can run jobs on this computer. Keep the token secret, and\n"
            f"use this only on a network you trust.\n{banner}\n",
            file=sys.stderr,
        )
    sock = _bind(host, port)
    port = sock.getsockname()[1]

    registry = settings.model_registry()
    engine = Engine(registry)
    max_body = (
        int(args.max_body_mb * 2**20)
        if args.max_body_mb is not None
        else args.max_pixels * 5 + 16 * 2**20  # RGBA + mask + headers
    )
    service = Service(
        JobQueue(lambda: engine, max_queued=args.queue_size),
        list_models=registry.list,
        default_model=registry.default_for,
        list_add_ons=registry.add_ons,
        device=engine.device,
        limits=Limits(max_body_bytes=max_body, max_pixels=args.max_pixels),
        content_credentials=settings.content_credentials,
        a1111_options_path=paths.config_dir() / "a1111-options.json",
        list_image_models=ModelSource(registry).names_by_field,
    )
    app = create_app(
        service,
        token=token,
        hosts=allowed_hosts(host, port),
        a1111_without_token=a1111_without_token,
    )
    url = _url(host, port)
    info_path = _write_server_info(url)
    print(
        f"Inlayer serves at {url} (API docs: {url}/docs; token: INLAYER_TOKEN or "
        f"{paths.token_path()})",
        file=sys.stderr,
        flush=True,
    )
    if a1111_without_token:
        print(
            "The AUTOMATIC1111 routes (/sdapi/v1) answer without the token (a1111_auth = none): "
            "any program on this computer can run jobs through them.",
            file=sys.stderr,
            flush=True,
        )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=args.log_level,
            access_log=args.log_level == "debug",
            timeout_graceful_shutdown=5,
        )
    )
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again for the previous
    # handler: make that a normal exit, so that server.json is removed and the status is 0.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _exit_quietly)
    try:
        server.run(sockets=[sock])
    except SystemExit:
        pass
    finally:
        _remove_server_info(info_path)
    return 0


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `inlayer serve` to the `inlayer` command (core/cli.py)."""
    parser = subparsers.add_parser(
        "serve", help="run the local server the editor plug-ins talk to", description=__doc__
    )
    add_arguments(parser)
    parser.set_defaults(handler=serve)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inlayer serve", description=__doc__)
    add_arguments(parser)
    return serve(parser.parse_args(argv))
