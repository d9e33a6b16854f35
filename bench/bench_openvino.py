"""Benchmark of the OpenVINO backend: the fast preset's 512×512 inpaint against its PyTorch floor.

Not a test: it measures, and writes bench/results/openvino.md. Run it with

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_openvino [--repeats 3]

The models are bench_fast's (SD 1.5 architecture with random weights as one .safetensors file,
a rank-64 speed LoRA, TAESD), cached in ~/.cache/inlayer-bench; the converted OpenVINO models
go to ~/.cache/inlayer-bench/openvino (about 1.7 GB per LoRA set), outside the repository.

Measured in one process, interleaved, medians:

- **openvino**: `Engine.run` of bench_fast's inpaint (fast preset, 2 steps) on a registry with
  the OpenVINO backend, model loaded and converted: prepare → finish.
- **floor**: bench_fast's PyTorch floor, on the same registry's torch modules (the UNet with the
  LoRA fused, TAESD's encoder and decoder): 2 bare UNet evaluations at batch 1 + one tiny
  encode and decode at 512². Target: openvino / floor ≤ 0.7.
- the OpenVINO pieces alone (one UNet evaluation, one tiny encode + decode), the relative error
  of the converted UNet against PyTorch's, and the cold start: the first result of a new
  registry, which converts the UNet (with the LoRA fused) and TAESD unless the cache has them.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import openvino
import torch

from bench.bench_core import timed
from bench.bench_fast import (
    CACHE,
    LORA_RANK,
    MODEL,
    SPEED_LORA,
    STEPS,
    TINY_VAE,
    build_models,
    fast_request,
    floor_inputs,
)
from inlayer.core.client.protocol import Mode
from inlayer.core.engine import Engine
from inlayer.core.models import ModelRegistry
from inlayer.core.openvino_backend import OpenVinoPart, OpenVinoUNet
from inlayer.core.tiny_vae import find_tiny_vaes

RESULTS = Path(__file__).parent / "results" / "openvino.md"
OPENVINO_CACHE = CACHE / "openvino"
TARGET = 0.7


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    build_models(CACHE)
    load_before = load_average()

    started = time.perf_counter()
    registry = ModelRegistry(
        [CACHE], device="cpu", backend="openvino", openvino_cache=OPENVINO_CACHE
    )
    engine = Engine(registry)
    first = engine.run(fast_request())
    backend = registry.openvino
    assert backend is not None
    cold = {
        "seconds": time.perf_counter() - started,
        "conversions": backend.conversions,
        "timings": first.timings,
    }
    print(f"cold start: {cold['seconds']:.1f} s, {backend.conversions} conversions", flush=True)
    assert first.hint == "", first.hint
    assert first.parameters["loras"] == [{"name": SPEED_LORA, "scale": 1.0}], first.parameters
    assert first.parameters["vae"] == TINY_VAE and first.parameters["guidance"] <= 1.0

    pipe, _ = registry.pipeline(MODEL, Mode.INPAINT)
    assert isinstance(pipe.unet, OpenVinoUNet)
    installed = find_tiny_vaes(registry.catalog)
    tiny = registry._tiny_vae(next(t for t in installed if t.name == TINY_VAE))
    assert isinstance(tiny.encoder, OpenVinoPart) and isinstance(tiny.decoder, OpenVinoPart)
    latents, image, text, timestep = floor_inputs()

    @torch.inference_mode()
    def floor() -> None:
        for _ in range(STEPS):
            pipe.unet.torch_unet(latents, timestep, encoder_hidden_states=text)
        tiny.encoder.torch_part(image)
        tiny.decoder.torch_part(latents)

    with torch.inference_mode():
        converted = pipe.unet(latents, timestep, text).sample
        reference = pipe.unet.torch_unet(latents, timestep, text).sample
    unet_error = float((converted - reference).norm() / reference.norm())
    print(f"relative error of the converted UNet: {unet_error:.2e}", flush=True)

    openvino_times, floor_times, timings = [], [], []
    for repeat in range(args.repeats):
        for variant in ("openvino", "floor") if repeat % 2 == 0 else ("floor", "openvino"):
            if variant == "floor":
                floor_times.append(timed(floor))
            else:
                result = engine.run(fast_request())
                timings.append(result.timings)
                openvino_times.append(result.timings["total"] - result.timings["load"])
        print(
            f"repeat {repeat + 1}: openvino {openvino_times[-1]:.2f} s, "
            f"floor {floor_times[-1]:.2f} s",
            flush=True,
        )
    with torch.inference_mode():
        pieces = {
            "openvino_unet": timed(lambda: pipe.unet(latents, timestep, text)),
            "openvino_tiny": timed(lambda: (tiny.encoder(image), tiny.decoder(latents))),
        }
    measured = {
        "openvino": openvino_times,
        "floor": floor_times,
        "timings": timings,
        "pieces": pieces,
        "unet_error": unet_error,
        "precision": pipe.unet.compiled.precision,
        "cold": cold,
        "load": f"{load_before} before, {load_average()} after",
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }
    report = write_report(args.repeats, measured)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)


def write_report(repeats: int, measured: dict) -> str:
    fast = statistics.median(measured["openvino"])
    floor = statistics.median(measured["floor"])
    ratio = fast / floor
    verdict = {True: "meets the target", False: "MISSES the target"}
    listed = ", ".join
    median_timings = {
        step: round(statistics.median(t[step] for t in measured["timings"]), 2)
        for step in measured["timings"][0]
    }
    cold = measured["cold"]
    pieces = measured["pieces"]
    return "\n".join(
        [
            "# OpenVINO backend benchmark",
            "",
            f"SD 1.5 architecture with random weights, a rank-{LORA_RANK} speed LoRA fused, "
            f"TAESD; inpaint of a 256² mask in a 512² canvas (512² working size), preset `fast`, "
            f"{STEPS} steps, guidance off; {repeats} interleaved repeats, medians, one process. "
            f"Machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}, "
            f"{torch.get_num_threads()} threads, torch {torch.__version__}, OpenVINO "
            f"{openvino.get_version()} (inference precision {measured['precision']}), numpy "
            f"{np.__version__}. Load average (1, 5, 15 min): {measured['load']}.",
            "",
            f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_openvino "
            f"--repeats {repeats}`",
            "",
            "| measure | figures (s) | median | target |",
            "| --- | --- | --- | --- |",
            f"| OpenVINO backend: fast inpaint, prepare → finish | "
            f"{listed(f'{t:.2f}' for t in measured['openvino'])} | {fast:.2f} s | – |",
            f"| PyTorch floor: {STEPS} UNet evaluations (batch 1) + TAESD encode + decode | "
            f"{listed(f'{t:.2f}' for t in measured['floor'])} | {floor:.2f} s | – |",
            f"| OpenVINO / floor | – | {ratio:.3f} | ≤ {TARGET}: {verdict[ratio <= TARGET]} |",
            f"| one OpenVINO UNet evaluation (512², batch 1) | – | "
            f"{pieces['openvino_unet']:.2f} s | – |",
            f"| OpenVINO TAESD encode + decode (512²) | – | {pieces['openvino_tiny']:.2f} s | – |",
            f"| relative error of the converted UNet against PyTorch's | – | "
            f"{measured['unet_error']:.1e} | – |",
            f"| cold start: new registry → first result ({cold['conversions']} conversions: "
            f"UNet with the LoRA fused, TAESD encoder and decoder) | – | "
            f"{cold['seconds']:.0f} s | report |",
            "",
            f"Step timings of the OpenVINO runs (medians): `{json.dumps(median_timings)}`; of "
            f"the cold start: `{json.dumps({k: round(v, 2) for k, v in cold['timings'].items()})}`"
            f". Peak RSS of the process: {measured['peak_rss_gb']:.1f} GB.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
