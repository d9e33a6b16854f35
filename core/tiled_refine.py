"""Full-resolution results: a second, light img2img pass over the upscaled result, in tiles.

A model paints at about its native size (512² for SD 1.5, 1024² for SDXL). A larger context is
generated at that size and scaled up, which leaves it soft beside the photo around it. The refine
pass runs the same model again at low strength over the context-sized picture, one tile of the
model's native size at a time, so that every tile gets detail at full resolution:

- tiles overlap by a quarter of a side; in an overlap each tile's weight ramps linearly from
  its edge inward (a feathered blend), so neighbouring tiles fade into each other without seams;
- only the tiles that cover the result (the mask bounds, with an overlap of surroundings) run;
- each tile is seeded from the variation's seed and its index, so a run is reproducible;
- one tile is in the model at a time: memory is that of a native-size run whatever the size of
  the picture (the autoencoder never sees more than a tile, so it needs no tiling of its own);
- progress counts the steps of all tiles; a cancel stops at the next step.

Before refining, the picture takes the original pixels where the blend mask keeps them, so that
the tiles at the selection's edge see the real surroundings; step 5 of the engine still cuts the
result to the mask bounds with the blend mask as alpha, so pixels outside it stay untouched.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .client.bounds import Bounds, Extent
from .client.protocol import Cancelled, Progress, ProgressCallback, refine_strength
from .geometry import resize_rgb

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

# Auto refines when the context has this many times the pixels of the working extent or more:
# scaled up by less (about 1.2× a side) a result loses little detail.
REFINE_THRESHOLD = 1.5
# Low enough to keep what the first pass painted, high enough to give it detail at full size.
REFINE_STRENGTH = 0.3
OVERLAP_SHARE = 4  # tiles overlap by a quarter of their side


@dataclass(frozen=True)
class RefinePlan:
    """Which tiles of the context-sized picture a refine runs, and how."""

    tiles: tuple[Bounds, ...]  # in the picture's coordinates (the context's), in raster order
    overlap: int  # px that neighbouring tiles share along a side
    strength: float
    steps: int  # the pipeline call's `num_inference_steps`; it runs int(steps × strength)

    @property
    def steps_per_tile(self) -> int:
        return int(self.steps * self.strength)

    @property
    def total_steps(self) -> int:
        return len(self.tiles) * self.steps_per_tile


def refine_plan(
    refine: str,
    context: Extent,
    mask_bounds: Bounds,
    working: Extent,
    *,
    tile_side: int,
    steps: int,
) -> RefinePlan | None:
    """The refine of a run whose request chose `refine`, or None when it has none: unless
    "off", a run whose context (`mask_bounds` in its coordinates) has at least
    `REFINE_THRESHOLD` times the pixels of its working extent refines, in tiles of the model's
    native side, each running `steps` at the request's strength (auto: `REFINE_STRENGTH`)."""
    strength = refine_strength(refine)
    if strength is None:
        strength = REFINE_STRENGTH
    if not strength or context.pixel_count < REFINE_THRESHOLD * working.pixel_count:
        return None
    return plan_refine(context, mask_bounds, tile_side=tile_side, steps=steps, strength=strength)


class RefineProgress:
    """Progress across a run's diffusion and its refine: the diffusion's reports with the
    refine's steps added to their total, then a report after every step of every tile."""

    def __init__(self, on_progress: ProgressCallback | None, plan: RefinePlan | None, count: int):
        self._on_progress = on_progress
        self._refine_steps = 0 if plan is None else plan.total_steps * count
        self._done = self._total = 0

    def of_diffusion(self, progress: Progress) -> None:
        if self._on_progress is None:
            return
        self._done, self._total = progress.step, progress.total + self._refine_steps
        self._on_progress(dataclasses.replace(progress, total=self._total))

    def of_refine(self, variation: int) -> Callable[[], None]:
        """What each refine step of `variation` calls."""

        def on_step() -> None:
            if self._on_progress is None:
                return
            # A solver of the second order may run more steps than planned: never past the end.
            self._done = min(self._done + 1, self._total)
            self._on_progress(Progress(self._done, self._total, variation))

        return on_step


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of `tile` px start along an axis of `length` px so that neighbours overlap by
    at least `overlap` px, spread evenly, the first at 0 and the last ending at `length`."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(index * (length - tile) / (count - 1)) for index in range(count)]


def plan_tiles(region: Bounds, tile: Extent, overlap: int) -> tuple[Bounds, ...]:
    """Tiles of size `tile` (smaller where the region is) covering `region`, in raster order."""
    width, height = min(tile.width, region.width), min(tile.height, region.height)
    return tuple(
        Bounds(region.x + x, region.y + y, width, height)
        for y in axis_starts(region.height, height, overlap)
        for x in axis_starts(region.width, width, overlap)
    )


def plan_refine(
    context: Extent, mask_bounds: Bounds, *, tile_side: int, steps: int, strength: float
) -> RefinePlan:
    """The tiles that refine `mask_bounds` (in the context's coordinates) with an overlap of
    surroundings, and steps enough that each tile runs at least one."""
    overlap = tile_side // OVERLAP_SHARE
    region = mask_bounds.pad(overlap).clamp(context)
    # At least a tile wide where the picture allows it, so that every tile runs at full size.
    x, width = _at_least(region.x, region.width, min(tile_side, context.width), context.width)
    y, height = _at_least(region.y, region.height, min(tile_side, context.height), context.height)
    tiles = plan_tiles(Bounds(x, y, width, height), Extent(tile_side, tile_side), overlap)
    return RefinePlan(tiles, overlap, strength, max(steps, math.ceil(1 / strength)))


