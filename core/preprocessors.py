"""Control maps: what a ControlNet sees, made from a control image (`ControlChoice.preprocessor`).

Every preprocessor takes the control image as HxWx4 uint8 RGBA at the run's working extent and
gives an HxWx3 uint8 map of the same size, in the convention the public ControlNets were trained
on (white lines on black; near = bright for depth):

- ``none``: the image is already a map; transparent parts are black.
- ``canny``: OpenCV's Canny edges of the image (thresholds 100 and 200, as the ControlNet
  authors' annotator).
- ``scribble``, ``lineart``: from a drawing (dark lines on light paper or on a transparent
  layer): inverted, thresholded (Otsu), thinned to one-pixel lines (scikit-image's skeletonize
  where installed, else OpenCV's morphological skeleton), then widened to the strokes each
  ControlNet expects (scribbles are bold, line art is fine).
- ``depth``: a transformers depth-estimation model (DPT, Depth Anything) from an `annotators/`
  folder of a models folder (`inlayer models pull depth-anything-small`).
- ``softedge``: the gradient magnitude of the image at two blur scales, normalised: the soft,
  multi-scale edges HED and PiDiNet give, from OpenCV alone (those two need weights of their
  own, through controlnet-aux).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .client.protocol import InvalidRequest
from .model_files import DEPTH_ESTIMATORS, find_model_files

CANNY_THRESHOLDS = (100, 200)
_depth_estimators: dict[tuple[Path, int], Any] = {}
_depth_lock = threading.Lock()


def over(rgba: np.ndarray, background: int) -> np.ndarray:
    """HxWx3 RGB of RGBA pixels composited over a flat grey level."""
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + background * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def grey(rgba: np.ndarray) -> np.ndarray:
    """HxW luminance of RGBA pixels over white paper."""
    return cv2.cvtColor(over(rgba, 255), cv2.COLOR_RGB2GRAY)


def as_map(single: np.ndarray) -> np.ndarray:
    return np.repeat(single[..., None], 3, axis=2)


def thin(binary: np.ndarray) -> np.ndarray:
    """One-pixel-wide lines of an HxW 0/255 image."""
    try:
        from skimage.morphology import skeletonize
    except ImportError:
        return _morphological_skeleton(binary)
    return np.where(skeletonize(binary > 0), 255, 0).astype(np.uint8)


def _morphological_skeleton(binary: np.ndarray) -> np.ndarray:
    """Lantuéjoul's skeleton with OpenCV: the union of what each erosion loses to an opening."""
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    skeleton = np.zeros_like(binary)
    image = binary.copy()
    while image.any():
        eroded = cv2.erode(image, kernel)
        skeleton |= cv2.subtract(image, cv2.dilate(eroded, kernel))
        image = eroded
    return skeleton


def drawing_lines(rgba: np.ndarray, width: int) -> np.ndarray:
    """White lines `width` px wide on black, from a drawing's dark lines."""
    inverted = 255 - grey(rgba)
    _, binary = cv2.threshold(inverted, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    lines = thin(binary)
    if width > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
        lines = cv2.dilate(lines, kernel)
    return lines


def stroke_width(rgba: np.ndarray, per_512: int, least: int) -> int:
    """A stroke width of `per_512` px at 512 px, scaled with the map's shorter side, and at
    least `least` px."""
    return max(least, round(per_512 * min(rgba.shape[:2]) / 512))


def soft_edges(rgba: np.ndarray) -> np.ndarray:
    image = grey(rgba).astype(np.float32)
    total = np.zeros_like(image)
    for sigma in (1.0, 3.0):
        blurred = cv2.GaussianBlur(image, (0, 0), sigma)
        total += cv2.magnitude(
            cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1)
        )
    top = float(total.max())
    if top > 0:
        total = np.sqrt(total / top)  # lift the faint edges, as HED's maps show them
    return np.clip(np.rint(total * 255.0), 0, 255).astype(np.uint8)


def depth_map(rgba: np.ndarray, models_dirs: Sequence[Path], field: str) -> np.ndarray:
    """Near = bright depth of the image, at its size, by the first installed estimator."""
    import torch
    from PIL import Image

    found = find_model_files(models_dirs, DEPTH_ESTIMATORS)
    if not found:
        looked = ", ".join(str(d / DEPTH_ESTIMATORS.subfolder) for d in models_dirs) or "nowhere"
        raise InvalidRequest(
            field,
            f"depth needs a depth-estimation model (looked in {looked}); fetch one with "
            "`inlayer models pull depth-anything-small`, or give a depth map with "
            "preprocessor none",
        )
    path = found[0].path
    key = (path, (path / DEPTH_ESTIMATORS.folder_marker).stat().st_mtime_ns)
    with _depth_lock:
        if key not in _depth_estimators:
            from transformers import pipeline

            _depth_estimators.clear()
            _depth_estimators[key] = pipeline("depth-estimation", model=str(path), device="cpu")
        estimator = _depth_estimators[key]
        with torch.inference_mode():
            predicted = estimator(Image.fromarray(over(rgba, 255)))["predicted_depth"]
    depth = predicted.float().squeeze().cpu().numpy()
    height, width = rgba.shape[:2]
    depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_CUBIC)
    low, high = float(depth.min()), float(depth.max())
    scaled = (depth - low) / (high - low) if high > low else np.zeros_like(depth)
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def control_map(
    rgba: np.ndarray, preprocessor: str, models_dirs: Sequence[Path], field: str
) -> np.ndarray:
    """The HxWx3 control map of HxWx4 control pixels (see the module docstring)."""
    if preprocessor == "none":
        return over(rgba, 0)
    if preprocessor == "canny":
        return as_map(cv2.Canny(grey(rgba), *CANNY_THRESHOLDS))
    if preprocessor == "scribble":
        return as_map(drawing_lines(rgba, stroke_width(rgba, 6, least=3)))
    if preprocessor == "lineart":
        return as_map(drawing_lines(rgba, stroke_width(rgba, 2, least=1)))
    if preprocessor == "depth":
        return as_map(depth_map(rgba, models_dirs, field))
    if preprocessor == "softedge":
        return as_map(soft_edges(rgba))
    raise InvalidRequest(field, f"{preprocessor!r} is unknown")
