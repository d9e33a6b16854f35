"""Benchmark of object removal and face restore on the CPU.

Not a test: it measures, and writes bench/results/remove.md. Run it with

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_remove [--repeats 3]

The models have the real architectures with random weights (the compute does not depend on the
values), built once into ~/.cache/inlayer-bench/restore (LaMa 200 MB, GFPGAN 350 MB); the fast
inpaint reuses bench_fast's models.

Measured in one run, interleaved, medians:

- **remove**: `Engine.run` of a remove (256² selection in a 512² canvas: a 512² context), the
  model loaded, against the **bare LaMa call** on the same 512² input (spandrel's descriptor):
  target remove / bare ≤ 1.10; and against bench_fast's **2-step fast-preset inpaint** of the
  same selection (prepare → finish).
- **face restore**: `Engine.run` of a restore of a 1024² layer with two faces (GFPGAN; the
  faces where a stand-in detector with YuNet's outputs puts them, read by the real
  `cv2.FaceDetectorYN`), against two bare GFPGAN calls at 512².
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bench.bench_core import random_canvas, timed
from bench.bench_fast import CACHE, build_models, fast_request
from inlayer.core.client.protocol import EditRequest, Mode, RGBAImage
from inlayer.core.engine import Engine
from inlayer.core.face_restore import DETECTION_SIDE
from inlayer.core.geometry import image_array, mask_array
from inlayer.core.models import ModelRegistry
from inlayer.core.restoration_models import rgb_tensor
from tests.fixtures.image_models import (
    build_gfpgan,
    build_lama,
    save_module,
    write_stand_in_face_detector,
)

RESTORE_CACHE = CACHE / "restore"
RESULTS = Path(__file__).parent / "results" / "remove.md"
LAMA, GFPGAN = "lama-random", "gfpgan-random"
FACE_LAYER = 1024
# Two faces of the 1024² layer (x, y, width, height), in layer pixels.
FACES = ((160, 220, 260, 320), (600, 300, 240, 300))


def build_restore_models(folder: Path) -> None:
    if not (folder / "inpaint" / f"{LAMA}.safetensors").is_file():
        print("building LaMa with random weights …", flush=True)
        save_module(build_lama(), folder / "inpaint" / f"{LAMA}.safetensors")
    if not (folder / "facerestore_models" / f"{GFPGAN}.safetensors").is_file():
        print("building GFPGAN with random weights …", flush=True)
        save_module(build_gfpgan(), folder / "facerestore_models" / f"{GFPGAN}.safetensors")
    scale = DETECTION_SIDE / FACE_LAYER  # the detector sees the layer at this scale
    boxes = [tuple(round(value * scale) for value in face) for face in FACES]
    write_stand_in_face_detector(folder / "facedetection" / "yunet.onnx", DETECTION_SIDE, boxes)


def remove_request() -> EditRequest:
    request = fast_request()
    return EditRequest(
        Mode.REMOVE, image=request.image, mask=request.mask, remover=LAMA, seed=1, grow=0, feather=0
    )


def face_request() -> EditRequest:
    pixels = np.array(image_array(random_canvas(FACE_LAYER)))
    return EditRequest(
        Mode.RESTORE,
        image=RGBAImage(FACE_LAYER, FACE_LAYER, pixels.tobytes()),
        restore_faces=GFPGAN,
        seed=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    build_models(CACHE)
    build_restore_models(RESTORE_CACHE)
    engine = Engine(ModelRegistry([CACHE, RESTORE_CACHE], device="cpu"))
    removal = engine.run(remove_request())  # loads LaMa
    assert removal.model == LAMA, removal.hint
    faces = engine.run(face_request())  # loads GFPGAN
    assert faces.hint == f"2 faces restored with {GFPGAN}", faces.hint
    engine.run(fast_request())  # loads SD 1.5, the LoRA and TAESD

    lama = _loaded(engine, "inpaint", LAMA, ("Inpainting",))
    gfpgan = _loaded(engine, "facerestore_models", GFPGAN, ("FaceSR",))
    request = remove_request()
    image = rgb_tensor(np.ascontiguousarray(image_array(request.image)[..., :3]), "cpu")
    hole = torch.from_numpy((mask_array(request.mask) > 0).astype(np.float32))[None, None]
    face = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0)) * 2 - 1

    @torch.inference_mode()
    def bare_lama() -> None:
        lama.descriptor(image, hole)

    @torch.inference_mode()
    def bare_gfpgan() -> None:
        for _ in FACES:
            gfpgan.descriptor.model(face, randomize_noise=False)

    variants = {
        "remove": lambda: engine.run(remove_request()),
        "bare LaMa": bare_lama,
        "fast inpaint": lambda: engine.run(fast_request()),
        "face restore": lambda: engine.run(face_request()),
        "bare GFPGAN ×2": bare_gfpgan,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    loads = [os.getloadavg()[0]]
    for repeat in range(args.repeats):
        order = list(variants) if repeat % 2 == 0 else list(reversed(variants))
        for name in order:
            times[name].append(timed(variants[name]))
        loads.append(os.getloadavg()[0])
        print(f"repeat {repeat + 1}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()))
    report = write_report(args.repeats, times, loads)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)


def _loaded(engine: Engine, folder: str, name: str, purposes: tuple):
    from inlayer.core.model_files import FACE_RESTORERS, OBJECT_REMOVERS
    from inlayer.core.restoration_models import ModelSource

    kind = OBJECT_REMOVERS if folder == "inpaint" else FACE_RESTORERS
    return ModelSource(engine.registry).load(kind, name, field=folder, purposes=purposes)


def write_report(repeats: int, times: dict[str, list[float]], loads: list[float]) -> str:
    median = {name: statistics.median(values) for name, values in times.items()}
    remove_ratio = median["remove"] / median["bare LaMa"]
    face_ratio = median["face restore"] / median["bare GFPGAN ×2"]
    verdict = {True: "meets the target", False: "MISSES the target"}

    def row(name: str, what: str, target: str = "–") -> str:
        figures = ", ".join(f"{value:.2f}" for value in times[name])
        return f"| {what} | {figures} | {median[name]:.2f} s | {target} |"

    return "\n".join(
        [
            "# Remove and face restore benchmark",
            "",
            "LaMa (big-lama's architecture) and GFPGAN v1.4's with random weights (fp32, CPU), "
            f"{repeats} interleaved repeats, medians. Machine: {platform.machine()}, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; load average "
            f"during the run (1 min): {', '.join(f'{load:.1f}' for load in loads)}.",
            "",
            f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_remove "
            f"--repeats {repeats}`",
            "",
            "| measure | figures (s) | median | target |",
            "| --- | --- | --- | --- |",
            row("remove", "remove through the engine: 256² selection, 512² context"),
            row("bare LaMa", "bare LaMa call on the same 512² input"),
            f"| remove / bare LaMa | – | {remove_ratio:.3f} | "
            f"≤ 1.10: {verdict[remove_ratio <= 1.10]} |",
            row("fast inpaint", "2-step fast-preset inpaint of the same selection"),
            f"| fast inpaint / remove | – | {median['fast inpaint'] / median['remove']:.1f}× | – |",
            row("face restore", f"face restore of a {FACE_LAYER}² layer with two faces (GFPGAN)"),
            row("bare GFPGAN ×2", "two bare GFPGAN calls at 512²"),
            f"| face restore / bare GFPGAN ×2 | – | {face_ratio:.3f} | report |",
            "",
        ]
    )


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"benchmark took {time.perf_counter() - started:.0f} s")
