"""Run one edit in five steps, read top to bottom like a diffusers pipeline: `Engine.run`.

1. **Check** the request, and pick its seed when it asks for a random one.
2. **Load** the model: the request's or the mode's default. The registry caches it and hands out
   the mode's pipeline with a record of what it loaded (`models.LoadedModel`). Then the run's
   `presets.Recipe`: the request's fields over its preset's (steps, guidance, scheduler, LoRAs,
   autoencoder), and the recipe's LoRAs and autoencoder on the pipeline (`registry.equip`),
   with the OpenVINO backend as OpenVINO models (`openvino_backend`). This is the one place
   where presets, LoRAs, tiny autoencoders, the backend, ControlNets (`controlnets`: the
   mode's ControlNet pipeline over the same weights) and a style reference (`style_reference`:
   an IP-Adapter) enter a run.
3. **Prepare**: the blend mask (grown, feathered) and its mask bounds; the context bounds around
   them (sides multiples of the model's VAE factor); where the result goes (`Placement`); the
   context cut out, its masked part pre-filled (inpaint) and scaled to the working extent
   (`PipelineInput`); the recipe's scheduler.
4. **Diffuse**: one pipeline call per variation on a CPU, all variations in one batched call on
   a GPU; always with explicit sizes, the control maps of the request's controls cut and
   scaled as the canvas is (`controlnets.control_arguments`), seeded per variation (seed,
   seed + 1, …), reporting progress after every step with a preview when due (the tiny
   autoencoder's where one fits the model, else the linear latent map), and stopping at the
   next step when cancelled. Each variation gives a `Variation`.
5. **Finish**: the generated pixels scaled back to the context, cut to the mask bounds, with the
   blend mask as alpha (`geometry.layer_pixels`). Diffusers' inpaint pipeline binarizes the mask;
   the soft blend happens here, so pixels outside the blend mask are never touched.

`Mode.FILL` runs the weight-free fill after step 1 and needs no model. `Mode.EDIT` runs as
img2img does, on an instruction-edit model, with the request's `image_guidance`; with a
selection, its result is blended back as an inpaint's is.
"""

from __future__ import annotations

import dataclasses
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
from .controlnets import ControlNets, control_arguments, scaled_notice
from .fill import fill_masked
from .geometry import blend_mask, layer_pixels, resize_mask, resize_rgb, working_extent
from .models import LoadedModel, ModelRegistry, free_memory, is_out_of_memory
from .presets import Recipe, recipe_for
from .previews import Preview, preview_of
from .prompt_weights import weighted_prompt_arguments
from .schedulers import make_scheduler
from .style_reference import StyleAdapters, style_arguments

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


@dataclass(frozen=True)
class Placement:
    """Where a run's result goes on the canvas and how it blends in: what step 5 needs."""

    canvas: Extent
    mask_bounds: Bounds  # the result's rectangle (the whole canvas without a mask)
    context: Bounds  # the part of the canvas the model sees
    blend: np.ndarray | None  # HxW blend mask of the mask bounds; None without a mask
    source_alpha: np.ndarray | None  # the canvas alpha over the mask bounds (img2img, no mask)


@dataclass(frozen=True)
class PipelineInput:
    """What the pipeline starts from, at the working extent: what step 4 needs."""

    working: Extent
    image: np.ndarray | None  # HxWx3 RGB of the context (img2img, inpaint)
    mask: np.ndarray | None  # HxW blend mask of the context (inpaint)
    context: Bounds | None = None  # the canvas's part it shows (control images are cut to it)


@dataclass(frozen=True)
class Variation:
    """What one pipeline call generated: the working-size HxWx3 uint8 RGB, and its seed."""

    seed: int
    rgb: np.ndarray


class Stopwatch:
    """The seconds each step of a run took, in the order the steps ran, and the total."""

    def __init__(self) -> None:
        self._started = self._lap_started = time.perf_counter()
        self._seconds: dict[str, float] = {}

    def lap(self, step: str) -> None:
        """`step` ended now; it began when the previous one ended."""
        now = time.perf_counter()
        self._seconds[step] = now - self._lap_started
        self._lap_started = now

    def skip(self, step: str) -> None:
        """`step` had nothing to do in this run."""
        self._seconds[step] = 0.0

    def timings(self) -> dict[str, float]:
        return self._seconds | {"total": time.perf_counter() - self._started}


