"""Mask and pixel geometry every mode uses: pure functions over numpy arrays (OpenCV inside).

Words (the same as in ``protocol.py`` and ``bounds.py``):

- **Canvas**: the input image of a request, in its own pixel coordinates.
- **Mask**: an HxW uint8 soft mask of the canvas; 255 = repaint, 0 = keep, grey = blend.
- **Blend mask**: the mask grown (or shrunk) by `grow` px, then given a soft edge `feather` px
  wide outside it; it says how much of the generated pixels each pixel takes.
- **Mask bounds**: the rectangle around the non-zero blend mask; pixels outside it are never
  changed and a result covers exactly this rectangle.
- **Context bounds**: the larger rectangle the model sees (`bounds.context_bounds`).
- **Working extent**: the size the model runs at; the context is scaled to it and back.

Work is proportional to the mask bounds, never to the canvas: a small selection on a huge image
costs what it costs on a small one. Arrays are row-major: HxW masks, HxWx3 / HxWx4 uint8 images.
"""

from __future__ import annotations

import cv2
import numpy as np

from .client.bounds import Bounds, Extent
from .client.protocol import Mask, RGBAImage


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


def nonzero_bounds(mask: np.ndarray) -> Bounds | None:
    """The rectangle around the non-zero pixels of an HxW mask; None when all are zero."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    return Bounds(
        int(columns[0]),
        int(rows[0]),
        int(columns[-1] - columns[0] + 1),
        int(rows[-1] - rows[0] + 1),
    )


def _morph(mask: np.ndarray, radius: int, operation: int) -> np.ndarray:
    """Grey dilation or erosion by a disc of `radius` px, approximated by an octagon.

    Alternating 3x3 cross and square steps cost O(radius) per pixel (a true disc kernel costs
    O(radius²)) and work on soft masks: each step takes the max (or min) of the neighbours.
    The array edge repeats outward, so a mask touching the canvas edge does not shrink from it.
    """
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
    for step in range(radius):
        kernel = cross if step % 2 == 0 else square
        mask = cv2.morphologyEx(mask, operation, kernel, borderType=cv2.BORDER_REPLICATE)
    return mask


def _feathered(mask: np.ndarray, feather: int) -> np.ndarray:
    """A soft edge `feather` px wide outside the mask: dilate by half, then blur by the other
    half, so the ramp runs from the mask's edge outward and stops within `feather` px."""
    blur_radius = (feather + 1) // 2
    mask = _morph(mask, feather - blur_radius, cv2.MORPH_DILATE)
    size = 2 * blur_radius + 1
    # sigma = radius/2 keeps the truncated Gaussian's ends small (2 sigma) yet inside `feather`.
    blurred = cv2.GaussianBlur(
        mask.astype(np.float32),
        (size, size),
        sigmaX=blur_radius / 2,
        borderType=cv2.BORDER_REPLICATE,
    )
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def blend_mask(mask: np.ndarray, grow: int, feather: int) -> tuple[np.ndarray, Bounds] | None:
    """The blend mask of an HxW uint8 soft mask, cropped to its mask bounds, and those bounds.

    `grow` px of dilation (negative: erosion), then a `feather` px soft edge outside. Grey values
    of a soft (feathered) selection are kept. None when nothing is left (empty mask, or shrunk
    to nothing). Only the mask's own rectangle plus a margin of ``|grow| + feather`` is touched.
    """
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"mask must be HxW uint8, not {mask.shape} {mask.dtype}")
    if feather < 0:
        raise ValueError(f"feather must be ≥ 0 px, not {feather}")
    canvas = Extent(mask.shape[1], mask.shape[0])
    selected = nonzero_bounds(mask)
    if selected is None:
        return None
    # The margin also lets erosion see the zeros just outside the selection.
    work = selected.pad(abs(grow) + feather).clamp(canvas)
    blend = mask[work.slices]
    if grow > 0:
        blend = _morph(blend, grow, cv2.MORPH_DILATE)
    elif grow < 0:
        blend = _morph(blend, -grow, cv2.MORPH_ERODE)
    if feather > 0:
        blend = _feathered(blend, feather)
    inner = nonzero_bounds(blend)
    if inner is None:
        return None
    return np.ascontiguousarray(blend[inner.slices]), inner.offset(work.x, work.y)


def working_extent(context: Extent, *, target_pixels: int, multiple: int) -> Extent:
    """The size the model runs at for a context of size `context`.

    About `target_pixels` (512² for SD 1.5-class models, 1024² for SDXL-class), the aspect
    kept, sides multiples of `multiple` (the pipeline's VAE scale factor) and at least one
    multiple. Small contexts are scaled up to the target, large ones down.
    """
    return context.scale_keep_aspect(target_pixels, multiple)


def _resize(pixels: np.ndarray, extent: Extent, *, upscale: int) -> np.ndarray:
    """`pixels` scaled to `extent`: area averaging (alias-free) on the way down, `upscale` on the
    way up; the input itself when already that size."""
    source = Extent(pixels.shape[1], pixels.shape[0])
    if source == extent:
        return pixels
    interpolation = cv2.INTER_AREA if extent.pixel_count < source.pixel_count else upscale
    return cv2.resize(pixels, (extent.width, extent.height), interpolation=interpolation)


def resize_rgb(image: np.ndarray, extent: Extent) -> np.ndarray:
    """An HxWx3 or HxWx4 uint8 image scaled to `extent` (cubic up, for sharpness)."""
    return _resize(image, extent, upscale=cv2.INTER_CUBIC)


def resize_mask(mask: np.ndarray, extent: Extent) -> np.ndarray:
    """An HxW uint8 mask scaled to `extent` (linear up, so edges stay soft without overshoot)."""
    return _resize(mask, extent, upscale=cv2.INTER_LINEAR)


def layer_pixels(generated_rgb: np.ndarray, blend: np.ndarray) -> np.ndarray:
    """The HxWx4 RGBA a result layer carries: RGB = generated (HxWx3 or HxWx4), alpha = blend."""
    return np.dstack((generated_rgb[..., :3], blend))


def composite(original: np.ndarray, generated: np.ndarray, blend: np.ndarray) -> np.ndarray:
    """`original` with `layer_pixels(generated, blend)` stacked over it (Porter-Duff "over").

    `original` is HxWx4 uint8, `generated` HxWx3 or HxWx4 (its alpha is ignored), `blend` HxW
    uint8, all of the mask bounds. Where blend == 0 the result is bit-identical to `original`;
    where blend == 255 it is the generated RGB with alpha 255. In between, over an opaque
    original, RGB is the blend-weighted mix and alpha stays 255; over a transparent original the
    generated colour shows with alpha = blend (it is not darkened by the original's colour).
    """
    weight = blend.astype(np.float32)[..., None] / 255.0
    original_alpha = original[..., 3:4].astype(np.float32) / 255.0
    kept = original_alpha * (1.0 - weight)
    alpha = weight + kept
    rgb = generated[..., :3].astype(np.float32) * weight + original[..., :3] * kept
    # Where alpha is 0 nothing shows; the original's colour is kept there.
    rgb = np.divide(rgb, alpha, out=original[..., :3].astype(np.float32), where=alpha > 0)
    result = np.empty_like(original)
    result[..., :3] = np.clip(np.rint(rgb), 0, 255)
    result[..., 3:] = np.clip(np.rint(alpha * 255.0), 0, 255)
    untouched = blend == 0
    result[untouched] = original[untouched]
    return result
