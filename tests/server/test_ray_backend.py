"""`inlayer serve --backend ray` on a local Ray instance on loopback with 2 CPU replicas and the
tiny models: the same /v1 API, jobs spread over the replicas, progress, previews and cancel
through Ray, a replica killed mid-job, health. One server (one Ray instance) for the module."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inlayer.core.client.protocol import (
    InlayerError,
    InvalidRequest,
    JobState,
    Progress,
    ServerBusy,
)
from tests.fixtures.models import TINY_SD15, TINY_SD15_SINGLE
from tests.fixtures.server import ServerProcess, start_server
from tests.server.helpers import decode_png, exchange, inpaint_request, long_request, post_json

pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install inlayer[ray])")

RAY_START_TIMEOUT = 300.0  # Ray, Serve and two replicas importing torch on a busy 2-core machine


@pytest.fixture(scope="module")
def ray_server(
    tiny_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # Stopped as Ctrl+C would: the server then stops the Ray instance it started.
    server = start_server(
        tmp_path_factory.mktemp("ray-config"),
        tiny_models_dir,
        "--backend",
        "ray",
        "--replicas",
        "2",
        start_timeout=RAY_START_TIMEOUT,
    )
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log()


def health(server: ServerProcess) -> dict:
    answer = exchange(server, "GET", "/v1/health", auth=None)
    assert answer.status == 200
    return answer.json()


def wait_for(condition, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_health_reports_both_replicas(ray_server: ServerProcess) -> None:
    report = health(ray_server)
    assert report["backend"] == "ray"
    assert report["replica_count"] == 2
    replicas = report["replicas"]
    assert len({r["replica"] for r in replicas}) == 2
    assert len({r["pid"] for r in replicas}) == 2 and os.getpid() not in {
        r["pid"] for r in replicas
    }
    assert all(r["device"] == "cpu" for r in replicas)


def test_concurrent_jobs_spread_over_both_replicas_and_match_the_local_backend(
    ray_server: ServerProcess, inlayer_server: ServerProcess
) -> None:
    requests = [inpaint_request(seed=seed, model=TINY_SD15) for seed in range(6)]
    results: dict[int, object] = {}
    busy_pids: set[int] = set()
    stop_watching = threading.Event()

    def watch_busy() -> None:
        while not stop_watching.is_set():
            busy_pids.update(r["pid"] for r in health(ray_server)["replicas"] if r["busy"])
            time.sleep(0.05)

    def run(index: int) -> None:
        results[index] = ray_server.client(timeout=120).run(requests[index])

    watcher = threading.Thread(target=watch_busy)
    watcher.start()
    clients = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(300)
    stop_watching.set()
    watcher.join()

    assert sorted(results) == list(range(len(requests)))
    # Both replicas ran jobs: both were seen busy, and both hold the model now.
    replicas = health(ray_server)["replicas"]
    assert len(busy_pids) == 2, f"jobs ran on {busy_pids} of {[r['pid'] for r in replicas]}"
    assert all(r["models"] == [TINY_SD15] and not r["busy"] for r in replicas)
    local = inlayer_server.client(timeout=120)
    for index in (0, 5):
        expected = local.run(requests[index])
        assert results[index].images[0].image.data == expected.images[0].image.data


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="reads /proc (Linux)")
def test_the_ray_instance_it_started_runs_with_less_bookkeeping(ray_server: ServerProcess) -> None:
    """The server started this Ray instance: Serve's control loop and the replicas' metrics run
    at the slower pace the server sets (server/ray_backend.py), which reaches Ray's processes
    through their environment."""
    from inlayer.server.ray_backend import LOCAL_SERVE_SETTINGS

    for replica in health(ray_server)["replicas"]:
        environment = Path(f"/proc/{replica['pid']}/environ").read_bytes().split(b"\0")
        for name, value in LOCAL_SERVE_SETTINGS.items():
            assert f"{name}={value}".encode() in environment, name


def test_progress_and_previews_come_through_ray(ray_server: ServerProcess) -> None:
    seen: list[Progress] = []
    request = inpaint_request(steps=3, count=2, preview_interval=1, model=TINY_SD15)
    result = ray_server.client(timeout=120).run(request, on_progress=seen.append)
    assert len(result.images) == 2
    assert [p.step for p in seen] == sorted(p.step for p in seen)
    assert seen[-1].step == seen[-1].total > 0
    previews = [p.preview for p in seen if p.preview is not None]
    assert previews and all(max(p.width, p.height) <= 256 for p in previews)


def test_cancel_reaches_the_replica_running_the_job(ray_server: ServerProcess) -> None:
    client = ray_server.client(timeout=60)
    job_id = client.submit(long_request(model=TINY_SD15))
    status = wait_for(lambda: (s := client.status(job_id)).step > 0 and s, "the job to start")
    assert status.state == JobState.RUNNING
    client.cancel(job_id)
    final = wait_for(
        lambda: (s := client.status(job_id)).state != JobState.RUNNING and s, "the cancel", 60
    )
    assert final.state == JobState.CANCELLED
    assert final.step < final.total
    # The replica is free again: it stopped the job rather than finishing it.
    wait_for(lambda: not any(r["busy"] for r in health(ray_server)["replicas"]), "idle replicas")
    assert len(client.run(inpaint_request(model=TINY_SD15)).images) == 1


def test_a_replica_killed_mid_job_fails_that_job_and_the_next_jobs_succeed(
    ray_server: ServerProcess,
) -> None:
    client = ray_server.client(timeout=60)
    job_id = client.submit(long_request(model=TINY_SD15))
    wait_for(lambda: client.status(job_id).step > 0, "the job to start")
    busy = wait_for(
        lambda: [r for r in health(ray_server)["replicas"] if r["busy"]], "a busy replica"
    )
    os.kill(busy[0]["pid"], signal.SIGKILL)
    final = wait_for(
        lambda: (s := client.status(job_id)).state != JobState.RUNNING and s, "the failure", 60
    )
    assert final.state == JobState.FAILED
    assert final.error_code == "replica_lost"
    assert "replica" in final.error and "stopped before it finished" in final.error
    assert str(busy[0]["pid"]) in final.error
    # The other replica goes on at once, and Serve replaces the dead one.
    for seed in range(3):
        assert len(client.run(inpaint_request(seed=seed, model=TINY_SD15)).images) == 1
    replaced = wait_for(
        lambda: (
            (pids := {r["pid"] for r in health(ray_server)["replicas"]})
            and len(pids) == 2
            and busy[0]["pid"] not in pids
        ),
        "a new replica",
        RAY_START_TIMEOUT,
    )
    assert replaced


def test_a_bad_request_fails_in_the_replica_with_its_field(ray_server: ServerProcess) -> None:
    # Valid on its face, but int(steps × strength) = 0 steps: the replica's engine refuses it.
    with pytest.raises(InvalidRequest) as raised:
        ray_server.client(timeout=60).run(inpaint_request(steps=2, strength=0.1))
    assert raised.value.field == "strength"
    assert "runs no step" in raised.value.message


def test_the_a1111_routes_and_the_guard_front_the_replicas(ray_server: ServerProcess) -> None:
    request = {"prompt": "a lighthouse", "seed": 42, "steps": 2, "width": 64, "height": 48}
    answer = post_json(ray_server, "/sdapi/v1/txt2img", {**request, "batch_size": 2})
    assert answer.status == 200, answer.body
    pixels = [decode_png(image) for image in answer.json()["images"]]
    assert [p.shape[:2] for p in pixels] == [(48, 64), (48, 64)]
    assert post_json(ray_server, "/sdapi/v1/txt2img", request, auth=None).status == 401
    foreign = exchange(ray_server, "GET", "/v1/models", headers={"Host": "evil.example:80"})
    assert foreign.status == 421


def test_jobs_go_to_the_replica_that_holds_their_model(ray_server: ServerProcess) -> None:
    """Two models on two replicas, alternating jobs: each job finds its model warm (the router
    prefers it); a router blind to models would swap them about every other job."""
    client = ray_server.client(timeout=120)
    models = (TINY_SD15, TINY_SD15_SINGLE)

    def holders() -> dict[str, int]:
        return {r["models"][0]: r["pid"] for r in health(ray_server)["replicas"] if r["models"]}

    for index in range(6):  # until each replica holds one of the two
        client.run(inpaint_request(seed=index, model=models[index % 2]))
        time.sleep(1.0)  # Serve tells the router which replica holds which model
        if set(holders()) == set(models):
            break
    placed = holders()
    assert set(placed) == set(models)
    for index in range(6):
        client.run(inpaint_request(seed=index, model=models[index % 2]))
        time.sleep(1.0)
        assert holders() == placed


def test_the_queue_limit_holds_across_replicas(ray_server: ServerProcess) -> None:
    """One running job per replica, then the queue's 8 (the default --queue-size), then busy."""
    client = ray_server.client(timeout=60)
    running = [client.submit(long_request(model=TINY_SD15)) for _ in range(2)]
    submitted = list(running)
    try:
        wait_for(
            lambda: all(client.status(job).state == JobState.RUNNING for job in running),
            "a job on each replica",
        )
        submitted += [client.submit(inpaint_request(model=TINY_SD15)) for _ in range(8)]
        with pytest.raises(ServerBusy) as raised:
            client.submit(inpaint_request(model=TINY_SD15))
        assert raised.value.retry_after >= 1
        assert health(ray_server)["queue_length"] == 10
    finally:
        for job in reversed(submitted):
            client.cancel(job)
    wait_for(lambda: health(ray_server)["queue_length"] == 0, "the queue to empty", 60)


