"""Benchmark of the fast preset: a 512×512 inpaint on the CPU against its floor.

Not a test: it measures, and writes bench/results/fast.md. Run it with

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_fast [--repeats 3]

Everything has the real architectures with random weights (the compute does not depend on the
values), built once and cached in ~/.cache/inlayer-bench (about 2.2 GB):

- SD 1.5 as one 2 GB .safetensors file in the original layout (bench_core's builder);
- a rank-64 speed LoRA named as LCM-LoRA, in kohya's layout, over the UNet's attention and
  feed-forward layers, in `loras/`;
- TAESD (`AutoencoderTiny`) as a diffusers folder in `vae_approx/`.

Measured in one run, interleaved, medians:

- **fast**: `Engine.run` of an inpaint (512² canvas, 256² mask, context 512²) with the fast
  preset and 2 steps, model loaded: prepare → finish (the result's total minus its load step).
- **floor**: what that run cannot avoid: 2 bare UNet evaluations at batch 1 and one tiny
  autoencoder encode and decode at 512². Targets: fast / floor ≤ 1.15 and fast ≤ 17 s.
- **today's default** (quality: 20 steps with guidance, full VAE), estimated from one UNet
  evaluation at batch 2 and one full VAE encode and decode: 20 × UNet(2) + encode + decode.
- **cold start**: a new registry, the first fast result, the checkpoint file just written (so in
  the OS file cache: a first read from disk adds the disk's time for 2 GB).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.bench_core import build_sd15_checkpoint, centred_mask, random_canvas, timed
from inlayer.core.client.protocol import EditRequest, Mode
from inlayer.core.engine import Engine
from inlayer.core.models import CONFIGS_DIR, ModelRegistry
from inlayer.core.tiny_vae import find_tiny_vaes

CACHE = Path.home() / ".cache" / "inlayer-bench"
RESULTS = Path(__file__).parent / "results" / "fast.md"
MODEL = "sd15-random"
SPEED_LORA = "lcm-lora-random-rank64"
TINY_VAE = "taesd"
LORA_RANK = 64
LORA_LAYERS = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
)
STEPS = 2
SEED = 1


def build_models(folder: Path) -> None:
    """The checkpoint, speed LoRA and tiny autoencoder, unless already built."""
    from diffusers import AutoencoderTiny, UNet2DConditionModel
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / f"{MODEL}.safetensors").is_file():
        print("building SD 1.5 with random weights …", flush=True)
        build_sd15_checkpoint(folder)
    lora_path = folder / "loras" / f"{SPEED_LORA}.safetensors"
    if not lora_path.is_file():
        print("building a rank-64 speed LoRA …", flush=True)
        unet = UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(CONFIGS_DIR / "sd15" / "unet")
        )
        generator = torch.Generator().manual_seed(0)
        state = {}
        for name, layer in unet.named_modules():
            if isinstance(layer, torch.nn.Linear) and name.endswith(LORA_LAYERS):
                key = "lora_unet_" + name.replace(".", "_")
                down = torch.randn(LORA_RANK, layer.in_features, generator=generator) * 0.01
                up = torch.randn(layer.out_features, LORA_RANK, generator=generator) * 0.01
                state[f"{key}.lora_down.weight"] = down.half()
                state[f"{key}.lora_up.weight"] = up.half()
                state[f"{key}.alpha"] = torch.tensor(float(LORA_RANK)).half()
        lora_path.parent.mkdir(exist_ok=True)
        save_file(state, str(lora_path))
    if not (folder / "vae_approx" / TINY_VAE / "config.json").is_file():
        torch.manual_seed(0)
        AutoencoderTiny().save_pretrained(folder / "vae_approx" / TINY_VAE)


def fast_request() -> EditRequest:
    return EditRequest(
        Mode.INPAINT,
        image=random_canvas(512),
        mask=centred_mask(512, 256),
        prompt="a photo of a red apple on a wooden table",
        preset="fast",
        steps=STEPS,
        seed=SEED,
        model=MODEL,
    )


def floor_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded inputs of the floor's pieces at 512²: latents, an image, text embeddings (SD 1.5's
    768 wide) and a timestep."""
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 64, 64, generator=generator)
    image = torch.rand(1, 3, 512, 512, generator=generator) * 2 - 1
    text = torch.randn(1, 77, 768, generator=generator)
    return latents, image, text, torch.tensor(999)


