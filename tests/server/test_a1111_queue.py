"""A full queue: the A1111 generate routes wait for room, as AUTOMATIC1111's callers wait, and
stop waiting when their client hangs up; /v1 answers 429 with Retry-After (its clients retry)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

from inlayer.core.client import wire
from tests.fixtures.server import ServerProcess
from tests.server.helpers import Answer, exchange, inpaint_request, long_request, post_json

A1111_TXT2IMG = {"prompt": "a boat", "steps": 2, "width": 32, "height": 32, "seed": 3}


def submit_v1(server: ServerProcess, **fields: object) -> Answer:
    return exchange(server, "POST", "/v1/jobs", wire.encode_request(inpaint_request(**fields)))


def full_queue(server: ServerProcess) -> tuple[str, str]:
    """The running job and the one waiting job the strict server's queue holds, once idle."""
    client = server.client()
    deadline = time.monotonic() + 60
    while client.health().queue_length and time.monotonic() < deadline:
        time.sleep(0.1)  # an earlier test's cancelled job still finishing its step
    running = client.submit(long_request())
    while client.status(running).state.value == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)  # the worker takes it: the one waiting place is free again
    return running, client.submit(inpaint_request())


def hang_up_while_waiting(server: ServerProcess) -> None:
    """Send an A1111 txt2img call and close the connection without reading the answer."""
    body = json.dumps(A1111_TXT2IMG).encode()
    credentials = base64.b64encode(f"user:{server.token}".encode()).decode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(
            b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Basic {credentials}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(0.5)  # the call is waiting for room now


def test_a1111_waits_for_room_where_v1_answers_429(strict_server: ServerProcess) -> None:
    client = strict_server.client()
    running, queued = full_queue(strict_server)
    answers: list[Answer] = []
    try:
        busy = submit_v1(strict_server)
        assert busy.status == 429
        headers = {name.lower(): value for name, value in busy.headers.items()}
        assert int(headers["retry-after"]) >= 1
        assert busy.json()["code"] == "server_busy"

        waiter = threading.Thread(
            target=lambda: answers.append(
                post_json(strict_server, "/sdapi/v1/txt2img", A1111_TXT2IMG)
            )
        )
        waiter.start()
        time.sleep(1.0)
        assert waiter.is_alive() and not answers  # waiting, not refused
        assert submit_v1(strict_server).status == 429  # the waiting call holds no place
        client.cancel(queued)  # room: the waiting call goes in, behind the running job
        client.cancel(running)
        waiter.join(60)
        assert not waiter.is_alive()
    finally:
        client.cancel(queued)
        client.cancel(running)
    assert answers[0].status == 200, answers[0].body[:300]
    assert len(answers[0].json()["images"]) == 1


def test_a_call_whose_client_hangs_up_while_waiting_takes_no_place(
    strict_server: ServerProcess,
) -> None:
    client = strict_server.client()
    running, queued = full_queue(strict_server)
    try:
        hang_up_while_waiting(strict_server)
        client.cancel(queued)  # room that a waiting call would take
        time.sleep(0.5)
        # The room is still there: the call that hung up queued nothing.
        accepted = submit_v1(strict_server)
        assert accepted.status == 202, accepted.body[:300]
        client.cancel(accepted.json()["job_id"])
    finally:
        client.cancel(queued)
        client.cancel(running)
    assert client.health().version  # the server is up