def placement(resources: dict[str, float], replicas=None, gpus=None) -> tuple[float, int, int]:
    from inlayer.core.settings import Settings
    from inlayer.server.ray_backend import RayBackend

    settings = Settings()
    backend = RayBackend(
        settings, settings.model_registry(), address=None, replicas=replicas, gpus_per_replica=gpus
    )
    return backend._placement(resources)


def test_replicas_default_to_one_per_gpu_else_one_on_all_the_cpus() -> None:
    assert placement({"CPU": 32, "GPU": 4}) == (1.0, 1, 4)
    assert placement({"CPU": 32, "GPU": 2}, gpus=0.5) == (0.5, 1, 4)
    assert placement({"CPU": 16}) == (0.0, 16, 1)
    assert placement({"CPU": 2}, replicas=2) == (0.0, 1, 2)


@pytest.mark.parametrize(
    ("resources", "replicas", "gpus", "words"),
    [
        (
            {"CPU": 8},
            None,
            1.0,
            "--gpus-per-replica: 1 GPUs per replica, but the Ray cluster has 0",
        ),
        ({"CPU": 8, "GPU": 2}, 3, None, "--replicas: 3 replicas of 1 GPUs need 3 GPUs"),
        ({"CPU": 2}, 3, None, "--replicas: 3 replicas need a CPU each, but the Ray cluster has 2"),
        ({"CPU": 2}, 0, None, "--replicas: 0 replicas; use 1 or more"),
    ],
)
def test_replicas_the_cluster_cannot_hold_are_refused_clearly(
    resources: dict[str, float], replicas, gpus, words: str
) -> None:
    with pytest.raises(InlayerError, match=re.escape(words)):
        placement(resources, replicas, gpus)
