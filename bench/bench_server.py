"""Benchmark of the server on the real SD 1.5 architecture with random weights (512×512).

Not a test: it measures, and writes bench/results/server.md. Run it with

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_server [--steps 2] [--repeats 3]

The model is bench_core's random-weight SD 1.5 checkpoint, loaded through the registry.

- (a) server overhead: one inpaint job through the client and a real `inlayer serve` process
  (HTTP, queue, worker thread, previews, polling every 0.1 s as the plug-ins do) against the
  same request through `Engine.run` in this process. Interleaved, medians. Target: ratio ≤ 1.03.
- (b) responsiveness: while another HTTP job runs, a second thread asks for health, the job's
  status (with its preview) and the A1111 progress every 50 ms. Target: p99 ≤ 50 ms.
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

from bench.bench_core import build_sd15_checkpoint, inpaint_request
from inlayer.core.client.protocol import EditRequest
from inlayer.core.engine import Engine
from inlayer.core.models import ModelRegistry
from tests.fixtures.server import ServerProcess, start_server
from tests.server.helpers import exchange

RESULTS = Path(__file__).parent / "results" / "server.md"
OVERHEAD_TARGET = 1.03
LATENCY_TARGET_MS = 50.0
PROBE_INTERVAL = 0.05


class LatencyProbe:
    """Asks the server small questions every 50 ms from its own thread while `job_id` is set,
    timing each answer."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.client = server.client()
        self.job_id = ""
        self.samples: dict[str, list[float]] = {
            name: [] for name in ("health", "job status", "a1111 progress")
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True)

    def _probe(self) -> None:
        questions: dict[str, Callable[[], object]] = {
            "health": self.client.health,
            "job status": lambda: self.client.status(self.job_id),
            "a1111 progress": lambda: exchange(
                self.server, "GET", "/sdapi/v1/progress", auth="basic"
            ),
        }
        while not self._stop.wait(PROBE_INTERVAL):
            for name, ask in questions.items():
                if not self.job_id:  # only while an HTTP job runs
                    break
                started = time.perf_counter()
                ask()
                self.samples[name].append(time.perf_counter() - started)

    def __enter__(self) -> LatencyProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_over_http(server: ServerProcess, probe: LatencyProbe, request: EditRequest) -> None:
    client = server.client(timeout=120)
    probe.job_id = client.submit(request)
    client.wait(probe.job_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe-jobs", type=int, default=1, help="HTTP jobs probed for (b)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    with tempfile.TemporaryDirectory(prefix="inlayer-bench-server-") as scratch:
        models_dir = Path(scratch) / "models"
        models_dir.mkdir()
        started = time.perf_counter()
        model = build_sd15_checkpoint(models_dir).stem
        print(f"built the SD 1.5 checkpoint in {time.perf_counter() - started:.0f} s", flush=True)
        request = inpaint_request(512, 256, args.steps, model)
        request.preview_interval = 1
        warm_up = inpaint_request(512, 256, 1, model)

        server = start_server(Path(scratch) / "config", models_dir)
        try:
            engine = Engine(ModelRegistry([models_dir]))
            # Load the weights on both sides first: this compares runs, not loads.
            server.client(timeout=600).run(warm_up)
            engine.run(warm_up)
            http_seconds: list[float] = []
            core_seconds: list[float] = []
            for repeat in range(args.repeats):
                http_seconds.append(_timed(lambda: server.client(timeout=120).run(request)))
                core_seconds.append(_timed(lambda: engine.run(request)))
                print(
                    f"repeat {repeat + 1}: http {http_seconds[-1]:.2f} s, "
                    f"in-process {core_seconds[-1]:.2f} s",
                    flush=True,
                )
            # Asked separately: the probe's own requests would add to the HTTP job's time.
            with LatencyProbe(server) as probe:
                for _ in range(args.probe_jobs):
                    run_over_http(server, probe, request)
                    probe.job_id = ""
        finally:
            server.kill()
    report = _report(args, http_seconds, core_seconds, probe.samples)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)
    return 0


def _timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _report(
    args: argparse.Namespace,
    http_seconds: list[float],
    core_seconds: list[float],
    latency: dict[str, list[float]],
) -> str:
    http, core = statistics.median(http_seconds), statistics.median(core_seconds)
    ratio = http / core
    lines = [
        "# Server benchmark: SD 1.5 architecture, random weights, 512×512 inpaint",
        "",
        f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_server --steps {args.steps} "
        f"--repeats {args.repeats} --probe-jobs {args.probe_jobs}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"CPU float32; load average {os.getloadavg()[0]:.1f} at the end (other work shares "
        "the cores).",
        "",
        "## Server overhead",
        "",
        "| path | runs (s) | median (s) |",
        "| --- | --- | ---: |",
        f"| client → HTTP → queue → worker → Engine.run | "
        f"{', '.join(f'{s:.2f}' for s in http_seconds)} | {http:.2f} |",
        f"| Engine.run in-process | {', '.join(f'{s:.2f}' for s in core_seconds)} | {core:.2f} |",
        "",
        f"Ratio HTTP / in-process: **{ratio:.3f}** (target ≤ {OVERHEAD_TARGET}: "
        f"{'meets' if ratio <= OVERHEAD_TARGET else 'MISSES'}).",
        "",
        "## Answers while a job runs",
        "",
        f"Every 50 ms during {args.probe_jobs} more HTTP job(s), from another thread, through "
        "new connections as the plug-ins make them:",
        "",
        "| question | answers | median ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    worst_p99 = 0.0
    for name, samples in latency.items():
        if not samples:
            continue
        p99 = percentile(samples, 0.99) * 1000
        worst_p99 = max(worst_p99, p99)
        lines.append(
            f"| {name} | {len(samples)} | {statistics.median(samples) * 1000:.1f} | "
            f"{p99:.1f} | {max(samples) * 1000:.1f} |"
        )
    verdict = "meets" if worst_p99 <= LATENCY_TARGET_MS else "MISSES"
    lines += [
        "",
        f"Worst p99: **{worst_p99:.1f} ms** (target ≤ {LATENCY_TARGET_MS:.0f} ms: {verdict}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
