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
   seed + 1, …; an ancestral sampler's step noise from seed + `noise_seed_delta` where asked,
   `sampler_noise`), reporting progress after every step with a preview when due (the tiny
   autoencoder's where one fits the model, else the linear latent map), and stopping at the
   next step when cancelled; a `tiling` request pads circularly (`seamless`). Each variation
   gives a `Variation`. When the context is much larger than the working extent, each
   variation is then scaled to the context and refined there in tiles at low strength
   (`tiled_refine`, with the style reference but without the controls), so the result has
   detail at full resolution.
5. **Finish**: the generated pixels scaled back to the context, cut to the mask bounds, with the
   blend mask as alpha (`geometry.layer_pixels`). Diffusers' inpaint pipeline binarizes the mask;
   the soft blend happens here, so pixels outside the blend mask are never touched.

`Mode.FILL` runs the weight-free fill after step 1 and needs no model. `Mode.REMOVE`,
`Mode.RESTORE` and `Mode.SELECT` run there too (`object_removal`, `photo_restore`,
`subject_selection`); a remove with `refine` goes on through the five steps as a low-strength
inpaint of its result. `restore_faces` restores the faces of a generation in step 5.
`Mode.UPSCALE` runs an upscaler (`upscalers`), then, with a refine strength, the tiled refine
with the model. `Mode.OUTPAINT` runs as an inpaint of the grown canvas's new border
(`outpaint.border_inpaint`). `Mode.EDIT` runs as img2img does, on an instruction-edit model,
with the request's `image_guidance` and without the tiled refine (an instruction-edit model
has no img2img pipeline to refine with); with a selection, its result is blended back as an
inpaint's is.
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
    REFINE_OFF,
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
    refine_strength,
)
from .controlnets import ControlNets, control_arguments, scaled_notice
from .face_restore import restore_faces_in_layers
from .fill import fill_masked
from .geometry import (
    blend_mask,
    image_array,
    layer_pixels,
    mask_array,
    nonzero_bounds,
    resize_mask,
    resize_rgb,
    rgba_image,
    working_extent,
)
from .models import LoadedModel, ModelRegistry, free_memory, is_out_of_memory
from .object_removal import refine_request, remove_objects
from .outpaint import border_inpaint
from .photo_restore import restore_photo
from .presets import Recipe, recipe_for
from .previews import Preview, preview_of
from .prompt_weights import weighted_prompt_arguments
from .restoration_models import ModelSource, Outcome
from .sampler_noise import seed_step_noise
from .schedulers import make_scheduler
from .seamless import circular_padding, resize_wrapping
from .style_reference import StyleAdapters, style_arguments
from .subject_selection import select_subject
from .tiled_refine import (
    RefinePlan,
    RefineProgress,
    plan_refine,
    refine_picture,
    refine_plan,
    with_surroundings,
)
from .upscalers import (
    choose_upscaler,
    load_upscaler,
    upscale_rgb,
    upscale_rgba,
    upscaled_extent,
)

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

SEED_RANGE = 2**32
# Modes that run an image model or OpenCV (object_removal, photo_restore, subject_selection)
# instead of diffusion.
WITHOUT_DIFFUSION = (Mode.REMOVE, Mode.RESTORE, Mode.SELECT)


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


