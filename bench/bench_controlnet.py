"""Benchmark of one ControlNet: a 512×512 SD 1.5 inpaint with it against the same run without.

Not a test: it measures, and writes bench/results/controlnet.md. Run it with

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_controlnet [--repeats 3]

The real architectures with random weights (the compute does not depend on the values), built
once and cached in ~/.cache/inlayer-bench: SD 1.5 as one .safetensors file (bench_core's
builder) and a ControlNet of the SD 1.5 architecture (the config Inlayer ships for single-file
ControlNets) as one .safetensors file in `controlnet/`.

Measured in one process, the two variants interleaved (each pair in the other order than the
last), model and ControlNet loaded (a warm-up
run of each first), medians: `Engine.run` of an inpaint (512² canvas, 256² mask, context 512²)
with the quality preset, 2 steps and guidance 1 (one UNet and one ControlNet evaluation per
step: guidance doubles both alike), prepare → finish (the result's total minus its load step).
Target: with / without ≤ 1.45 (a ControlNet is about a third of a UNet; the autoencoder's
encode and decode are the same in both).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
from pathlib import Path

import numpy as np
import torch

from bench.bench_core import build_sd15_checkpoint, inpaint_request
from inlayer.core.client.protocol import ControlChoice, RGBAImage
from inlayer.core.controlnets import CONFIGS_DIR
from inlayer.core.engine import Engine
from inlayer.core.models import ModelRegistry

CACHE = Path.home() / ".cache" / "inlayer-bench"
RESULTS = Path(__file__).parent / "results" / "controlnet.md"
MODEL = "sd15-random"
CONTROLNET = "controlnet-sd15-random"
SIDE, SELECTION, STEPS = 512, 256, 2
TARGET = 1.45


def build_controlnet(folder: Path) -> Path:
    """A ControlNet of the SD 1.5 architecture with random weights, as one fp16 file."""
    from diffusers import ControlNetModel
    from safetensors.torch import save_file

    torch.manual_seed(1)
    config = ControlNetModel.load_config(CONFIGS_DIR / "controlnet-sd15")
    controlnet = ControlNetModel.from_config(config)
    state = {key: value.half().contiguous() for key, value in controlnet.state_dict().items()}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{CONTROLNET}.safetensors"
    save_file(state, str(path))
    return path


def control_image(side: int) -> RGBAImage:
    """Lines on black: a control map, taken as it is (preprocessor none)."""
    pixels = np.zeros((side, side, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[side // 4 : 3 * side // 4, side // 2 - 2 : side // 2 + 2, :3] = 255
    pixels[side // 2 - 2 : side // 2 + 2, side // 4 : 3 * side // 4, :3] = 255
    return RGBAImage(side, side, pixels.tobytes())


def run_seconds(engine: Engine, request) -> float:
    timings = engine.run(request).timings
    return timings["total"] - timings["load"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (CACHE / f"{MODEL}.safetensors").exists():
        build_sd15_checkpoint(CACHE)
    if not (CACHE / "controlnet" / f"{CONTROLNET}.safetensors").exists():
        build_controlnet(CACHE / "controlnet")

    engine = Engine(ModelRegistry([CACHE], device="cpu", dtype="float32"))
    plain = dataclasses.replace(
        inpaint_request(SIDE, SELECTION, STEPS, MODEL), preset="quality", guidance=1.0, seed=1
    )
    controlled = dataclasses.replace(
        plain, controls=(ControlChoice(CONTROLNET, control_image(SIDE), "none", 1.0),)
    )
    run_seconds(engine, plain)  # warm-up: loads the model
    run_seconds(engine, controlled)  # warm-up: loads the ControlNet
    without, with_control = [], []
    for repeat in range(args.repeats):
        # Each pair in the other order than the last (ABBA), so that a drifting load on this
        # shared machine weighs on both variants alike.
        if repeat % 2:
            with_control.append(run_seconds(engine, controlled))
            without.append(run_seconds(engine, plain))
        else:
            without.append(run_seconds(engine, plain))
            with_control.append(run_seconds(engine, controlled))
    ratios = [c / p for c, p in zip(with_control, without, strict=True)]
    figures = {
        "without_s": statistics.median(without),
        "with_s": statistics.median(with_control),
        "ratio": statistics.median(ratios),
        "runs_without": without,
        "runs_with": with_control,
        "load_average": os.getloadavg(),
    }
    RESULTS.write_text(report(figures, args.repeats), encoding="utf-8")
    print(json.dumps(figures, indent=1))


def report(figures: dict, repeats: int) -> str:
    load = ", ".join(f"{value:.2f}" for value in figures["load_average"])
    runs_without = ", ".join(f"{s:.2f}" for s in figures["runs_without"])
    runs_with = ", ".join(f"{s:.2f}" for s in figures["runs_with"])
    verdict = "meets" if figures["ratio"] <= TARGET else "misses"
    return f"""# One ControlNet on a 512² SD 1.5 inpaint

Written by `python -m bench.bench_controlnet --repeats {repeats}` ({
        platform.processor() or platform.machine()
    }, {os.cpu_count()} CPUs, torch {torch.__version__}, float32, random weights
of the real architectures; load average at the end {load}).

An inpaint of a 512² canvas with a 256² mask (context 512²), quality preset with guidance 1 (each
step runs the UNet and the ControlNet once; guidance would double both alike), {STEPS} steps,
model and ControlNet loaded; seconds from prepare to finish, the two variants interleaved,
medians of {repeats}:

| run | seconds (median) | runs |
| --- | --- | --- |
| without ControlNet | {figures["without_s"]:.2f} | {runs_without} |
| with one ControlNet (weight 1) | {figures["with_s"]:.2f} | {runs_with} |

**Ratio with / without: {figures["ratio"]:.3f}** (median of the per-pair ratios); it {verdict}
the target of ≤ {TARGET}. A ControlNet is the UNet's encoder half plus its zero convolutions; the
autoencoder's encode and decode, the same in both runs, dilute the ratio at 2 steps.
"""


if __name__ == "__main__":
    main()