def _at_least(start: int, length: int, minimum: int, limit: int) -> tuple[int, int]:
    """The span [start, start + length) grown about its middle to `minimum` px within
    [0, limit)."""
    if length >= minimum:
        return start, length
    start = min(max(0, start - (minimum - length) // 2), limit - minimum)
    return start, minimum


def tile_weights(tile: Bounds, neighbours: Bounds, overlap: int) -> np.ndarray:
    """HxW float32 weights of `tile`: 1 inside, ramping down to near 0 over `overlap` px at each
    side that another tile overlaps (not at the sides on the edge of `neighbours`, the area all
    tiles cover, where nothing else would weigh in)."""

    def ramp(length: int, low_open: bool, high_open: bool) -> np.ndarray:
        weights = np.ones(length, dtype=np.float32)
        rise = (np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1))[:length]
        if low_open:
            weights[: rise.size] = np.minimum(weights[: rise.size], rise)
        if high_open:
            weights[-rise.size :] = np.minimum(weights[-rise.size :], rise[::-1])
        return weights

    columns = ramp(tile.width, tile.x > neighbours.x, tile.right < neighbours.right)
    rows = ramp(tile.height, tile.y > neighbours.y, tile.bottom < neighbours.bottom)
    return rows[:, None] * columns[None, :]


def blend_tiles(
    picture: np.ndarray,
    plan: RefinePlan,
    refine_tile: Callable[[np.ndarray, int], np.ndarray],
) -> np.ndarray:
    """`picture` (HxWx3 uint8) with each tile of the plan replaced by `refine_tile(pixels,
    index)` (same shape), overlaps blended by `tile_weights`; pixels outside the tiles as they
    were. Only the accumulators of the tiles' area and one tile are in memory at a time."""
    covered = plan.tiles[0]
    for tile in plan.tiles[1:]:
        covered = covered.union(tile)
    total = np.zeros((covered.height, covered.width, 3), dtype=np.float32)
    weight_sum = np.zeros((covered.height, covered.width, 1), dtype=np.float32)
    for index, tile in enumerate(plan.tiles):
        refined = refine_tile(np.ascontiguousarray(picture[tile.slices]), index)
        weights = tile_weights(tile, covered, plan.overlap)[..., None]
        inside = tile.relative_to(covered).slices
        total[inside] += refined.astype(np.float32) * weights
        weight_sum[inside] += weights
    result = picture.copy()
    result[covered.slices] = np.clip(np.rint(total / weight_sum), 0, 255).astype(np.uint8)
    return result


def with_surroundings(
    generated: np.ndarray, original: np.ndarray | None, blend: np.ndarray | None
) -> np.ndarray:
    """The generated context-sized RGB over the original context by the blend mask (both HxW…
    of the context), so that tiles at the selection's edge see the real surroundings."""
    if original is None or blend is None:
        return generated
    weight = blend.astype(np.float32)[..., None] / 255.0
    mixed = generated.astype(np.float32) * weight + original.astype(np.float32) * (1 - weight)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def tile_seed(seed: int, index: int) -> int:
    """The seed of tile `index` of the variation seeded `seed`: independent of its neighbours'."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class _StopRefine(Exception):
    """Raised in the step callback to leave the pipeline at once when cancelled."""


def refine_picture(
    picture: np.ndarray,
    plan: RefinePlan,
    *,
    pipe: DiffusionPipeline,
    arguments: dict[str, Any],
    inpainting: bool,
    seed: int,
    multiple: int,
    on_step: Callable[[], None],
    cancel: threading.Event | None,
) -> np.ndarray:
    """`picture` (HxWx3 uint8, the context) refined tile by tile through `pipe`: the model's
    img2img pipeline, or for a dedicated inpainting model its inpaint pipeline with the whole
    tile masked. `arguments` are the pipeline call's shared ones (prompts, guidance); each
    step calls `on_step`."""
    import torch
    from PIL import Image

    def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]):
        if cancel is not None and cancel.is_set():
            raise _StopRefine
        on_step()
        return tensors

    def refine_tile(pixels: np.ndarray, index: int) -> np.ndarray:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        size = Extent(pixels.shape[1], pixels.shape[0])
        working = size.multiple_of(math.lcm(multiple, 8))
        call = arguments | {
            "image": Image.fromarray(resize_rgb(pixels, working)),
            "strength": plan.strength,
            "num_inference_steps": plan.steps,
            "generator": torch.Generator("cpu").manual_seed(tile_seed(seed, index)),
            "callback_on_step_end": on_step_end,
            "output_type": "np",
        }
        if inpainting:
            full = np.full((working.height, working.width), 255, dtype=np.uint8)
            call |= {
                "mask_image": Image.fromarray(full),
                "height": working.height,
                "width": working.width,
            }
        try:
            output = pipe(**call)
        except _StopRefine:
            raise Cancelled("cancelled") from None
        rgb = np.clip(np.rint(np.asarray(output.images[0]) * 255.0), 0, 255).astype(np.uint8)
        return resize_rgb(rgb, size)

    return blend_tiles(picture, plan, refine_tile)
