"""Benchmark of the Ray Serve backend (`inlayer serve --backend ray`) on this machine's CPUs.

Not a test: it measures, and writes bench/results/ray.md. Run it with

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_ray [--rounds 3] [--batches 3] [--repeats 2]

Real servers (each `--backend ray` one with its own local Ray instance): Ray with 1 replica and
Ray with 2 replicas, each started for its round of (a) and stopped after it, then Ray with 1
replica beside the local backend for (b); all with OMP_NUM_THREADS=1, so that every engine
computes on one thread (Ray keeps a set OMP_NUM_THREADS for its replicas).

- (a) throughput: 8 tiny-model jobs (the tests' random-weight SD 1.5 shape, 512² inpaint, no
  refine; 24 steps and 96 steps) from 4 client threads, on 1 replica against 2 replicas; rounds
  interleaved, each timing several batches on one server start; medians. Target: ratio ≥ 1.7
  on 2 cores.
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
    """(c)'s child: loads the tiny model, says "ready", then for each line on stdin runs `jobs`
    jobs on the core's engine and prints their seconds."""
    engine = Engine(ModelRegistry([models]))
    requests = tiny_jobs(steps)[:jobs]
    engine.run(requests[0])  # the load and torch's first-run work, outside the measure
    print("ready", flush=True)
    for _ in sys.stdin:
        print(f"{timed(lambda: [engine.run(request) for request in requests]):.4f}", flush=True)


def plain_processes(models: Path, steps: int, processes: int, batches: int) -> list[float]:
    """Seconds for JOBS jobs split over `processes` engine processes that start together, for
    each of `batches` batches (the processes stay up between them)."""
    command = [sys.executable, "-m", "bench.bench_ray", "--engine-child", str(models)]
    command += ["--steps", str(steps), "--jobs", str(JOBS // processes)]
    environment = {**os.environ, **ONE_THREAD}
    children = [
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment
        )
        for _ in range(processes)
    ]
    try:
        for child in children:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"an engine process failed to start (exit {child.wait()})")
        seconds = []
        for _ in range(batches):
            for child in children:
                child.stdin.write("go\n")
                child.stdin.flush()
            seconds.append(max(float(child.stdout.readline()) for child in children))
        return seconds
    finally:
        for child in children:
            child.stdin.close()
            child.wait()


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
    parser.add_argument(
        "--batches", type=int, default=3, help=f"timed batches of {JOBS} jobs per round and variant"
    )
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
        throughput = measure_throughput(scratch, models, args.rounds, args.batches)
        overhead = {}
        if not args.skip_overhead:
            (models / f"{SD15}.safetensors").symlink_to(
                sd15_models_dir(scratch) / f"{SD15}.safetensors"
            )
            overhead = measure_overhead(scratch, models, args.repeats)
    report = write_report(args, throughput, overhead, started_at)
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


def listed(values: list[float]) -> str:
    """Seconds or ratios as the report and the progress lines show them."""
    return ", ".join(f"{value:.2f}" for value in values)


def measure_throughput(
    scratch: Path, models: Path, rounds: int, batches: int
) -> dict[str, list[list[float]]]:
    """(a) and (c): per variant and job length, a list per round of `batches` timed batches.
    Only the variant measured runs: an idle Ray instance beside it (its GCS, raylet, controller
    and agents) would take CPU from the two replicas' cores."""
    figures: dict[str, list[list[float]]] = {
        f"{variant} {steps}": [] for variant in VARIANTS for steps in JOB_STEPS
    }
    for round_index in range(rounds):
        for variant in VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]:
            kind, count = variant.split("-")
            if kind == "plain":
                for steps in JOB_STEPS:
                    figures[f"{variant} {steps}"].append(
                        plain_processes(models, steps, int(count), batches)
                    )
            else:
                folder = scratch / f"{variant}-{round_index}"
                server = ray_server(folder, models, int(count))
                try:
                    for steps in JOB_STEPS:
                        jobs = tiny_jobs(steps)
                        run_jobs(server, jobs[:4])  # every replica loads the model first
                        figures[f"{variant} {steps}"].append(
                            [
                                timed(lambda server=server, jobs=jobs: run_jobs(server, jobs))
                                for _ in range(batches)
                            ]
                        )
                finally:
                    server.stop()
            for steps in JOB_STEPS:
                seconds = listed(figures[f"{variant} {steps}"][-1])
                print(f"round {round_index + 1}: {variant}, {steps} steps: {seconds} s")
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


