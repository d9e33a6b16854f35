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
from typing import TYPE_CHECKING

from inlayer.core.client import paths
from inlayer.core.client.protocol import MAX_PIXELS
from inlayer.core.command_line import add_model_options, settings_from

from .auth import WILDCARD_HOSTS, allowed_hosts, load_or_create_token
from .replicas import LOCAL_BACKEND, RAY_BACKEND, describe_local
from .user_tokens import UserTokens

if TYPE_CHECKING:
    from inlayer.core.models import ModelRegistry
    from inlayer.core.settings import Settings

    from .ray_backend import RayBackend

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
    add_model_options(
        parser,
        device=True,
        more_backends=(RAY_BACKEND,),
        more_backends_help=", or ray (the engine in Ray Serve replicas over this machine's or a "
        "Ray cluster's GPUs, each computing as config.ini says; needs inlayer[ray])",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="with --backend ray: the Ray cluster to join (auto, or HEAD:6379; run the server on "
        "a node of the cluster); "
        "default: start a Ray instance on this machine",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="with --backend ray: engine replicas (default: one per GPU, else one on the CPU)",
    )
    parser.add_argument(
        "--gpus-per-replica",
        type=float,
        default=None,
        metavar="F",
        help="with --backend ray: GPUs each replica takes (default: 1 where there are GPUs, "
        "else 0); a fraction shares a GPU",
    )
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
    parser.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        metavar="FILE",
        help="serve HTTPS with this certificate (PEM; with --tls-key); needed to listen "
        "beyond 127.0.0.1 unless --insecure",
    )
    parser.add_argument(
        "--tls-key", type=Path, default=None, metavar="FILE", help="the certificate's key (PEM)"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="listen beyond 127.0.0.1 over plain HTTP (tokens and images cross the network "
        "unencrypted): only behind a TLS reverse proxy on the same machine, or on a network "
        "you trust",
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


def _url(host: str, port: int, tls: bool = False) -> str:
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    scheme = "https" if tls else "http"
    return f"{scheme}://[{shown}]:{port}" if ":" in shown else f"{scheme}://{shown}:{port}"


def _check_tls(args: argparse.Namespace, host: str) -> bool:
    """Whether the server speaks HTTPS. Beyond loopback it must, unless --insecure says
    otherwise: a token sent in plain HTTP over a network can be read by anyone on the way."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise SystemExit("inlayer serve: --tls-cert and --tls-key go together; give both")
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not path.is_file():
            raise SystemExit(f"inlayer serve: {option}: {path} is not a file")
    tls = args.tls_cert is not None
    if host not in LOOPBACK_ADDRESSES and not tls and not args.insecure:
        raise SystemExit(
            f"inlayer serve: listening on {host} lets other machines reach the server, and over "
            "plain HTTP they would send their token unencrypted. Give a certificate "
            "(--tls-cert FILE --tls-key FILE), or put a TLS reverse proxy in front and pass "
            "--insecure (see docs/remote.md), or listen on 127.0.0.1."
        )
    return tls


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
    jobs_backend = RAY_BACKEND if args.backend == RAY_BACKEND else LOCAL_BACKEND
    if jobs_backend == RAY_BACKEND:
        args.backend = None  # the replicas compute with config.ini's backend
    elif args.ray_address or args.replicas is not None or args.gpus_per_replica is not None:
        raise SystemExit(
            "inlayer serve: --ray-address, --replicas and --gpus-per-replica go with --backend ray"
        )
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
    tls = _check_tls(args, host)
    token = load_or_create_token()
    if host not in LOOPBACK_ADDRESSES:
        banner = "!" * 78
        plain = (
            ""
            if tls
            else "It speaks plain HTTP (--insecure): tokens and images cross the network\n"
            "unencrypted.\n"
        )
        print(
            f"\n{banner}\nWARNING: Inlayer listens on {host}: other machines can reach it.\n"
            f"{plain}Anyone with a token can run jobs on this computer. Keep the tokens secret,\n"
            f"and use this only on a network you trust.\n{banner}\n",
            file=sys.stderr,
        )
    sock = _bind(host, port)
    port = sock.getsockname()[1]

    registry = settings.model_registry()
    ray_backend = None
    if jobs_backend == RAY_BACKEND:
        ray_backend = _start_ray(settings, registry, args)
        queue = JobQueue(
            ray_backend.runner, workers=ray_backend.replica_count, max_queued=args.queue_size
        )
        describe_replicas = ray_backend.describe
        device = ", ".join(sorted({replica.device for replica in describe_replicas()}))
    else:
        engine = Engine(registry)
        queue = JobQueue(lambda: engine, max_queued=args.queue_size)
        describe_replicas = describe_local(
            engine.device, registry.loaded_models, lambda: queue.running() is not None
        )
        device = engine.device
    max_body = (
        int(args.max_body_mb * 2**20)
        if args.max_body_mb is not None
        else args.max_pixels * 5 + 16 * 2**20  # RGBA + mask + headers
    )
    service = Service(
        queue,
        list_models=registry.list,
        default_model=registry.default_for,
        list_add_ons=registry.add_ons,
        device=device,
        limits=Limits(max_body_bytes=max_body, max_pixels=args.max_pixels),
        content_credentials=settings.content_credentials,
        a1111_options_path=paths.config_dir() / "a1111-options.json",
        list_image_models=ModelSource(registry).names_by_field,
        describe_replicas=describe_replicas,
        backend=jobs_backend,
    )
    app = create_app(
        service,
        token=token,
        hosts=allowed_hosts(host, port),
        a1111_without_token=a1111_without_token,
        user_tokens=UserTokens(),
    )
    url = _url(host, port, tls)
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
            ssl_certfile=args.tls_cert,
            ssl_keyfile=args.tls_key,
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
        if ray_backend is not None:
            ray_backend.stop()
    return 0


def _start_ray(settings: Settings, registry: ModelRegistry, args: argparse.Namespace) -> RayBackend:
    """The Ray Serve replicas, up and answering; a clear exit when Ray is missing or the
    cluster cannot hold them."""
    try:
        from .ray_backend import RayBackend
    except ImportError as error:
        raise SystemExit(
            f"inlayer serve: --backend ray needs Ray Serve ({error}); install it with "
            "`pip install inlayer[ray]`"
        ) from None
    from inlayer.core.client.protocol import InlayerError

    backend = RayBackend(
        settings,
        registry,
        address=args.ray_address,
        replicas=args.replicas,
        gpus_per_replica=args.gpus_per_replica,
    )
    try:
        backend.start()
    except InlayerError as error:
        backend.stop()
        raise SystemExit(f"inlayer serve: {error}") from None
    return backend


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