def executed_steps(request: EditRequest, steps: int) -> int:
    """Denoising steps a run of `steps` performs: img2img and inpaint skip the first
    (1 - strength)."""
    if request.mode in (Mode.IMG2IMG, Mode.INPAINT):
        return min(int(steps * request.strength), steps)
    return steps


def check_request(request: EditRequest) -> None:
    """Step 1: the request's own checks, and, where it says its steps, that it runs one."""
    request.validate()
    if request.steps is not None:
        check_steps(request, request.steps)


def check_steps(request: EditRequest, steps: int) -> None:
    """That a run of `steps` (the request's or its preset's) runs at least one step."""
    if request.mode in (Mode.IMG2IMG, Mode.INPAINT) and executed_steps(request, steps) < 1:
        raise InvalidRequest(
            "strength",
            f"{request.strength} with {steps} steps runs no step "
            f"(int(steps × strength) = 0); raise the strength or the steps",
        )


def as_inpaint(request: EditRequest) -> EditRequest:
    """A txt2img or img2img request as an inpainting model runs it, as AUTOMATIC1111 does: an
    inpaint of the whole canvas (or of the request's mask). Fully masked, the model's
    conditioning image is blank whatever the pixels, so txt2img starts from a grey canvas at
    full strength and img2img from its image at its strength."""
    if request.image is not None:
        image = request.image
    else:
        width, height = int(request.width or 0), int(request.height or 0)
        image = RGBAImage(width, height, bytes((128, 128, 128, 255)) * (width * height))
    if request.mask is not None:
        mask, grow, feather, fill = request.mask, request.grow, request.feather, request.fill
    else:
        full = Mask(image.width, image.height, b"\xff" * (image.width * image.height))
        mask, grow, feather, fill = full, 0, 0, FillMode.KEEP
    strength = 1.0 if request.mode == Mode.TXT2IMG else request.strength
    return dataclasses.replace(
        request,
        mode=Mode.INPAINT,
        image=image,
        mask=mask,
        grow=grow,
        feather=feather,
        fill=fill,
        strength=strength,
    )


def resolve_fill(request: EditRequest, inpainting_model: bool) -> FillMode:
    """AUTO: keep the pixels for inpainting models (they see the mask), Telea for the others."""
    if request.fill != FillMode.AUTO:
        return request.fill
    return FillMode.KEEP if inpainting_model else FillMode.TELEA


def prepare(
    request: EditRequest, *, multiple: int, native_side: int, fill: FillMode, seed: int
) -> tuple[Placement, PipelineInput]:
    """The geometry of a diffusion run (step 3 in the module docstring).

    `multiple` is the model's VAE scale factor. The working extent is also a multiple of 8:
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

    image = mask = source_alpha = None
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
                mask = resize_mask(context_mask, working)
        elif request.mode in (Mode.IMG2IMG, Mode.EDIT):
            source_alpha = pixels[mask_bounds.slices][..., 3]
        image = resize_rgb(np.ascontiguousarray(context_rgb), working)
    return (
        Placement(canvas, mask_bounds, context, blend, source_alpha),
        PipelineInput(working, image, mask, context),
    )


def pipeline_arguments(
    request: EditRequest, recipe: Recipe, pipeline_input: PipelineInput
) -> dict[str, Any]:
    """The arguments of the mode's pipeline call that every variation shares. Guidance ≤ 1
    runs one UNet evaluation per step (diffusers skips the unconditional pass)."""
    from PIL import Image

    arguments: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "num_inference_steps": recipe.steps,
        "guidance_scale": recipe.guidance,
        "output_type": "np",
    }
    working = pipeline_input.working
    size = {"height": working.height, "width": working.width}
    if request.mode == Mode.TXT2IMG:
        return arguments | size
    image = Image.fromarray(pipeline_input.image)
    if request.mode == Mode.IMG2IMG:
        # img2img takes its size from the image, which is already at the working extent.
        return arguments | {"image": image, "strength": request.strength}
    if request.mode == Mode.EDIT:
        # An instruction edit (InstructPix2Pix) also takes its size from the image.
        return arguments | {"image": image, "image_guidance_scale": request.image_guidance}
    return (
        arguments
        | size
        | {
            "image": image,
            "mask_image": Image.fromarray(pipeline_input.mask),
            "strength": request.strength,
        }
    )


class _StopRun(Exception):
    """Raised inside the step callback to leave the pipeline at once when cancelled.

    (Setting `pipe._interrupt` would skip the remaining steps but still run the VAE decode,
    about 10 s at 512² on a CPU, for a result that is thrown away.)
    """


def step_callback(
    request: EditRequest,
    variation: int,
    batch: int,
    preview: Preview,
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> Callable[..., dict[str, Any]]:
    """The pipeline's `callback_on_step_end` of a call that runs `batch` variations from
    `variation` on: stop when cancelled, else report the progress (a step of a batched call
    advances each of its variations)."""

    def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]):
        if cancel is not None and cancel.is_set():
            raise _StopRun
        if on_progress is not None:
            # The pipeline knows how many steps it really runs (strength, 2nd-order solvers).
            per_variation = int(pipe.num_timesteps)
            interval = request.preview_interval
            picture = None
            if interval and (step + 1) % interval == 0:
                picture = preview(tensors["latents"])
            on_progress(
                Progress(
                    step=variation * per_variation + (step + 1) * batch,
                    total=per_variation * request.count,
                    variation=variation,
                    preview=picture,
                )
            )
        return tensors

    return on_step_end


def finish(placement: Placement, generated: np.ndarray) -> np.ndarray:
    """The RGBA of the mask bounds from the working-size RGB the pipeline made."""
    generated = resize_rgb(generated, placement.context.extent)
    inside = placement.mask_bounds.relative_to(placement.context)
    generated = generated[inside.slices]
    if placement.blend is not None:
        return layer_pixels(generated, placement.blend)
    alpha = placement.source_alpha
    if alpha is None:
        alpha = np.full(generated.shape[:2], 255, dtype=np.uint8)
    return layer_pixels(generated, alpha)


def out_of_memory_message(device: str, mode: Mode) -> str:
    """What to do when a run ran out of memory: on a GPU, its memory; on a CPU, the computer's."""
    fixes = "make the selection smaller, ask for fewer variations"
    if device.startswith("cuda"):
        fixes += ", close other programs using the GPU, or enable CPU offload (cpu_offload)"
    else:
        fixes += ", or close other programs"
    return f"out of memory on {device} while running {mode.value}: {fixes}"