def with_hint(result: EditResult, first: str) -> EditResult:
    """`result` whose hint begins with what an earlier step of the run said."""
    if not first:
        return result
    return dataclasses.replace(result, hint="; ".join(filter(None, (first, result.hint))))


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
            asked = request  # what the result reports; `request` below is what the model runs
            if request.mode == Mode.FILL:
                return self._fill(request, seed, watch)
            if request.mode == Mode.UPSCALE:
                return self._upscale(request, seed, watch, on_progress, cancel)
            notes = []  # what steps other than diffusion did, for the result's hint
            if request.mode in WITHOUT_DIFFUSION:
                outcome = self._without_diffusion(request, seed)
                watch.lap(request.mode.value)
                refine = refine_strength(request.refine)
                if not refine:  # "auto" or "off": a removal has the image's resolution already
                    assert request.image is not None  # validate() checked
                    canvas = Extent(request.image.width, request.image.height)
                    result = edit_result(asked, seed, outcome.model, canvas, outcome.images, watch)
                    return with_hint(result, outcome.hint)
                request = refine_request(request, outcome, refine)
                notes.append(outcome.hint)
            origin = (0, 0)  # where the request's canvas sits on the result's
            if request.mode == Mode.OUTPAINT:
                request, original = border_inpaint(request)
                origin = (original.x, original.y)
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
                # Refine tiles never wrap, and an instruction-edit model has no img2img to refine.
                unrefined = request.tiling or request.mode == Mode.EDIT
                refine = refine_plan(
                    REFINE_OFF if unrefined else request.refine,
                    placement.context.extent,
                    placement.mask_bounds.relative_to(placement.context),
                    pipeline_input.working,
                    tile_side=model.native_side,
                    steps=recipe.steps,
                )
                progress = RefineProgress(on_progress, refine, request.count)
                watch.lap("prepare")
                # 4. Diffuse, with progress, previews and cancel; refine at full size in tiles.
                variations = self._diffuse(
                    request, recipe, pipe, model, pipeline_input, seed, preview,
                    progress.of_diffusion, cancel,
                )  # fmt: skip
                if refine is not None:
                    variations = self._refine(
                        request, recipe, model, placement, refine, variations, progress, cancel
                    )
                elif request.tiling:  # scaled to the canvas as the torus it is
                    size = placement.context.extent
                    variations = [
                        Variation(v.seed, resize_wrapping(v.rgb, size)) for v in variations
                    ]
                watch.lap("diffusion")
                # 5. Finish: scale back and blend.
                images = self._finish(placement, variations)
                if request.restore_faces:
                    source = ModelSource(self.registry)
                    images, faces = restore_faces_in_layers(images, request.restore_faces, source)
                    notes.append(faces)
                watch.lap("finish")
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                free_memory(self.device)
                raise OutOfMemory(out_of_memory_message(self.device, request.mode)) from None
            result = edit_result(
                asked, seed, model.info.name, placement.canvas, images, watch, recipe
            )
            result = dataclasses.replace(result, origin_x=origin[0], origin_y=origin[1])
            return with_hint(result, "; ".join(notes))

    def _without_diffusion(self, request: EditRequest, seed: int) -> Outcome:
        """The modes that run an image model instead of a diffusion pipeline."""
        source = ModelSource(self.registry)
        try:
            if request.mode == Mode.REMOVE:
                return remove_objects(request, source, seed)
            if request.mode == Mode.SELECT:
                return select_subject(request, source, seed)
            return restore_photo(request, source, seed)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            free_memory(self.device)
            raise OutOfMemory(out_of_memory_message(self.device, request.mode)) from None

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
        arguments = weighted_prompt_arguments(pipe, arguments, request.clip_skip)
        batch = request.count if model.device != "cpu" else 1
        seeds = [(seed + index) % SEED_RANGE for index in range(request.count)]
        variations = []
        for first in range(0, request.count, batch):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            call_seeds = seeds[first : first + batch]
            seed_step_noise(pipe.scheduler, call_seeds, request.noise_seed_delta)
            try:
                with circular_padding(pipe, request.tiling):
                    output = pipe(
                        **arguments,
                        num_images_per_prompt=len(call_seeds),
                        # One generator per variation: each draws the noise a call of its own
                        # would. CPU generators draw the same noise whatever the device.
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

    def _refine(
        self,
        request: EditRequest,
        recipe: Recipe,
        model: LoadedModel,
        placement: Placement,
        plan: RefinePlan,
        variations: list[Variation],
        progress: RefineProgress,
        cancel: threading.Event | None,
    ) -> list[Variation]:
        """Step 4, second pass: each variation at the context's size, refined in tiles by the
        model's img2img pipeline (a dedicated inpainting model's inpaint pipeline)."""
        mode = Mode.INPAINT if model.info.inpainting else Mode.IMG2IMG
        ref = request.model or self.registry.default_for(request.mode)
        pipe, _ = self.registry.pipeline(ref, mode)
        self.registry.equip(pipe, recipe)
        # The style's IP-Adapter sits in the model's UNet, which this pipeline shares: the
        # tiles carry the style on (the controls stay with the first pass).
        self.styles.equip(pipe, model, request)
        pipe.scheduler = make_scheduler(recipe.scheduler, model.scheduler_config)
        arguments: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "guidance_scale": recipe.guidance,
        }
        if request.style is not None:
            arguments |= style_arguments(request)
        arguments = weighted_prompt_arguments(pipe, arguments, request.clip_skip)
        original = context_blend = None
        if request.image is not None and placement.blend is not None:
            original = image_array(request.image)[placement.context.slices][..., :3]
            context_blend = np.zeros(
                (placement.context.height, placement.context.width), dtype=np.uint8
            )
            context_blend[placement.mask_bounds.relative_to(placement.context).slices] = (
                placement.blend
            )
        upscaler = None  # scale up with the request's upscaler model (A1111's hr_upscaler)
        if request.upscaler:
            catalog = self.registry.catalog
            upscaler = load_upscaler(
                choose_upscaler(catalog, request.upscaler),
                allow_pickle=catalog.allow_pickle,
                device=self.device,
            )
        refined = []
        for index, variation in enumerate(variations):
            picture = upscale_rgb(variation.rgb, placement.context.extent, upscaler, cancel)
            rgb = refine_picture(
                with_surroundings(picture, original, context_blend),
                plan,
                pipe=pipe,
                arguments=arguments,
                inpainting=model.info.inpainting,
                seed=variation.seed,
                multiple=model.vae_scale_factor,
                on_step=progress.of_refine(index),
                cancel=cancel,
            )
            refined.append(Variation(variation.seed, rgb))
        return refined

    def _finish(self, placement: Placement, variations: list[Variation]) -> list[GeneratedImage]:
        """Step 5: each variation as a layer over the mask bounds."""
        x, y = placement.mask_bounds.x, placement.mask_bounds.y
        return [
            GeneratedImage(rgba_image(finish(placement, variation.rgb)), x, y, variation.seed)
            for variation in variations
        ]

    def _upscale(
        self,
        request: EditRequest,
        seed: int,
        watch: Stopwatch,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> EditResult:
        """Mode.UPSCALE: the canvas, or the rectangle around the selection, scaled by the
        upscaler; then, when `refine` gives a strength, refined in tiles by the model."""
        assert request.image is not None  # validate() checked
        pixels = image_array(request.image)
        area = Bounds.of(Extent(request.image.width, request.image.height))
        if request.mask is not None:
            area = nonzero_bounds(mask_array(request.mask)) or area
        target = upscaled_extent(area.extent, request.scale)
        catalog = self.registry.catalog
        choice = choose_upscaler(catalog, request.upscaler)
        upscaler = load_upscaler(choice, allow_pickle=catalog.allow_pickle, device=self.device)
        watch.lap("load")
        upscaled = upscale_rgba(pixels[area.slices], target, upscaler, cancel)
        watch.lap("prepare")
        strength = refine_strength(request.refine)
        model_name, recipe = "", None
        if strength:
            whole = Bounds.of(target)
            refine_request = dataclasses.replace(
                request,
                mode=Mode.IMG2IMG,
                image=rgba_image(upscaled),
                mask=None,
                strength=strength,
                refine=REFINE_OFF,
                upscaler="",  # the picture is upscaled already
            )
            pipe, model = self._load(refine_request)
            recipe = recipe_for(refine_request, model, catalog)
            self.registry.equip(pipe, recipe)
            plan = plan_refine(
                target, whole, tile_side=model.native_side, steps=recipe.steps, strength=strength
            )
            placement = Placement(target, whole, whole, None, None)
            (refined,) = self._refine(
                refine_request, recipe, model, placement, plan,
                [Variation(seed, np.ascontiguousarray(upscaled[..., :3]))],
                RefineProgress(on_progress, plan, 1), cancel,
            )  # fmt: skip
            upscaled = np.dstack((refined.rgb, upscaled[..., 3]))
            model_name = model.info.name
        watch.lap("diffusion")
        watch.skip("finish")
        image = GeneratedImage(rgba_image(upscaled), 0, 0, seed)
        result = edit_result(request, seed, model_name, target, [image], watch, recipe)
        return dataclasses.replace(result, parameters=result.parameters | {"upscaler": choice.name})

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
