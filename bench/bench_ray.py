"""Benchmark of the Ray Serve backend (`inlayer serve --backend ray`) on this machine's CPUs.

Not a test: it measures, and writes bench/results/ray.md. Run it with

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_ray [--rounds 3] [--repeats 2]

Real servers (each `--backend ray` one with its own local Ray instance): Ray with 1 replica and
Ray with 2 replicas, each started for its round of (a) and stopped after it, then Ray with 1
replica beside the local backend for (b); all with OMP_NUM_THREADS=1, so that every engine
computes on one thread (Ray keeps a set OMP_NUM_THREADS for its replicas).

- (a) throughput: 8 tiny-model jobs (the tests' random-weight SD 1.5 shape, 512² inpaint, no
  refine; 24 steps and 96 steps) from 4 client threads, on 1 replica against 2 replicas; rounds
  interleaved, medians. Target: ratio ≥ 1.7 on 2 cores.
- (b) overhead: one 512×512 txt2img job of 2 steps on the SD 1.5 architecture with random
  weights (bench_core's checkpoint, cached in ~/.cache/inlayer-bench) through the Ray backend
  (1 replica) against the local backend, both over HTTP with the same client; interleaved,
  medians. Target: ratio ≤ 1.10.
- (c) the machine's ceiling for (a): the same 8 jobs on the core's engine in plain processes
  (no server, no Ray, one thread each): one process running all 8 against two running 4 each at
  once. What two cores give this work with nothing else running; (a) is read against it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_core import build_sd15_checkpoint
from inlayer.core.client.protocol import EditRequest, Mode
from inlayer.core.engine import Engine
from inlayer.core.models import ModelRegistry
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
# (a)'s Ray servers and (c)'s plain engine processes, by the number of replicas or processes.
VARIANTS = ("ray-1", "ray-2", "plain-1", "plain-2")


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


def tiny_jobs(steps: int) -> list[EditRequest]:
    # The tiny model paints at 64²: without refine "off" each 512² job would also refine its
    # picture in a hundred 64² tiles, a job of another size than the one measured here.
    return [
        inpaint_request(size=512, steps=steps, seed=seed, model=TINY_SD15, refine="off")
        for seed in range(JOBS)
    ]


def engine_child(models: Path, steps: int, jobs: int) -> None:
    """(c)'s child: loads the tiny model, says "ready", waits for a line on stdin, then runs
    `jobs` jobs on the core's engine and prints their seconds."""
    engine = Engine(ModelRegistry([models]))
    requests = tiny_jobs(steps)[:jobs]
    engine.run(requests[0])  # the load and torch's first-run work, outside the measure
    print("ready", flush=True)
    sys.stdin.readline()
    print(f"{timed(lambda: [engine.run(request) for request in requests]):.4f}", flush=True)


def plain_processes(models: Path, steps: int, processes: int) -> float:
    """Seconds for JOBS jobs split over `processes` engine processes that start together."""
    command = [sys.executable, "-m", "bench.bench_ray", "--engine-child", str(models)]
    command += ["--steps", str(steps), "--jobs", str(JOBS // processes)]
    environment = {**os.environ, **ONE_THREAD}
    children = [
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment
        )
        for _ in range(processes)
    ]
    for child in children:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"an engine process failed to start (exit {child.wait()})")
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    return max(float(child.communicate()[0]) for child in children)


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
    parser.add_argument("--skip-overhead", action="store_true", help="only (a) and (c)")
    parser.add_argument("--engine-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_child:
        engine_child(args.engine_child, args.steps, args.jobs)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started_at = load_average()
    with tempfile.TemporaryDirectory(prefix="inlayer-bench-ray-") as scratch_name:
        scratch = Path(scratch_name)
        models = build_tiny_models(scratch / "models")
        figures = measure_throughput(scratch, models, args.rounds)
        if not args.skip_overhead:
            (models / f"{SD15}.safetensors").symlink_to(
                sd15_models_dir(scratch) / f"{SD15}.safetensors"
            )
            figures |= measure_overhead(scratch, models, args.repeats)
    report = write_report(args, figures, started_at)
    print(report)
    return 0


def ray_server(folder: Path, models: Path, replicas: int) -> ServerProcess:
    return start_server(
        folder,
        models,
        *("--backend", "ray", "--replicas", str(replicas)),
        env=ONE_THREAD,
        start_timeout=RAY_START_TIMEOUT,
    )


def measure_throughput(scratch: Path, models: Path, rounds: int) -> dict[str, list[float]]:
    """(a) and (c). Only the variant measured runs: an idle Ray instance beside it (its GCS,
    raylet, controller and agents) would take CPU from the two replicas' cores."""
    figures: dict[str, list[float]] = {
        f"{variant} {steps}": [] for variant in VARIANTS for steps in JOB_STEPS
    }
    for round_index in range(rounds):
        for variant in VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]:
            kind, count = variant.split("-")
            if kind == "plain":
                for steps in JOB_STEPS:
                    figures[f"{variant} {steps}"].append(plain_processes(models, steps, int(count)))
            else:
                folder = scratch / f"{variant}-{round_index}"
                server = ray_server(folder, models, int(count))
                try:
                    for steps in JOB_STEPS:
                        jobs = tiny_jobs(steps)
                        run_jobs(server, jobs[:4])  # every replica loads the model first
                        figures[f"{variant} {steps}"].append(
                            timed(lambda server=server, jobs=jobs: run_jobs(server, jobs))
                        )
                finally:
                    server.stop()
            for steps in JOB_STEPS:
                seconds = figures[f"{variant} {steps}"][-1]
                print(f"round {round_index + 1}: {variant}, {steps} steps: {seconds:.2f} s")
    return figures