def edit_result(
    request: EditRequest,
    seed: int,
    model_name: str,
    canvas: Extent,
    images: list[GeneratedImage],
    watch: Stopwatch,
    recipe: Recipe | None = None,
) -> EditResult:
    """The result, its parameters with every choice the run made (seed, model, recipe)."""
    timings = watch.timings()
    parameters = request.parameters() | {"seed": seed, "model": model_name}
    if recipe is not None:
        parameters |= recipe.parameters()
    return EditResult(
        images,
        parameters,
        timings,
        canvas.width,
        canvas.height,
        model=model_name,
        hint=recipe.hint if recipe else "",
    )


class Engine:
    """Runs edit requests on the models of a registry. One run at a time (a lock guards it)."""

    def __init__(self, registry: ModelRegistry | None = None) -> None:
        """`registry` defaults to the one the user's settings describe (config.ini, env)."""
        if registry is None:
            from .settings import load_settings

            registry = load_settings().model_registry()
        self.registry = registry
        self.controlnets = ControlNets(registry)
        self.styles = StyleAdapters(registry)
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
            watch = Stopwatch()
            # 1. Check the request.
            check_request(request)
            seed = request.seed if request.seed >= 0 else secrets.randbelow(SEED_RANGE)
            if request.mode == Mode.FILL:
                return self._fill(request, seed, watch)
            asked = request  # what the result reports; `request` below is what the model runs
            try:
                # 2. Load the model, then the request's recipe and what it adds to the model.
                request = self._as_the_model_runs_it(request)
                pipe, model = self._load(request)
                recipe = recipe_for(request, model, self.registry.catalog)
                check_steps(request, recipe.steps)
                equipment = self.registry.equip(pipe, recipe)
                notices = (equipment.notice, scaled_notice(request))
                if any(notices):
                    hint = "; ".join(filter(None, (recipe.hint, *notices)))
                    recipe = dataclasses.replace(recipe, hint=hint)
                preview = preview_of(model.info.family, equipment.preview_vae)
                watch.lap("load")
                # 3. Prepare: mask, context, scale; the scheduler.
                placement, pipeline_input = self._prepare(request, recipe, pipe, model, seed)
                watch.lap("prepare")
                # 4. Diffuse, with progress, previews and cancel.
                variations = self._diffuse(
                    request, recipe, pipe, model, pipeline_input, seed, preview, on_progress, cancel
                )
                watch.lap("diffusion")
                # 5. Finish: scale back and blend.
                images = self._finish(placement, variations)
                watch.lap("finish")
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                free_memory(self.device)
                raise OutOfMemory(out_of_memory_message(self.device, request.mode)) from None
            return edit_result(
                asked, seed, model.info.name, placement.canvas, images, watch, recipe
            )

    def _as_the_model_runs_it(self, request: EditRequest) -> EditRequest:
        """The one seam where a dedicated inpainting checkpoint takes txt2img and img2img: as
        an inpaint (`as_inpaint`) through its inpaint pipeline, with the model named."""
        if request.mode not in (Mode.TXT2IMG, Mode.IMG2IMG):
            return request
        ref = request.model or self.registry.default_for(request.mode)
        if not self.registry.catalog.resolve(ref).inpainting:
            return request
        return dataclasses.replace(as_inpaint(request), model=ref)

    def _load(self, request: EditRequest) -> tuple[DiffusionPipeline, LoadedModel]:
        """Step 2: the mode's pipeline of the request's model, or of the mode's default one;
        with controls, its ControlNet pipeline over the same weights; with a style, its
        IP-Adapter."""
        ref = request.model or self.registry.default_for(request.mode)
        pipe, model = self.registry.pipeline(ref, request.mode)
        if request.controls:
            pipe = self.controlnets.controlled(pipe, model, request)
        self.styles.equip(pipe, model, request)  # or take out the style of a previous run
        return pipe, model

    def _prepare(
        self,
        request: EditRequest,
        recipe: Recipe,
        pipe: DiffusionPipeline,
        model: LoadedModel,
        seed: int,
    ) -> tuple[Placement, PipelineInput]:
        """Step 3: where the result goes, what the pipeline starts from, and the recipe's
        scheduler on the pipeline (a fresh one every run)."""
        placement, pipeline_input = prepare(
            request,
            multiple=model.vae_scale_factor,
            native_side=model.native_side,
            fill=resolve_fill(request, model.info.inpainting),
            seed=seed,
        )
        pipe.scheduler = make_scheduler(recipe.scheduler, model.scheduler_config)
        return placement, pipeline_input

    def _diffuse(
        self,
        request: EditRequest,
        recipe: Recipe,
        pipe: DiffusionPipeline,
        model: LoadedModel,
        pipeline_input: PipelineInput,
        seed: int,
        preview: Preview,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> list[Variation]:
        """Step 4: the variations, seeded seed, seed + 1, …: on a GPU in one batched call
        (it fills the GPU better); on a CPU one call each (a batch there costs as much as the
        calls, and each variation reports its own progress)."""
        import torch

        arguments = pipeline_arguments(request, recipe, pipeline_input)
        if request.controls:
            arguments |= control_arguments(request, pipeline_input, self.registry.models_dirs)
        if request.style is not None:
            arguments |= style_arguments(request)
        arguments = weighted_prompt_arguments(pipe, arguments)
        batch = request.count if model.device != "cpu" else 1
        seeds = [(seed + index) % SEED_RANGE for index in range(request.count)]
        variations = []
        for first in range(0, request.count, batch):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            call_seeds = seeds[first : first + batch]
            try:
                output = pipe(
                    **arguments,
                    num_images_per_prompt=len(call_seeds),
                    # One generator per variation: each draws the noise a call of its own would.
                    # CPU generators draw the same noise whatever the device the pipeline runs on.
                    generator=[torch.Generator("cpu").manual_seed(s) for s in call_seeds],
                    callback_on_step_end=step_callback(
                        request, first, len(call_seeds), preview, on_progress, cancel
                    ),
                )
            except _StopRun:
                raise Cancelled("cancelled") from None
            for variation_seed, image in zip(call_seeds, output.images, strict=True):
                rgb = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
                variations.append(Variation(variation_seed, rgb))
        return variations

    def _finish(self, placement: Placement, variations: list[Variation]) -> list[GeneratedImage]:
        """Step 5: each variation as a layer over the mask bounds."""
        x, y = placement.mask_bounds.x, placement.mask_bounds.y
        return [
            GeneratedImage(rgba_image(finish(placement, variation.rgb)), x, y, variation.seed)
            for variation in variations
        ]

    def _fill(self, request: EditRequest, seed: int, watch: Stopwatch) -> EditResult:
        """Mode.FILL: the masked area filled from its surroundings, no model."""
        assert request.image is not None and request.mask is not None  # validate() checked
        watch.skip("load")
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
        watch.lap("prepare")
        watch.skip("diffusion")
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
        watch.lap("finish")
        return edit_result(request, seed, "", canvas, results, watch)
