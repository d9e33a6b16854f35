"""Benchmark of the full-resolution refine: a big selection refined in tiles against one tile.

Not a test: it measures, and writes bench/results/tiled_refine.md. Run it with

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_tiled_refine [--sizes 1024 2048]

The SD 1.5 architecture from the configs Inlayer ships, random weights (the compute does not
depend on the values), img2img pipeline, fp32 on the CPU, guidance off and one denoising step a
tile (strength 0.3 of 4 steps), so that a run stays short; the full autoencoder encodes and
decodes every tile. Each measurement runs in a fresh process (peak RSS is a high-water mark),
the variants interleaved round by round:

- **tile**: `tiled_refine.refine_picture` of a 512² picture: one tile;
- **N²**: the same of an N² picture: its tiles (512² with 128 px overlaps), blended.

Reported: the median time of each, the ratio time(N²) / (tiles × time(tile)) (target ≤ 1.15)
and each run's peak RSS (flat in N: one tile is in the model at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "tiled_refine.md"
TILE = 512
STEPS, STRENGTH = 4, 0.3  # int(4 × 0.3) = 1 denoising step a tile


def build_pipeline():
    """SD 1.5's img2img pipeline from the shipped configs, random weights."""
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from inlayer.core.models import CLIP_TOKENIZER_DIR, CONFIGS_DIR

    configs = CONFIGS_DIR / "sd15"
    torch.manual_seed(0)
    return StableDiffusionImg2ImgPipeline(
        unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(configs / "unet")),
        vae=AutoencoderKL.from_config(AutoencoderKL.load_config(configs / "vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(configs / "text_encoder")),
        tokenizer=CLIPTokenizer.from_pretrained(CLIP_TOKENIZER_DIR, model_max_length=77),
        scheduler=PNDMScheduler.from_pretrained(configs / "scheduler"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def measure(side: int) -> dict:
    """One refine of a side² picture in this process: seconds, tiles, peak RSS (MiB)."""
    import numpy as np
    import torch

    from inlayer.core.client.bounds import Bounds, Extent
    from inlayer.core.tiled_refine import plan_refine, refine_picture

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    pipe = build_pipeline()
    pipe.set_progress_bar_config(disable=True)
    extent = Extent(side, side)
    plan = plan_refine(extent, Bounds.of(extent), tile_side=TILE, steps=STEPS, strength=STRENGTH)
    picture = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    arguments = {"prompt": "a stone wall", "negative_prompt": "", "guidance_scale": 1.0}
    started = time.perf_counter()
    with torch.inference_mode():
        refine_picture(
            picture, plan, pipe=pipe, arguments=arguments, inpainting=False, seed=1,
            multiple=8, on_step=lambda: None, cancel=None,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"side": side, "seconds": seconds, "tiles": len(plan.tiles), "peak_mib": peak}


def run_child(side: int) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_tiled_refine", "--child", str(side)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


def write_report(runs: dict[int, list[dict]], load: tuple[float, float, float]) -> str:
    tile = statistics.median(run["seconds"] for run in runs[TILE])
    lines = [
        "# Tiled refine: a big selection against one tile",
        "",
        "`HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_tiled_refine "
        f"--sizes {' '.join(str(side) for side in runs if side != TILE)}`",
        "",
        f"SD 1.5 architecture, random weights, fp32, {platform.processor() or platform.machine()}, "
        f"{os.environ.get('OMP_NUM_THREADS', '2')} threads; one denoising step a tile, guidance "
        f"off, full autoencoder. Load average at the end: {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}. Medians of {len(runs[TILE])} interleaved rounds, each a fresh process.",
        "",
        "| picture | tiles | time | tiles × one tile | ratio | peak RSS |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for side, measured in runs.items():
        seconds = statistics.median(run["seconds"] for run in measured)
        tiles = measured[0]["tiles"]
        peak = max(run["peak_mib"] for run in measured)
        lines.append(
            f"| {side}² | {tiles} | {seconds:.1f} s | {tiles * tile:.1f} s | "
            f"{seconds / (tiles * tile):.3f} | {peak:.0f} MiB |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    runs: dict[int, list[dict]] = {side: [] for side in (TILE, *args.sizes)}
    for _ in range(args.rounds):
        for side in runs:
            runs[side].append(run_child(side))
            print(json.dumps(runs[side][-1]), file=sys.stderr)
    report = write_report(runs, os.getloadavg())
    RESULTS.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