def measure_overhead(scratch: Path, models: Path, repeats: int) -> dict[str, list[float]]:
    """(b): the local backend and the Ray backend (1 replica) side by side, interleaved."""
    figures: dict[str, list[float]] = {"sd15 local": [], "sd15 ray": []}
    servers = {}
    try:
        servers["ray"] = ray_server(scratch / "overhead-ray", models, 1)
        servers["local"] = start_server(scratch / "overhead-local", models, env=ONE_THREAD)
        job, warm_up = txt2img(512, 2), txt2img(256, 1)
        for server in servers.values():  # load the weights on both sides: compare runs only
            server.client(timeout=900).run(warm_up)
        for repeat in range(repeats):
            for name in ("local", "ray") if repeat % 2 == 0 else ("ray", "local"):
                client = servers[name].client(timeout=900)
                figures[f"sd15 {name}"].append(timed(lambda client=client: client.run(job)))
                print(f"repeat {repeat + 1}: {name} {figures[f'sd15 {name}'][-1]:.2f} s")
    finally:
        for server in servers.values():
            server.stop()
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
    ceilings = {}
    for steps in JOB_STEPS:
        one = statistics.median(figures[f"ray-1 {steps}"])
        two = statistics.median(figures[f"ray-2 {steps}"])
        throughput = one / two
        ceilings[steps] = statistics.median(figures[f"plain-1 {steps}"]) / statistics.median(
            figures[f"plain-2 {steps}"]
        )
        verdict = "meets" if throughput >= THROUGHPUT_TARGET else "MISSES"
        lines += [
            f"| {steps} steps | 1 | {runs(f'ray-1 {steps}')} | {one:.2f} | |",
            f"| {steps} steps | 2 | {runs(f'ray-2 {steps}')} | {two:.2f} | **{throughput:.2f}×** "
            f"({verdict} ≥ {THROUGHPUT_TARGET}; {throughput / ceilings[steps]:.0%} of the "
            "ceiling below) |",
        ]
    lines += [
        "",
        "Only the variant measured runs (each Ray server is started for its round and stopped "
        "after it). Two replicas on two cores leave no core for the rest, which runs all the "
        "while: the front server answering the clients' status questions, the clients, Ray's "
        "controller, GCS, raylet and agents.",
        "",
        "## The machine's ceiling: the same jobs in plain processes",
        "",
        f"The {JOBS} jobs on the core's engine, no server and no Ray, one thread a process: one "
        f"process running all {JOBS} against two running {JOBS // 2} each at once.",
        "",
        "| job | processes | rounds (s) | median (s) | 2 / 1 process |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for steps in JOB_STEPS:
        lines += [
            f"| {steps} steps | 1 | {runs(f'plain-1 {steps}')} | "
            f"{statistics.median(figures[f'plain-1 {steps}']):.2f} | |",
            f"| {steps} steps | 2 | {runs(f'plain-2 {steps}')} | "
            f"{statistics.median(figures[f'plain-2 {steps}']):.2f} | {ceilings[steps]:.2f}× |",
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
