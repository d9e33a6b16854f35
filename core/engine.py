"""Run one edit: validate → resolve the model → prepare → diffuse → finish.

- **prepare**: the blend mask (grown, feathered) and its mask bounds; the context bounds around
  them (sides multiples of the pipeline's VAE factor); the context cut out, its masked part
  pre-filled (inpaint), scaled to the working extent.
- **diffuse**: one pipeline call per variation, always with explicit sizes, seeded per variation
  (seed, seed + 1, …), reporting progress after every step with a latent preview when due, and
  stopping at the next step when cancelled.
- **finish**: the generated pixels scaled back to the context, cut to the mask bounds, with the
  blend mask as alpha (`geometry.layer_pixels`). Diffusers' inpaint pipeline binarizes the mask;
  the soft blend happens here, so pixels outside the blend mask are never touched.

`Mode.FILL` runs the weight-free fill alone and needs no model.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .client.bounds import Bounds, Extent, context_bounds
from .client.protocol import (
    Cancelled,
    EditRequest,
    EditResult,
    FillMode,
    GeneratedImage,
    InvalidRequest,
    Mask,
    Mode,
    OutOfMemory,
    Progress,
    ProgressCallback,
    RGBAImage,
)
from .fill import fill_masked
from .geometry import blend_mask, layer_pixels, resize_mask, resize_rgb, working_extent
from .models import ModelRegistry, free_memory, is_out_of_memory
from .previews import latent_preview
from .schedulers import make_scheduler

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

SEED_RANGE = 2**32


def image_array(image: RGBAImage) -> np.ndarray:
    """HxWx4 uint8 view of an `RGBAImage` (read-only: it shares the bytes)."""
    return np.frombuffer(image.data, dtype=np.uint8).reshape(image.height, image.width, 4)


def mask_array(mask: Mask) -> np.ndarray:
    """HxW uint8 view of a `Mask` (read-only)."""
    return np.frombuffer(mask.data, dtype=np.uint8).reshape(mask.height, mask.width)


def rgba_image(pixels: np.ndarray) -> RGBAImage:
    """An `RGBAImage` of an HxWx4 uint8 array."""
    height, width = pixels.shape[:2]
    return RGBAImage(width, height, np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())


@dataclass
class Prepared:
    """Everything the pipeline call and the finish need, in the words of the module docstring."""

    canvas: Extent
    mask_bounds: Bounds  # the result's rectangle (the whole canvas without a mask)
    blend: np.ndarray | None  # HxW blend mask of the mask bounds; None without a mask
    context: Bounds
    working: Extent
    init_rgb: np.ndarray | None  # the context at the working extent (img2img, inpaint)
    init_mask: np.ndarray | None  # the context's blend mask at the working extent (inpaint)
    source_alpha: np.ndarray | None  # the canvas alpha over the mask bounds (img2img, no mask)


def executed_steps(request: EditRequest) -> int:
    """Denoising steps a run performs: img2img and inpaint skip the first (1 - strength)."""
    if request.mode in (Mode.IMG2IMG, Mode.INPAINT):
        return min(int(request.steps * request.strength), request.steps)
    return request.steps


def resolve_fill(request: EditRequest, inpainting_model: bool) -> FillMode:
    """AUTO: keep the pixels for inpainting models (they see the mask), Telea for the others."""
    if request.fill != FillMode.AUTO:
        return request.fill
    return FillMode.KEEP if inpainting_model else FillMode.TELEA


def prepare(
    request: EditRequest, *, multiple: int, native_side: int, fill: FillMode, seed: int
) -> Prepared:
    """The geometry of a diffusion run (see the module docstring).

    `multiple` is the pipeline's VAE scale factor. The working extent is also a multiple of 8:
    diffusers' text-to-image pipelines refuse other sizes whatever the VAE.
    """
    if request.image is not None:
        canvas = Extent(request.image.width, request.image.height)
    else:
        canvas = Extent(int(request.width or 0), int(request.height or 0))
    selection = None
    if request.mask is not None:
        selection = blend_mask(mask_array(request.mask), request.grow, request.feather)
        if selection is None and request.mode == Mode.INPAINT:
            raise InvalidRequest("grow", f"shrinking by {-request.grow} px leaves no mask")
    if selection is None:
        blend, mask_bounds = None, Bounds.of(canvas)
        context = mask_bounds
    else:
        blend, mask_bounds = selection
        strength = 1.0 if request.mode == Mode.TXT2IMG else request.strength
        context = context_bounds(
            mask_bounds, canvas, strength=strength, min_size=native_side, multiple=multiple
        )
    working = working_extent(
        context.extent, target_pixels=native_side**2, multiple=math.lcm(multiple, 8)
    )

    init_rgb = init_mask = source_alpha = None
    if request.image is not None and request.mode != Mode.TXT2IMG:
        pixels = image_array(request.image)
        context_rgb = pixels[context.slices][..., :3]
        if blend is not None:
            context_mask = np.zeros((context.height, context.width), dtype=np.uint8)
            context_mask[mask_bounds.relative_to(context).slices] = blend
            if request.mode == Mode.INPAINT:
                context_rgb = fill_masked(
                    np.ascontiguousarray(context_rgb), context_mask, fill, seed=seed
                )
                init_mask = resize_mask(context_mask, working)
        elif request.mode == Mode.IMG2IMG:
            source_alpha = pixels[mask_bounds.slices][..., 3]
        init_rgb = resize_rgb(np.ascontiguousarray(context_rgb), working)
    return Prepared(canvas, mask_bounds, blend, context, working, init_rgb, init_mask, source_alpha)


def finish(prepared: Prepared, generated: np.ndarray) -> np.ndarray:
    """The RGBA of the mask bounds from the working-size RGB the pipeline made."""
    generated = resize_rgb(generated, prepared.context.extent)
    inside = prepared.mask_bounds.relative_to(prepared.context)
    generated = generated[inside.slices]
    if prepared.blend is not None:
        return layer_pixels(generated, prepared.blend)
    alpha = prepared.source_alpha
    if alpha is None:
        alpha = np.full(generated.shape[:2], 255, dtype=np.uint8)
    return layer_pixels(generated, alpha)


class _StopRun(Exception):
    """Raised inside the step callback to leave the pipeline at once when cancelled.

    (Setting `pipe._interrupt` would skip the remaining steps but still run the VAE decode,
    about 10 s at 512² on a CPU, for a result that is thrown away.)
    """


class Engine:
    """Runs edit requests on the models of a registry. One run at a time (a lock guards it)."""

    def __init__(self, registry: ModelRegistry | None = None) -> None:
        """`registry` defaults to the one the user's settings describe (config.ini, env)."""
        if registry is None:
            from .settings import load_settings

            registry = load_settings().model_registry()
        self.registry = registry
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        return self.registry.device

    def run(
        self,
        request: EditRequest,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult:
        """The result of `request`; raises an `InlayerError` subclass on any failure."""
        with self._lock:
            started = time.perf_counter()
            request.validate()
            if request.mode in (Mode.IMG2IMG, Mode.INPAINT) and executed_steps(request) < 1:
                raise InvalidRequest(
                    "strength",
                    f"{request.strength} with {request.steps} steps runs no step "
                    f"(int(steps × strength) = 0); raise the strength or the steps",
                )
            seed = request.seed if request.seed >= 0 else secrets.randbelow(SEED_RANGE)
            if request.mode == Mode.FILL:
                return self._fill(request, seed, started)
            try:
                return self._diffuse(request, seed, started, on_progress, cancel)
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                free_memory(self.device)
                raise OutOfMemory(
                    f"out of memory on {self.device} while running {request.mode.value}: make "
                    "the selection smaller, ask for fewer variations, close other GPU programs, "
                    "or enable CPU offload (cpu_offload in the settings)"
                ) from None

    def _diffuse(
        self,
        request: EditRequest,
        seed: int,
        started: float,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> EditResult:
        ref = request.model or self.registry.default_for(request.mode)
        pipe = self.registry.pipeline(ref, request.mode)
        loaded = self.registry.loaded()
        assert loaded is not None  # pipeline() just loaded it
        source = loaded.source
        timings = {"load": time.perf_counter() - started}

        mark = time.perf_counter()
        multiple = int(pipe.vae_scale_factor)
        native_side = int(pipe.unet.config.sample_size) * multiple
        fill = resolve_fill(request, source.inpainting)
        prepared = prepare(
            request, multiple=multiple, native_side=native_side, fill=fill, seed=seed
        )
        pipe.scheduler = make_scheduler(request.scheduler, loaded.scheduler_config)
        timings["prepare"] = time.perf_counter() - mark

        mark = time.perf_counter()
        images = []
        for variation in range(request.count):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            variation_seed = (seed + variation) % SEED_RANGE
            callback = self._step_callback(request, variation, source.family, on_progress, cancel)
            generated = self._call(pipe, request, prepared, variation_seed, callback)
            images.append((variation_seed, generated))
        timings["diffusion"] = time.perf_counter() - mark

        mark = time.perf_counter()
        results = [
            GeneratedImage(
                rgba_image(finish(prepared, generated)),
                prepared.mask_bounds.x,
                prepared.mask_bounds.y,
                variation_seed,
            )
            for variation_seed, generated in images
        ]
        timings["finish"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - started
        parameters = request.parameters() | {"seed": seed, "model": source.name}
        return EditResult(
            results,
            parameters,
            timings,
            prepared.canvas.width,
            prepared.canvas.height,
            model=source.name,
        )

    def _step_callback(
        self,
        request: EditRequest,
        variation: int,
        family: str,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> Callable[..., dict[str, Any]]:
        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]):
            if cancel is not None and cancel.is_set():
                raise _StopRun
            if on_progress is not None:
                # The pipeline knows how many steps it really runs (strength, 2nd-order solvers).
                per_variation = int(pipe.num_timesteps)
                interval = request.preview_interval
                preview = None
                if interval and (step + 1) % interval == 0:
                    preview = latent_preview(tensors["latents"], family)
                on_progress(
                    Progress(
                        step=variation * per_variation + step + 1,
                        total=per_variation * request.count,
                        variation=variation,
                        preview=preview,
                    )
                )
            return tensors

        return on_step_end

    def _call(
        self,
        pipe: DiffusionPipeline,
        request: EditRequest,
        prepared: Prepared,
        seed: int,
        callback: Callable[..., dict[str, Any]],
    ) -> np.ndarray:
        """One pipeline run; the working-size HxWx3 uint8 RGB it generated."""
        import torch
        from PIL import Image

        # A CPU generator draws the same noise whatever the device the pipeline runs on.
        arguments: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance,
            "generator": torch.Generator("cpu").manual_seed(seed),
            "callback_on_step_end": callback,
            "output_type": "np",
        }
        size = {"height": prepared.working.height, "width": prepared.working.width}
        if request.mode == Mode.TXT2IMG:
            arguments |= size
        elif request.mode == Mode.IMG2IMG:
            # img2img takes its size from the image, which is already at the working extent.
            arguments |= {"image": Image.fromarray(prepared.init_rgb), "strength": request.strength}
        else:
            arguments |= size | {
                "image": Image.fromarray(prepared.init_rgb),
                "mask_image": Image.fromarray(prepared.init_mask),
                "strength": request.strength,
            }
        try:
            output = pipe(**arguments)
        except _StopRun:
            raise Cancelled("cancelled") from None
        pixels = np.asarray(output.images[0])
        return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)

    def _fill(self, request: EditRequest, seed: int, started: float) -> EditResult:
        """Mode.FILL: the masked area filled from its surroundings, no model."""
        assert request.image is not None and request.mask is not None  # validate() checked
        canvas = Extent(request.image.width, request.image.height)
        selection = blend_mask(mask_array(request.mask), request.grow, request.feather)
        if selection is None:
            raise InvalidRequest("grow", f"shrinking by {-request.grow} px leaves no mask")
        blend, mask_bounds = selection
        # The fill reads surroundings up to about the masked rectangle's longer side away.
        area = mask_bounds.pad(max(mask_bounds.width, mask_bounds.height)).clamp(canvas)
        pixels = np.ascontiguousarray(image_array(request.image)[area.slices])
        inside = mask_bounds.relative_to(area)
        # Fill every pixel the blend touches fully; the blend becomes the result's alpha.
        fill_mask = np.zeros(pixels.shape[:2], dtype=np.uint8)
        fill_mask[inside.slices] = np.where(blend > 0, 255, 0).astype(np.uint8)
        prepared_at = time.perf_counter()
        results = []
        for variation in range(request.count):
            variation_seed = (seed + variation) % SEED_RANGE
            filled = fill_masked(pixels, fill_mask, request.fill, seed=variation_seed)
            results.append(
                GeneratedImage(
                    rgba_image(layer_pixels(filled[inside.slices], blend)),
                    mask_bounds.x,
                    mask_bounds.y,
                    variation_seed,
                )
            )
        finished = time.perf_counter()
        timings = {
            "load": 0.0,
            "prepare": prepared_at - started,
            "diffusion": 0.0,
            "finish": finished - prepared_at,
            "total": finished - started,
        }
        parameters = request.parameters() | {"seed": seed, "model": ""}
        return EditResult(results, parameters, timings, canvas.width, canvas.height, model="")
