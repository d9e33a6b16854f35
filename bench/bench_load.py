"""Load and soak benchmark of a real `inlayer serve` process on tiny random-weight models.

Not a test: it measures, checks what it can, and writes bench/results/load.md. Run it with

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python -m bench.bench_load

- (a) load: 4 clients × 25 inpaint jobs at once through the real client, against a queue that
  holds 2 waiting jobs, so some submissions meet the queue-full answer (429 with Retry-After),
  which each client honours by waiting that long and submitting again. Checked: no job lost,
  every result delivered to the client that asked for it (its prompt and seed), jobs finished in
  the order the server accepted them (one worker, first in, first out).
- (b) soak: 200 jobs in a row; the server's resident memory after each, and its slope after a
  warm-up (MB per 100 jobs; target < 1).
- (c) the A1111 routes under 4 concurrent callers: 4 × 5 txt2img calls, each answered with its
  images.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from inlayer.core.client.protocol import EditRequest, Mask, Mode, RGBAImage, ServerBusy
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING, build_tiny_models
from tests.fixtures.server import ServerProcess, start_server
from tests.server.helpers import exchange

RESULTS = Path(__file__).parent / "results" / "load.md"
CLIENTS = 4
JOBS_PER_CLIENT = 25
QUEUE_SIZE = 2
SOAK_JOBS = 200
SOAK_WARM_UP = 20
RSS_SLOPE_TARGET_MB = 1.0  # per 100 jobs
A1111_CALLERS = 4
A1111_CALLS_EACH = 5


def inpaint(prompt: str, seed: int) -> EditRequest:
    side = 32
    image = RGBAImage(side, side, bytes(range(256)) * (side * side * 4 // 256))
    mask = bytearray(side * side)
    for row in range(8, 24):
        mask[row * side + 8 : row * side + 24] = b"\xff" * 16
    return EditRequest(
        Mode.INPAINT,
        image=image,
        mask=Mask(side, side, bytes(mask)),
        prompt=prompt,
        seed=seed,
        steps=2,
        model=TINY_SD15_INPAINTING,
    )


@dataclass
class Delivery:
    client: int
    job: int
    job_id: str
    accepted_at: float
    finished_at: float
    busy_answers: int  # 429s met before the server accepted the job
    right_owner: bool


def load(server: ServerProcess) -> list[Delivery]:
    deliveries: list[Delivery] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client_loop(index: int) -> None:
        client = server.client(timeout=120)
        for job in range(JOBS_PER_CLIENT):
            prompt, seed = f"client {index} job {job}", index * 1000 + job
            busy = 0
            while True:
                try:
                    job_id = client.submit(inpaint(prompt, seed))
                    break
                except ServerBusy as error:  # honour Retry-After, then submit again
                    busy += 1
                    time.sleep(error.retry_after)
            accepted = time.monotonic()
            try:
                result = client.wait(job_id, poll_interval=0.01)
            except Exception as error:  # a lost or failed job is what this run looks for
                with lock:
                    failures.append(f"client {index} job {job}: {error}")
                continue
            finished = time.monotonic()
            owner = result.parameters["prompt"] == prompt and result.images[0].seed == seed
            with lock:
                deliveries.append(Delivery(index, job, job_id, accepted, finished, busy, owner))

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        print("\n".join(failures))
    return deliveries


def fifo_violations(deliveries: list[Delivery], tolerance: float = 0.05) -> int:
    """Pairs where the job accepted later finished clearly earlier (beyond polling jitter)."""
    ordered = sorted(deliveries, key=lambda d: d.accepted_at)
    return sum(
        1
        for earlier, later in itertools.pairwise(ordered)
        if later.finished_at + tolerance < earlier.finished_at
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def soak(server: ServerProcess) -> list[float]:
    client = server.client(timeout=120)
    samples = []
    for job in range(SOAK_JOBS):
        client.run(inpaint(f"soak {job}", job), poll_interval=0.01)
        samples.append(rss_mb(server.process.pid))
    return samples


def slope_per_100(samples: list[float]) -> float:
    """Least-squares slope of RSS against the job number, in MB per 100 jobs."""
    xs = list(range(len(samples)))
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(samples)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, samples, strict=True))
    variance = sum((x - mean_x) ** 2 for x in xs)
    return 100 * covariance / variance


def a1111(server: ServerProcess) -> tuple[int, dict[int, int], list[float]]:
    """(calls answered with their images, the other answers by HTTP status, seconds per call)."""
    answered = 0
    refused: dict[int, int] = {}
    seconds: list[float] = []
    lock = threading.Lock()

    def caller(index: int) -> None:
        nonlocal answered
        for call in range(A1111_CALLS_EACH):
            payload = {
                "prompt": f"caller {index} call {call}",
                "width": 64,
                "height": 64,
                "steps": 2,
                "batch_size": 1 + call % 2,
                "seed": index * 100 + call,
                "override_settings": {"sd_model_checkpoint": TINY_SD15},
            }
            started = time.perf_counter()
            answer = exchange(
                server,
                "POST",
                "/sdapi/v1/txt2img",
                json.dumps(payload).encode(),
                {"Content-Type": "application/json"},
                auth="basic",
            )
            elapsed = time.perf_counter() - started
            ok = answer.status == 200 and len(answer.json()["images"]) == payload["batch_size"]
            if ok:
                base64.b64decode(answer.json()["images"][0], validate=True)
            with lock:
                seconds.append(elapsed)
                answered += ok
                if not ok:
                    refused[answer.status] = refused.get(answer.status, 0) + 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(A1111_CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answered, refused, seconds


def report(deliveries: list[Delivery], rss: list[float], a1111_result, wall: float) -> str:
    expected = CLIENTS * JOBS_PER_CLIENT
    lost = expected - len(deliveries)
    misdelivered = sum(not d.right_owner for d in deliveries)
    busy = sum(d.busy_answers for d in deliveries)
    violations = fifo_violations(deliveries)
    after_warm_up = rss[SOAK_WARM_UP:]
    slope = slope_per_100(after_warm_up)
    answered, refused, seconds = a1111_result
    refusals = ", ".join(f"{count} × HTTP {status}" for status, count in sorted(refused.items()))
    lines = [
        "# Load and soak: a real server on tiny random-weight models",
        "",
        "Command: `HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python -m bench.bench_load`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; "
        f"{wall:.0f} s in all.",
        "",
        f"## Load: {CLIENTS} clients × {JOBS_PER_CLIENT} jobs, queue of {QUEUE_SIZE}",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| jobs asked for | {expected} |",
        f"| results received | {len(deliveries)} |",
        f"| lost | **{lost}** |",
        f"| delivered to the wrong client | **{misdelivered}** |",
        f"| finished out of acceptance order | **{violations}** |",
        f"| queue-full answers (429) honoured, then accepted | {busy} |",
        "",
        f"## Soak: {SOAK_JOBS} jobs in a row",
        "",
        f"Server RSS: {rss[0]:.1f} MB after the first job, {rss[SOAK_WARM_UP - 1]:.1f} MB after "
        f"{SOAK_WARM_UP} (warm-up), {rss[-1]:.1f} MB after the last; min {min(after_warm_up):.1f}, "
        f"max {max(after_warm_up):.1f}.",
        "",
        f"Slope after warm-up: **{slope:+.2f} MB per 100 jobs** (target < "
        f"{RSS_SLOPE_TARGET_MB:g}: {'meets' if abs(slope) < RSS_SLOPE_TARGET_MB else 'MISSES'}).",
        "",
        f"## A1111 routes: {A1111_CALLERS} concurrent callers × {A1111_CALLS_EACH} txt2img",
        "",
        f"{answered} answered with their images; {refusals or 'none refused'}. Per call median "
        f"{statistics.median(seconds):.2f} s, max {max(seconds):.2f} s (calls wait for each "
        f"other: one worker; the queue holds {QUEUE_SIZE} waiting jobs, so a fourth caller can "
        "meet the queue-full answer).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the report")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        models = build_tiny_models(Path(scratch) / "models")
        server = start_server(Path(scratch) / "config", models, "--queue-size", str(QUEUE_SIZE))
        try:
            deliveries = load(server)
            rss = soak(server)
            a1111_result = a1111(server)
        finally:
            server.stop()
    text = report(deliveries, rss, a1111_result, time.monotonic() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