def floor_and_default(engine: Engine) -> tuple[Callable[[], None], Callable[[], dict]]:
    """The floor of the fast run, and one quality step's pieces (for the estimate)."""
    pipe, _ = engine.registry.pipeline(MODEL, Mode.INPAINT)
    installed = find_tiny_vaes(engine.registry.catalog)
    tiny = engine.registry._tiny_vae(next(t for t in installed if t.name == TINY_VAE))
    full_vae = engine.registry._in_memory.full_vae
    latents, image, text, timestep = floor_inputs()

    @torch.inference_mode()
    def floor() -> None:
        for _ in range(STEPS):
            pipe.unet(latents, timestep, encoder_hidden_states=text)
        tiny.encode(image)
        tiny.decode(latents)

    @torch.inference_mode()
    def quality_pieces() -> dict[str, float]:
        return {
            "unet_batch2": timed(
                lambda: pipe.unet(latents.repeat(2, 1, 1, 1), timestep, text.repeat(2, 1, 1))
            ),
            "vae_encode": timed(lambda: full_vae.encode(image)),
            "vae_decode": timed(lambda: full_vae.decode(latents)),
        }

    return floor, quality_pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    build_models(CACHE)

    started = time.perf_counter()
    engine = Engine(ModelRegistry([CACHE], device="cpu"))
    first = engine.run(fast_request())
    cold = {"seconds": time.perf_counter() - started, "timings": first.timings}
    print(f"cold start to the first result: {cold['seconds']:.1f} s", flush=True)
    assert first.parameters["loras"] == [{"name": SPEED_LORA, "scale": 1.0}], first.parameters
    assert first.parameters["vae"] == TINY_VAE and first.parameters["guidance"] <= 1.0

    floor, quality_pieces = floor_and_default(engine)
    fast_times, floor_times, timings = [], [], []
    for repeat in range(args.repeats):
        for variant in ("fast", "floor") if repeat % 2 == 0 else ("floor", "fast"):
            if variant == "floor":
                floor_times.append(timed(floor))
            else:
                result = engine.run(fast_request())
                timings.append(result.timings)
                fast_times.append(result.timings["total"] - result.timings["load"])
        print(f"repeat {repeat + 1}: fast {fast_times[-1]:.2f} s, floor {floor_times[-1]:.2f} s")
    pieces = quality_pieces()
    default_estimate = 20 * pieces["unet_batch2"] + pieces["vae_encode"] + pieces["vae_decode"]
    report = write_report(args.repeats, fast_times, floor_times, timings, pieces,
                          default_estimate, cold)  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)


def write_report(
    repeats: int,
    fast_times: list[float],
    floor_times: list[float],
    timings: list[dict[str, float]],
    pieces: dict[str, float],
    default_estimate: float,
    cold: dict,
) -> str:
    fast, floor = statistics.median(fast_times), statistics.median(floor_times)
    ratio = fast / floor
    verdict = {True: "meets the target", False: "MISSES the target"}
    median_timings = {
        step: statistics.median(t[step] for t in timings) for step in timings[0]
    }  # fmt: skip
    listed = ", ".join
    return "\n".join(
        [
            "# Fast preset benchmark",
            "",
            f"SD 1.5 architecture with random weights (fp32, CPU), a rank-{LORA_RANK} speed LoRA "
            f"(LCM-LoRA's name and layout) fused, TAESD; inpaint of a 256² mask in a 512² canvas "
            f"(512² working size), preset `fast`, {STEPS} steps, guidance off; {repeats} "
            f"interleaved repeats, medians. Machine: {platform.machine()}, "
            f"{platform.processor() or 'unknown CPU'}, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, numpy {np.__version__}.",
            "",
            f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_fast --repeats {repeats}`",
            "",
            "| measure | figures (s) | median | target |",
            "| --- | --- | --- | --- |",
            f"| fast inpaint, prepare → finish | {listed(f'{t:.2f}' for t in fast_times)} | "
            f"{fast:.2f} s | ≤ 17 s: {verdict[fast <= 17]} |",
            f"| floor: {STEPS} UNet evaluations (batch 1) + TAESD encode + decode | "
            f"{listed(f'{t:.2f}' for t in floor_times)} | {floor:.2f} s | – |",
            f"| fast / floor | – | {ratio:.3f} | ≤ 1.15: {verdict[ratio <= 1.15]} |",
            f"| today's default (quality: 20 steps with guidance, full VAE), estimated as 20 × "
            f"UNet at batch 2 ({pieces['unet_batch2']:.2f}) + VAE encode "
            f"({pieces['vae_encode']:.2f}) + decode ({pieces['vae_decode']:.2f}) | – | "
            f"{default_estimate:.0f} s | – |",
            f"| speed-up of fast over today's default | – | {default_estimate / fast:.0f}× | – |",
            f"| cold start: new registry → first fast result (2 GB single file, in the OS "
            f"file cache) | – | {cold['seconds']:.1f} s | report |",
            "",
            f"Step timings of the fast runs (medians): `{json.dumps({k: round(v, 2) for k, v in median_timings.items()})}`; "  # noqa: E501
            f"of the cold start: `{json.dumps({k: round(v, 2) for k, v in cold['timings'].items()})}` "  # noqa: E501
            "(its load step reads the checkpoint, the LoRA and TAESD and fuses the LoRA).",
            "",
        ]
    )


if __name__ == "__main__":
    main()
