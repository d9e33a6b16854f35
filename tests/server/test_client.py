"""The client against a real server process: results, progress, previews, cancel, reconnect,
a server killed mid-job, concurrent clients, and what the server writes on start and stop."""

from __future__ import annotations

import itertools
import json
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from inlayer.core.client import http_client
from inlayer.core.client.http_client import HttpClient, connect
from inlayer.core.client.protocol import (
    PROTOCOL_VERSION,
    AuthenticationFailed,
    Cancelled,
    ConnectionFailed,
    EditRequest,
    InlayerError,
    InvalidRequest,
    JobState,
    Mode,
    Progress,
    ServerBusy,
    ServerHealth,
)
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING
from tests.fixtures.server import ServerProcess, start_server
from tests.server.helpers import (
    box_mask,
    inpaint_request,
    long_request,
    pattern_image,
    wait_until,
)


def test_health_and_models(inlayer_server: ServerProcess) -> None:
    client = inlayer_server.client()
    health = client.health()
    assert health.device == "cpu"
    assert health.queue_length == 0
    names = {m.name for m in client.models()}
    assert {TINY_SD15, TINY_SD15_INPAINTING} <= names


def test_connect_finds_the_server_through_its_config_folder(
    inlayer_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("INLAYER_SERVER", "INLAYER_TOKEN", "INLAYER_TRANSPORT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(inlayer_server.config_dir))
    client = connect()
    assert isinstance(client, HttpClient)
    assert client.url == inlayer_server.url
    assert client.token == inlayer_server.token
    assert client.models()  # authenticated with the token from the file


def test_token_file_is_owner_only(inlayer_server: ServerProcess) -> None:
    token_file = inlayer_server.config_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == inlayer_server.token
    info = json.loads((inlayer_server.config_dir / "server.json").read_text())
    assert info == {"url": inlayer_server.url, "pid": inlayer_server.process.pid}


def test_fill_needs_no_model_and_touches_only_the_mask_bounds(
    inlayer_server: ServerProcess,
) -> None:
    image = pattern_image(96, 64)
    request = EditRequest(
        mode=Mode.FILL, image=image, mask=box_mask(96, 64, 40, 20, 16, 12), grow=0, feather=2
    )
    result = inlayer_server.client().run(request)
    (generated,) = result.images
    # The result covers the mask bounds: the box grown by the feather.
    assert (generated.x, generated.y) == (38, 18)
    assert (generated.image.width, generated.image.height) == (20, 16)
    assert (result.canvas_width, result.canvas_height) == (96, 64)


def test_inpaint_reports_progress_and_previews(inlayer_server: ServerProcess) -> None:
    seen: list[Progress] = []
    request = inpaint_request(steps=3, count=2, preview_interval=1, model=TINY_SD15)
    result = inlayer_server.client().run(request, on_progress=seen.append, poll_interval=0.01)
    assert len(result.images) == 2
    assert [g.seed for g in result.images] == [1, 2]
    assert result.model == TINY_SD15
    assert seen, "no progress reported"
    assert seen[-1].step == seen[-1].total  # the steps of both variations, all done
    assert all(a.step <= b.step for a, b in itertools.pairwise(seen))
    previews = [p.preview for p in seen if p.preview is not None]
    assert previews, "no preview reported"
    assert all(max(p.width, p.height) <= 256 for p in previews)
    assert {p.variation for p in seen} <= {0, 1}


def test_same_seed_same_pixels_over_http(inlayer_server: ServerProcess) -> None:
    client = inlayer_server.client()
    first = client.run(inpaint_request(seed=7))
    second = client.run(inpaint_request(seed=7))
    other = client.run(inpaint_request(seed=8))
    assert first.images[0].image.data == second.images[0].image.data
    assert first.images[0].image.data != other.images[0].image.data


def test_cancel_stops_the_job_and_the_server_goes_on(inlayer_server: ServerProcess) -> None:
    client = inlayer_server.client()
    cancel = threading.Event()

    def cancel_on_first_step(progress: Progress) -> None:
        cancel.set()

    with pytest.raises(Cancelled):
        client.run(long_request(), on_progress=cancel_on_first_step, cancel=cancel)
    assert client.health().queue_length == 0
    assert client.run(inpaint_request()).images


def test_cancel_a_queued_job(inlayer_server: ServerProcess) -> None:
    client = inlayer_server.client()
    running = client.submit(long_request())
    queued = client.submit(inpaint_request())
    assert client.status(queued).queue_position >= 1
    client.cancel(queued)
    assert client.status(queued).state == JobState.CANCELLED
    client.cancel(running)
    with pytest.raises(Cancelled):
        client.wait(running)


def test_another_client_fetches_the_result_after_the_first_is_gone(
    inlayer_server: ServerProcess,
) -> None:
    job_id = inlayer_server.client().submit(inpaint_request(steps=3))
    # The submitting client is gone (e.g. the editor restarted); a new one asks by job id.
    result = inlayer_server.client().wait(job_id)
    assert result.images
    again = inlayer_server.client().status(job_id)
    assert again.state == JobState.DONE
    assert again.result is not None
    assert again.result.images[0].image.data == result.images[0].image.data


def test_a_status_request_waits_for_the_jobs_next_change(
    inlayer_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked with the revision it has, the server answers once the job moves on: a queued job
    moves when the job before it ends. A wait the server missed would outlast the client's
    timeout; one it ignored would answer the same revision."""
    monkeypatch.setattr(http_client, "STATUS_WAIT_SECONDS", 25.0)
    client = inlayer_server.client(timeout=15)
    blocker = client.submit(long_request())
    queued = client.submit(inpaint_request())
    seen = client.status(queued)
    assert seen.state == JobState.QUEUED and seen.revision > 0
    ending = threading.Timer(1.0, client.cancel, [blocker])
    ending.start()
    try:
        moved = client.status(queued, revision=seen.revision)
    finally:
        ending.join()
    assert moved.revision > seen.revision
    assert moved.state != JobState.QUEUED or moved.queue_position < seen.queue_position
    done = client.wait(queued)
    assert done.images


def test_a_cancel_goes_out_while_a_status_question_waits(
    inlayer_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queued job behind a long one does not change: its follower's question waits on the
    server. Cancel pressed meanwhile still goes out at once, and the follower learns of it."""
    monkeypatch.setattr(http_client, "STATUS_WAIT_SECONDS", 25.0)
    client = inlayer_server.client(timeout=15)  # a cancel held back for the wait times out
    blocker = client.submit(long_request())
    cancel = threading.Event()
    pressing = threading.Timer(1.0, cancel.set)
    pressing.start()
    try:
        with pytest.raises(Cancelled):
            client.run(inpaint_request(), cancel=cancel)
    finally:
        pressing.join()
        client.cancel(blocker)
    with pytest.raises(Cancelled):
        client.wait(blocker)


def test_a_wait_with_nothing_new_answers_the_same_state(inlayer_server: ServerProcess) -> None:
    client = inlayer_server.client()
    job_id = client.submit(inpaint_request())
    client.wait(job_id)
    final = client.status(job_id)
    again = client.status(job_id, revision=final.revision)  # waits STATUS_WAIT_SECONDS
    assert (again.state, again.revision) == (JobState.DONE, final.revision)
    assert again.result is not None


def test_following_a_job_asks_once_per_change_not_in_a_tight_loop(
    inlayer_server: ServerProcess,
) -> None:
    """Even with no pause between questions (poll_interval 0), each answer brings news or
    ends a server-side wait of STATUS_WAIT_SECONDS."""
    answers: list[int] = []

    class CountingClient(HttpClient):
        def status(self, job_id: str, preview_after: int = -1, revision: int = 0):
            status = super().status(job_id, preview_after, revision)
            answers.append(status.revision)
            return status

    client = CountingClient(inlayer_server.url, inlayer_server.token)
    started = time.monotonic()
    assert client.run(inpaint_request(steps=8), poll_interval=0).images
    seconds = time.monotonic() - started
    repeats = sum(1 for a, b in itertools.pairwise(answers) if a == b)
    assert repeats <= 1 + seconds / http_client.STATUS_WAIT_SECONDS
    assert answers == sorted(answers)


def test_health_and_status_answer_while_a_job_runs(inlayer_server: ServerProcess) -> None:
    client = inlayer_server.client()
    job_id = client.submit(long_request())
    try:
        while client.status(job_id).step == 0:
            time.sleep(0.01)
        for _ in range(5):
            assert client.health().queue_length == 1
            status = client.status(job_id)
            assert status.state == JobState.RUNNING
            assert 0 < status.step < status.total
    finally:
        client.cancel(job_id)


def test_concurrent_clients_all_get_their_results(inlayer_server: ServerProcess) -> None:
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            results[seed] = inlayer_server.client().run(inpaint_request(seed=seed))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert sorted(results) == [0, 1, 2, 3]
    assert len({r.images[0].image.data for r in results.values()}) == 4


def test_invalid_request_names_the_field(inlayer_server: ServerProcess) -> None:
    client = inlayer_server.client()
    with pytest.raises(InvalidRequest) as raised:
        client.submit(inpaint_request(model=str(Path("/") / "etc" / "passwd")))
    assert raised.value.field == "model"
    with pytest.raises(InvalidRequest) as raised:
        client.submit(inpaint_request(model="no-such-model"))
    assert raised.value.field == "model"
    assert raised.value.message.startswith("'no-such-model' is not a model")
    assert str(raised.value) == f"model: {raised.value.message}"


def test_wrong_token_is_a_clear_error(inlayer_server: ServerProcess) -> None:
    with pytest.raises(AuthenticationFailed, match="refused the token"):
        HttpClient(inlayer_server.url, "wrong").models()
    with pytest.raises(AuthenticationFailed):
        HttpClient(inlayer_server.url, "wrong").run(inpaint_request())


def test_no_server_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("INLAYER_SERVER", raising=False)
    client = HttpClient("http://127.0.0.1:9", "token")  # port 9 (discard): nothing listens
    expected = r"not running at http://127\.0\.0\.1:9: start it with `inlayer serve`"
    with pytest.raises(ConnectionFailed, match=expected):
        client.health()


def test_timeout_is_a_clear_error() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections but never answers
    try:
        client = HttpClient(f"http://127.0.0.1:{listener.getsockname()[1]}", "t", timeout=0.3)
        with pytest.raises(ConnectionFailed, match=r"did not answer within 0.3 s"):
            client.health()
    finally:
        listener.close()


def test_queue_full_is_server_busy_with_retry_after(strict_server: ServerProcess) -> None:
    client = strict_server.client()
    # A job an earlier test cancelled holds the worker until its next step: start from an idle
    # server, and count on the long job running (not queued) before filling the queue.
    wait_until(lambda: client.health().queue_length == 0)
    running = client.submit(long_request())
    try:
        wait_until(lambda: client.status(running).state == JobState.RUNNING)
        queued = client.submit(inpaint_request())
        with pytest.raises(ServerBusy, match="busy") as raised:
            client.submit(inpaint_request())
        assert raised.value.retry_after >= 1
        client.cancel(queued)
    finally:
        client.cancel(running)


def test_server_killed_mid_job_is_a_clear_error(tiny_models_dir: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path / "config", tiny_models_dir)
    client = server.client(reconnect_seconds=1.0)

    def kill_on_first_step(progress: Progress) -> None:
        server.kill()

    try:
        with pytest.raises(ConnectionFailed, match="stopped while running the edit"):
            client.run(long_request(), on_progress=kill_on_first_step)
    finally:
        server.kill()


def test_stopping_removes_server_json_and_keeps_the_token(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    server = start_server(tmp_path / "config", tiny_models_dir)
    token = server.token
    assert (server.config_dir / "server.json").exists()
    assert server.stop() == 0
    assert not (server.config_dir / "server.json").exists()
    # A second start reuses the stored token: plug-ins keep working across restarts.
    again = start_server(tmp_path / "config", tiny_models_dir)
    try:
        assert again.token == token
    finally:
        again.kill()


def test_in_process_client_runs_the_same_edit(
    inlayer_server: ServerProcess, tiny_models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inlayer.core.engine import Engine
    from inlayer.core.inprocess import InProcessClient
    from inlayer.core.models import ModelRegistry

    monkeypatch.setenv("INLAYER_TRANSPORT", "inprocess")
    assert isinstance(connect(), InProcessClient)
    local = InProcessClient(Engine(ModelRegistry([tiny_models_dir])))
    request = inpaint_request(seed=3, model=TINY_SD15)
    here = local.run(request)
    over_http = inlayer_server.client().run(request)
    # The same computation in another process: equal up to float rounding (thread counts).
    difference = np.abs(
        np.frombuffer(here.images[0].image.data, np.uint8).astype(int)
        - np.frombuffer(over_http.images[0].image.data, np.uint8)
    )
    assert difference.max() <= 2
    assert difference.mean() < 0.05
    # submit/wait in-process too, with progress
    seen: list[Progress] = []
    job_result = local.wait(local.submit(request), on_progress=seen.append, poll_interval=0.01)
    assert job_result.images[0].image.data == here.images[0].image.data
    assert seen


def test_a_failure_inside_the_engine_names_the_field(inlayer_server: ServerProcess) -> None:
    # Valid on its face, but int(steps × strength) = 0 steps: the engine refuses it.
    with pytest.raises(InvalidRequest) as raised:
        inlayer_server.client().run(inpaint_request(steps=2, strength=0.1))
    assert raised.value.field == "strength"
    assert not raised.value.message.startswith("strength")
    assert str(raised.value) == f"strength: {raised.value.message}"


class HealthCountingClient(HttpClient):
    """An HttpClient that counts how often it asks the server's health."""

    health_calls = 0

    def health(self) -> ServerHealth:
        self.health_calls += 1
        return super().health()


def test_a_compatible_server_is_asked_its_version_once(inlayer_server: ServerProcess) -> None:
    client = HealthCountingClient(inlayer_server.url, inlayer_server.token)
    assert client.run(inpaint_request(seed=1)).images
    assert client.run(inpaint_request(seed=2)).images
    assert client.health_calls == 1


def test_a_server_of_another_protocol_version_gets_no_jobs(
    inlayer_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plug-in installed from a newer Inlayer than the running server.
    monkeypatch.setattr(http_client, "PROTOCOL_VERSION", PROTOCOL_VERSION + 1)
    client = HealthCountingClient(inlayer_server.url, inlayer_server.token)
    for _ in range(2):  # refused each time, from the version it asked once
        with pytest.raises(InlayerError, match="inlayer install-plugins") as raised:
            client.run(inpaint_request(), poll_interval=0.01)
        assert f"protocol {PROTOCOL_VERSION + 1} here, {PROTOCOL_VERSION} on the server" in str(
            raised.value
        )
    assert client.health_calls == 1


def test_inlayer_serve_command_starts_the_same_server(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    server = start_server(
        tmp_path / "config", tiny_models_dir, command=("-m", "inlayer.core.cli", "serve")
    )
    try:
        assert {m.name for m in server.client().models()} >= {TINY_SD15}
    finally:
        server.kill()