def all_batches(rounds: list[list[float]]) -> list[float]:
    return [seconds for batches in rounds for seconds in batches]


def speedup(
    figures: dict[str, list[list[float]]], kind: str, steps: int
) -> tuple[float, list[float]]:
    """2 against 1 (replicas or processes): the ratio of the medians over every batch, and the
    ratio within each round (its batches' medians), which the drift between rounds leaves out."""
    one, two = figures[f"{kind}-1 {steps}"], figures[f"{kind}-2 {steps}"]
    overall = statistics.median(all_batches(one)) / statistics.median(all_batches(two))
    return overall, [
        statistics.median(a) / statistics.median(b) for a, b in zip(one, two, strict=True)
    ]


def write_report(
    args: argparse.Namespace,
    throughput: dict[str, list[list[float]]],
    overhead: dict[str, list[float]],
    started_at: str,
) -> str:
    def rows(kind: str, steps: int, count: int, last: str) -> str:
        batches = throughput[f"{kind}-{count} {steps}"]
        per_round = "; ".join(listed(round_batches) for round_batches in batches)
        median = statistics.median(all_batches(batches))
        return f"| {steps} steps | {count} | {per_round} | {median:.2f} | {last} |"

    options = f"--rounds {args.rounds} --batches {args.batches} --repeats {args.repeats}"
    lines = [
        "# Ray Serve backend benchmark",
        "",
        f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_ray {options}"
        f"{' --skip-overhead' if args.skip_overhead else ''}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"no GPU. Load average (1, 5, 15 min) {started_at} at the start, {load_average()} at "
        "the end: other work shares these cores, so compare the ratios (each measured in this "
        "one run, variants interleaved), not the seconds.",
        "",
        f"## Throughput: {JOBS} tiny-model jobs (512² inpaint, no refine) from {CLIENTS} clients",
        "",
        f"Each round starts the server once and times {args.batches} batches of the {JOBS} jobs "
        "(rounds separated by ';'). The ratio is that of the medians over every batch; in "
        "brackets, the ratio within each round, whose variants ran minutes apart at most.",
        "",
        "| job | replicas (1 CPU, 1 thread each) | batches per round (s) | median (s) | "
        "2 / 1 replica |",
        "| --- | --- | --- | ---: | --- |",
    ]
    ceilings = {steps: speedup(throughput, "plain", steps) for steps in JOB_STEPS}
    for steps in JOB_STEPS:
        ratio, per_round = speedup(throughput, "ray", steps)
        verdict = "meets" if ratio >= THROUGHPUT_TARGET else "MISSES"
        summary = (
            f"**{ratio:.3f}×** ({verdict} ≥ {THROUGHPUT_TARGET}; rounds "
            f"{listed(per_round)}; {ratio / ceilings[steps][0]:.0%} of "
            "the ceiling below)"
        )
        lines += [rows("ray", steps, 1, ""), rows("ray", steps, 2, summary)]
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
        "| job | processes | batches per round (s) | median (s) | 2 / 1 process |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for steps in JOB_STEPS:
        ratio, per_round = ceilings[steps]
        summary = f"{ratio:.2f}× (rounds {listed(per_round)})"
        lines += [rows("plain", steps, 1, ""), rows("plain", steps, 2, summary)]
    if overhead:
        local_runs, ray_runs = overhead["sd15 local"], overhead["sd15 ray"]
        local, ray = statistics.median(local_runs), statistics.median(ray_runs)
        overhead = ray / local
        lines += [
            "",
            "## Overhead of the Ray path: one SD 1.5 architecture job (random weights)",
            "",
            "512×512 txt2img, 2 steps (euler), float32, over HTTP with the plug-ins' client.",
            "",
            "| backend | runs (s) | median (s) |",
            "| --- | --- | ---: |",
            f"| local (one engine in the server) | {listed(local_runs)} | {local:.2f} |",
            f"| ray (1 replica) | {listed(ray_runs)} | {ray:.2f} |",
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
