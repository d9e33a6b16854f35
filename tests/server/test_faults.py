"""Faults a real server meets and survives: a client that hangs up mid-upload or mid-job, running
out of memory mid-run (a process memory limit, where a GPU is absent), and a crash that leaves
its server.json behind."""

from __future__ import annotations

import http.client
import json
import re
import resource
import socket
import time
from pathlib import Path

import pytest

from inlayer.core.client import wire
from inlayer.core.client.http_client import connect
from inlayer.core.client.protocol import ConnectionFailed, EditRequest, Mode, OutOfMemory
from tests.fixtures.models import TINY_SD15
from tests.fixtures.server import ServerProcess, start_server
from tests.server.helpers import inpaint_request


def _status_value(pid: int, key: str) -> int:
    """A /proc/PID/status size in bytes (VmSize, VmRSS)."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    assert match, key
    return int(match.group(1)) * 1024


def test_a_client_that_hangs_up_mid_upload_leaves_the_server_whole(
    inlayer_server: ServerProcess,
) -> None:
    body = wire.encode_request(inpaint_request(size=128))
    with socket.create_connection(("127.0.0.1", inlayer_server.port), timeout=30) as sock:
        head = (
            f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{inlayer_server.port}\r\n"
            f"Authorization: Bearer {inlayer_server.token}\r\n"
            f"Content-Type: {wire.CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: len(body) // 3])
    # The half-sent job was never queued, and the next one runs.
    client = inlayer_server.client(timeout=60)
    assert client.health().queue_length == 0
    assert len(client.run(inpaint_request()).images) == 1


def test_a_client_that_hangs_up_mid_job_leaves_the_server_whole(
    inlayer_server: ServerProcess,
) -> None:
    """An A1111 call answers only when its job is done; its caller leaves before that."""
    payload = json.dumps(
        {"prompt": "x", "width": 64, "height": 64, "steps": 40, "batch_size": 4,
         "override_settings": {"sd_model_checkpoint": TINY_SD15}}
    ).encode()  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", inlayer_server.port, timeout=30)
    connection.request(
        "POST",
        "/sdapi/v1/txt2img",
        payload,
        {"Authorization": f"Bearer {inlayer_server.token}", "Content-Type": "application/json"},
    )
    client = inlayer_server.client(timeout=60)
    deadline = time.monotonic() + 60
    while client.health().queue_length == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # until the job is in the queue
    connection.close()  # hang up without reading the answer
    assert len(client.run(inpaint_request()).images) == 1


def test_running_out_of_memory_mid_run_fails_that_job_and_the_next_works(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """A memory limit on the server process plays a machine without enough memory: a big job
    fails with a clear message, its memory is given back, and a small job runs after it."""
    server = start_server(tmp_path / "config", tiny_models_dir)
    try:
        client = server.client(timeout=120)
        # The big job's model loaded, as every job needs: the limit below leaves no room to load.
        client.run(inpaint_request(steps=1, model=TINY_SD15))
        pid = server.process.pid
        limit = _status_value(pid, "VmSize") + 150 * 2**20
        resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
        big = EditRequest(
            Mode.TXT2IMG, width=2048, height=2048, count=16, steps=1, prompt="x", model=TINY_SD15
        )
        with pytest.raises(OutOfMemory, match=r"out of memory on cpu .* close other programs"):
            client.run(big)
        assert len(client.run(inpaint_request(steps=1, model=TINY_SD15)).images) == 1
        assert server.process.poll() is None
    finally:
        server.kill()


def test_a_crashed_server_is_told_apart_and_a_restart_is_found(
    tiny_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a crash (SIGKILL), server.json still names the dead server: the plug-ins' client
    says it is not running; once it runs again on another port, a new client finds it, and so
    does one made before the crash (Krita's docker keeps its client for the whole session)."""
    config = tmp_path / "config"
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(config))
    for variable in ("INLAYER_SERVER", "INLAYER_TOKEN", "INLAYER_TRANSPORT"):
        monkeypatch.delenv(variable, raising=False)
    server = start_server(config, tiny_models_dir)
    long_lived = connect()
    assert long_lived.health().queue_length == 0
    server.kill()
    assert (config / "server.json").exists()  # stale: nobody cleaned up after the crash

    for client in (connect(), long_lived):
        with pytest.raises(ConnectionFailed, match=r"not running at .*: start it with `inlayer"):
            client.run(inpaint_request(steps=1))

    again = start_server(config, tiny_models_dir)
    try:
        assert again.port != server.port
        assert len(connect().run(inpaint_request(steps=1)).images) == 1
        assert len(long_lived.run(inpaint_request(steps=1)).images) == 1
        assert long_lived.url == again.url
    finally:
        again.kill()
