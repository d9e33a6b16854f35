"""Benchmark of the Ray Serve backend (`inlayer serve --backend ray`) on this machine's CPUs.

Not a test: it measures, and writes bench/results/ray.md. Run it with

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_ray [--rounds 3] [--repeats 2]

Three real servers run side by side (each `--backend ray` one with its own local Ray instance):
Ray with 1 replica, Ray with 2 replicas, and the local backend; all with OMP_NUM_THREADS=1, so
that every engine computes on one thread (Ray keeps a set OMP_NUM_THREADS for its replicas).

- (a) throughput: 8 tiny-model jobs (the tests' random-weight SD 1.5 shape, 512² inpaint, no
  refine; 24 steps and 96 steps) from 4 client threads, on 1 replica against 2 replicas; rounds
  interleaved, medians. Target: ratio ≥ 1.7 on 2 cores.
- (b) overhead: one 512×512 txt2img job of 2 steps on the SD 1.5 architecture with random
  weights (bench_core's checkpoint, cached in ~/.cache/inlayer-bench) through the Ray backend
  (1 replica) against the local backend, both over HTTP with the same client; interleaved,
  medians. Target: ratio ≤ 1.10.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_core import build_sd15_checkpoint
from inlayer.core.client.protocol import EditRequest, Mode
from tests.fixtures.models import TINY_SD15, build_tiny_models
from tests.fixtures.server import ServerProcess, start_server
from tests.server.helpers import inpaint_request

RESULTS = Path(__file__).parent / "results" / "ray.md"
CACHE = Path.home() / ".cache" / "inlayer-bench"
SD15 = "sd15-random"
THROUGHPUT_TARGET = 1.7
OVERHEAD_TARGET = 1.10
JOBS = 8
# A tiny-model job of about 1 s and one of about 4 s on one thread (its 64² working size is the
# same whatever the picture's: only the steps make a longer job).
JOB_STEPS = (24, 96)
CLIENTS = 4
RAY_START_TIMEOUT = 600.0
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def run_jobs(server: ServerProcess, requests: list[EditRequest]) -> None:
    """`requests` from CLIENTS threads, each taking the next one until none is left."""
    pending = list(requests)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def client() -> None:
        http = server.client(timeout=600)
        while True:
            with lock:
                if not pending:
                    return
                request = pending.pop()
            try:
                http.run(request)
            except BaseException as error:  # reported below: a failed job voids the round
                failures.append(error)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def sd15_models_dir(scratch: Path) -> Path:
    """A models folder holding only the cached random SD 1.5 checkpoint (built once)."""
    checkpoint = CACHE / f"{SD15}.safetensors"
    if not checkpoint.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        print("building SD 1.5 with random weights …", flush=True)
        build_sd15_checkpoint(CACHE)
    folder = scratch / "sd15"
    folder.mkdir()
    (folder / checkpoint.name).symlink_to(checkpoint)
    return folder


def txt2img(side: int, steps: int) -> EditRequest:
    return EditRequest(
        Mode.TXT2IMG,
        width=side,
        height=side,
        prompt="a photo of a red apple on a wooden table",
        steps=steps,
        seed=1,
        scheduler="euler",
        model=SD15,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per variant")
    parser.add_argument("--repeats", type=int, default=2, help="SD 1.5 jobs per variant")
    parser.add_argument("--skip-overhead", action="store_true", help="only (a)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started_at = load_average()

    with tempfile.TemporaryDirectory(prefix="inlayer-bench-ray-") as scratch_name:
        scratch = Path(scratch_name)
        models = build_tiny_models(scratch / "models")
        if not args.skip_overhead:
            (models / f"{SD15}.safetensors").symlink_to(
                sd15_models_dir(scratch) / f"{SD15}.safetensors"
            )
        servers: dict[str, ServerProcess] = {}
        try:
            for name, extra in (("ray-1", ["1"]), ("ray-2", ["2"])):
                servers[name] = start_server(
                    scratch / name,
                    models,
                    "--backend",
                    "ray",
                    "--replicas",
                    *extra,
                    env=ONE_THREAD,
                    start_timeout=RAY_START_TIMEOUT,
                )
                print(f"{name} up", flush=True)
            if not args.skip_overhead:
                servers["local"] = start_server(scratch / "local", models, env=ONE_THREAD)
            figures = measure(servers, args)
        finally:
            for server in servers.values():
                server.stop()
    report = write_report(args, figures, started_at)
    print(report)
    return 0


def measure(servers: dict[str, ServerProcess], args: argparse.Namespace) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"sd15 local": [], "sd15 ray": []}
    for steps in JOB_STEPS:
        # The tiny model paints at 64²: without refine "off" each 512² job would also refine
        # its picture in a hundred 64² tiles, a job of another size than the one measured here.
        tiny_jobs = [
            inpaint_request(size=512, steps=steps, seed=seed, model=TINY_SD15, refine="off")
            for seed in range(JOBS)
        ]
        for name in ("ray-1", "ray-2"):  # load the tiny model on every replica first
            figures[f"{name} {steps}"] = []
            run_jobs(servers[name], tiny_jobs[:4])
        for round_index in range(args.rounds):
            for name in ("ray-1", "ray-2") if round_index % 2 == 0 else ("ray-2", "ray-1"):
                times = figures[f"{name} {steps}"]
                server = servers[name]
                times.append(timed(lambda server=server, jobs=tiny_jobs: run_jobs(server, jobs)))
                print(f"{steps} steps, round {round_index + 1}: {name} {times[-1]:.2f} s")
    if args.skip_overhead:
        return figures
    job, warm_up = txt2img(512, 2), txt2img(256, 1)
    for name in ("local", "ray-1"):  # load the weights on both sides: compare runs, not loads
        servers[name].client(timeout=900).run(warm_up)
    for repeat in range(args.repeats):
        order = (("sd15 local", "local"), ("sd15 ray", "ray-1"))
        for label, name in order if repeat % 2 == 0 else order[::-1]:
            client = servers[name].client(timeout=900)
            figures[label].append(timed(lambda client=client: client.run(job)))
            print(f"repeat {repeat + 1}: {label} {figures[label][-1]:.2f} s", flush=True)
    return figures


def write_report(args: argparse.Namespace, figures: dict[str, list[float]], started_at: str) -> str:
    def runs(name: str) -> str:
        return ", ".join(f"{s:.2f}" for s in figures[name])

    lines = [
        "# Ray Serve backend benchmark",
        "",
        f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_ray --rounds {args.rounds} "
        f"--repeats {args.repeats}{' --skip-overhead' if args.skip_overhead else ''}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"no GPU. Load average (1, 5, 15 min) {started_at} at the start, {load_average()} at "
        "the end: other work shares these cores, so compare the ratios (each measured in this "
        "one run, variants interleaved), not the seconds.",
        "",
        f"## Throughput: {JOBS} tiny-model jobs (512² inpaint, no refine) from {CLIENTS} clients",
        "",
        "| job | replicas (1 CPU, 1 thread each) | rounds (s) | median (s) | 2 / 1 replica |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for steps in JOB_STEPS:
        one = statistics.median(figures[f"ray-1 {steps}"])
        two = statistics.median(figures[f"ray-2 {steps}"])
        throughput = one / two
        verdict = "meets" if throughput >= THROUGHPUT_TARGET else "MISSES"
        lines += [
            f"| {steps} steps | 1 | {runs(f'ray-1 {steps}')} | {one:.2f} | |",
            f"| {steps} steps | 2 | {runs(f'ray-2 {steps}')} | {two:.2f} | **{throughput:.2f}×** "
            f"({verdict} ≥ {THROUGHPUT_TARGET}) |",
        ]
    lines += [
        "",
        "Two replicas on two cores leave no core for the rest, which runs all the while: the "
        "front server answering the clients' polls, the clients, Ray's controller, GCS, raylet "
        "and agents (docs/benchmarks.md has their share, counted per process).",
    ]
    if not args.skip_overhead:
        local = statistics.median(figures["sd15 local"])
        ray = statistics.median(figures["sd15 ray"])
        overhead = ray / local
        lines += [
            "",
            "## Overhead of the Ray path: one SD 1.5 architecture job (random weights)",
            "",
            "512×512 txt2img, 2 steps (euler), float32, over HTTP with the plug-ins' client.",
            "",
            "| backend | runs (s) | median (s) |",
            "| --- | --- | ---: |",
            f"| local (one engine in the server) | {runs('sd15 local')} | {local:.2f} |",
            f"| ray (1 replica) | {runs('sd15 ray')} | {ray:.2f} |",
            "",
            f"Ratio Ray / local: **{overhead:.3f}** (target ≤ {OVERHEAD_TARGET}: "
            f"{'meets' if overhead <= OVERHEAD_TARGET else 'MISSES'}).",
        ]
    report = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    return report


if __name__ == "__main__":
    raise SystemExit(main())
