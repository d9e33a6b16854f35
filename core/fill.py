"""Weight-free fill of the masked area from its surroundings (numpy + OpenCV).

Used twice: to pre-fill the masked part of the context before diffusion (at high strength what
sits under the mask steers the result a lot), and as the whole of `Mode.FILL`, which needs no
model at all.

Words (as in ``geometry.py``): the **mask** is an HxW uint8 soft mask, 255 = fill, 0 = keep.
The fill is computed for every pixel with mask > 0 from the pixels with mask == 0, then mixed
in by the mask's weight, so grey (feathered) edges blend and pixels with mask == 0 stay
bit-identical. Work is confined to the mask's rectangle plus the margin each fill reads.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .client.bounds import Extent
from .client.protocol import FillMode
from .geometry import nonzero_bounds

NEUTRAL_GREY = 128
# OpenCV's inpainting looks this far (px) around each filled pixel.
INPAINT_RADIUS = 3
# The BLUR fill is a Gaussian this large relative to the masked rectangle's longer side: wide
# enough to reach into the middle of the hole, so it carries the surroundings' colours only.
BLUR_SIGMA_SHARE = 0.25
BLUR_SIGMA_MIN = 4.0
# The BLUR fill runs on a copy scaled so that sigma is this many px: a heavy blur loses nothing
# at low resolution, and the cost stays small for big holes.
BLUR_SIGMA_SCALED = 4.0

_INPAINT_FLAGS = {FillMode.TELEA: cv2.INPAINT_TELEA, FillMode.NAVIER_STOKES: cv2.INPAINT_NS}


def fill_masked(
    image_rgb: np.ndarray, mask: np.ndarray, mode: FillMode, *, seed: int = 0
) -> np.ndarray:
    """A copy of `image_rgb` (HxWx3, or HxWx4 whose alpha is kept) with the masked area filled.

    KEEP: the input unchanged. BLUR: a heavy blur of the surroundings (only unmasked pixels
    contribute). TELEA, NAVIER_STOKES: OpenCV's inpainting. NEUTRAL: flat mid grey. NOISE:
    uniform noise, the same for the same `seed`. AUTO means TELEA here, the best weight-free
    fill; for diffusion the engine resolves AUTO itself. Where nothing outside the mask is left
    to fill from, BLUR, TELEA and NAVIER_STOKES give NEUTRAL.
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] not in (3, 4) or image_rgb.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 or HxWx4 uint8, not {image_rgb.shape}")
    if mask.shape != image_rgb.shape[:2] or mask.dtype != np.uint8:
        raise ValueError(f"mask must be uint8 {image_rgb.shape[:2]}, not {mask.shape}")
    result = image_rgb.copy()
    masked = nonzero_bounds(mask)
    if mode == FillMode.KEEP or masked is None:
        return result
    if mode == FillMode.AUTO:
        mode = FillMode.TELEA

    canvas = Extent(image_rgb.shape[1], image_rgb.shape[0])
    blur_sigma = max(BLUR_SIGMA_MIN, BLUR_SIGMA_SHARE * max(masked.width, masked.height))
    margin = {FillMode.BLUR: math.ceil(3 * blur_sigma)}.get(mode, INPAINT_RADIUS + 1)
    area = masked.pad(margin).clamp(canvas)
    rgb = np.ascontiguousarray(image_rgb[area.slices][..., :3])
    area_mask = mask[area.slices]
    unknown = (area_mask > 0).astype(np.uint8)

    if mode in (FillMode.NEUTRAL, FillMode.NOISE) or unknown.all():
        filled = _flat(rgb.shape, mode, seed)
    elif mode == FillMode.BLUR:
        filled = _blurred_surroundings(rgb, unknown, blur_sigma)
    else:
        filled = cv2.inpaint(rgb, unknown, INPAINT_RADIUS, _INPAINT_FLAGS[mode])

    weight = area_mask.astype(np.float32)[..., None] / 255.0
    mixed = rgb + (filled.astype(np.float32) - rgb) * weight
    # Pixels with mask 0 get weight 0 and keep their exact value through the float round trip.
    result[area.slices][..., :3] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return result


def _flat(shape: tuple[int, ...], mode: FillMode, seed: int) -> np.ndarray:
    """NEUTRAL grey, or seeded NOISE; also the fallback when there are no surroundings."""
    if mode == FillMode.NOISE:
        return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    return np.full(shape, NEUTRAL_GREY, dtype=np.uint8)


def _blurred_surroundings(rgb: np.ndarray, unknown: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of the known pixels only (normalised convolution), run at a scale where
    sigma is `BLUR_SIGMA_SCALED` px and scaled back."""
    height, width = unknown.shape
    scale = min(1.0, BLUR_SIGMA_SCALED / sigma)
    small = Extent(max(1, round(width * scale)), max(1, round(height * scale)))
    known = 1.0 - unknown.astype(np.float32)
    weighted = rgb.astype(np.float32) * known[..., None]
    if scale < 1.0:
        size = (small.width, small.height)
        weighted = cv2.resize(weighted, size, interpolation=cv2.INTER_AREA)
        known = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    small_sigma = sigma * scale
    blur_size = 2 * math.ceil(3 * small_sigma) + 1
    blurred = cv2.GaussianBlur(weighted, (blur_size, blur_size), small_sigma)
    coverage = cv2.GaussianBlur(known, (blur_size, blur_size), small_sigma)[..., None]
    # Pixels the kernel does not reach take the mean colour of all known pixels.
    mean = weighted.reshape(-1, 3).sum(axis=0) / max(float(known.sum()), 1e-6)
    colour = np.where(coverage > 1e-4, blurred / np.maximum(coverage, 1e-4), mean)
    if scale < 1.0:
        colour = cv2.resize(colour, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.rint(colour), 0, 255).astype(np.uint8)
