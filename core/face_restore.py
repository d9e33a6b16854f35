"""Restore faces: find them with OpenCV's face detector (YuNet, `cv2.FaceDetectorYN`, an ONNX
file in a `facedetection/` folder that `inlayer models pull yunet` fetches), restore each with a
face restorer from `facerestore_models/` (GFPGAN, RestoreFormer; CodeFormer where
spandrel-extra-arches is installed) and paste it back with a feathered edge.

Each face is cut out as a square around the detected box, `FACE_CONTEXT` times its size, so the
restorer sees the whole head, and scaled to the restorer's `FACE_SIDE`. Only the detected box
takes restored pixels (its edge feathered inward), so nothing outside a face changes.

A request's `restore_faces` is ``MODEL[:FIDELITY]``: how much of the original face to keep,
0-1. CodeFormer takes it as its own fidelity weight (default 0.5); the other restorers' faces
are blended with the original by 1 - fidelity (default 0: fully restored), as AUTOMATIC1111's
"visibility" does. Used by Mode.RESTORE and, after the generation, by every diffusion mode.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .client.bounds import Bounds, Extent
from .client.protocol import GeneratedImage, InvalidRequest, split_name_value
from .geometry import image_array, resize_rgb, rgba_image
from .image_models import ImageModel
from .model_files import FACE_DETECTORS, FACE_RESTORERS
from .restoration_models import ModelSource, blend, rgb_tensor, run_image_model, tensor_rgb

FACE_SIDE = 512  # what GFPGAN, RestoreFormer and CodeFormer were trained on
FACE_CONTEXT = 1.6  # the square cut around a detected box, relative to the box's longer side
FEATHER_SHARE = 0.1  # the paste's soft edge, relative to the box's shorter side
DETECTION_SIDE = 640  # images are scaled down to this longer side to look for faces
SCORE_THRESHOLD = 0.6
NMS_THRESHOLD = 0.3
CODEFORMER_DEFAULT_FIDELITY = 0.5
# Restorers whose module spandrel calls without mapping [0, 1] to their [-1, 1]: run directly.
SIGNED_RANGE_ARCHITECTURES = ("GFPGAN", "CodeFormer")
NO_DETECTOR = (
    "no face detector is installed: `inlayer models pull yunet` fetches OpenCV's YuNet "
    "(a 230 KB ONNX file) into the facedetection/ folder"
)
NO_FACE_RESTORER = (
    "no face restorer is installed: `inlayer models pull gfpgan` (or codeformer) fetches one "
    "into the facerestore_models/ folder, where GFPGAN, RestoreFormer and CodeFormer weights "
    "of your own go too (pickled .pth files need allow_pickle)"
)


@dataclass(frozen=True)
class FaceRestorer:
    """A loaded face restorer and how faithful to the original face it is asked to be."""

    model: ImageModel
    fidelity: float

    @property
    def visibility(self) -> float:
        """How much of the restored face shows over the original one."""
        return 1.0 if self.model.architecture == "CodeFormer" else 1.0 - self.fidelity

    def restore(self, face: np.ndarray) -> np.ndarray:
        """A FACE_SIDE² HxWx3 uint8 face, restored."""
        import torch

        architecture = self.model.architecture
        if architecture not in SIGNED_RANGE_ARCHITECTURES:
            return run_image_model(self.model, face)
        module = self.model.descriptor.model
        device = str(next(module.parameters()).device)
        signed = rgb_tensor(face, device) * 2.0 - 1.0
        with torch.inference_mode():
            if architecture == "CodeFormer":
                output = module(signed, weight=self.fidelity)[0]
            else:  # GFPGAN: the noise stored in the file, so a face restores the same each time
                output = module(signed, randomize_noise=False)[0]
        return tensor_rgb((output + 1.0) / 2.0)


def load_face_restorer(source: ModelSource, choice: str, field: str) -> FaceRestorer:
    """The restorer ``MODEL[:FIDELITY]`` names; an empty model name takes the first installed."""
    name, fidelity = split_name_value(choice)
    if not name:
        installed = source.names(FACE_RESTORERS, ("FaceSR",))
        if not installed:
            raise InvalidRequest(field, NO_FACE_RESTORER)
        name = installed[0]
    model = source.load(FACE_RESTORERS, name, field=field, purposes=("FaceSR",))
    if fidelity is None:
        fidelity = CODEFORMER_DEFAULT_FIDELITY if model.architecture == "CodeFormer" else 0.0
    return FaceRestorer(model, fidelity)


def detector_path(source: ModelSource, field: str) -> Path:
    installed = source.registry.catalog.find(FACE_DETECTORS)
    if not installed:
        raise InvalidRequest(field, NO_DETECTOR)
    return installed[0].path


@functools.lru_cache(maxsize=2)
def _detector(path: Path, modified_ns: int) -> cv2.FaceDetectorYN:
    del modified_ns  # part of the cache key only
    return cv2.FaceDetectorYN.create(
        str(path), "", (320, 320), SCORE_THRESHOLD, NMS_THRESHOLD, 5000
    )


def detect_faces(rgb: np.ndarray, detector: Path) -> list[Bounds]:
    """The boxes of the faces in an HxWx3 uint8 image, biggest first."""
    canvas = Extent(rgb.shape[1], rgb.shape[0])
    scale = min(1.0, DETECTION_SIDE / max(canvas.width, canvas.height))
    small = resize_rgb(
        rgb, Extent(max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale)))
    )
    finder = _detector(detector, detector.stat().st_mtime_ns)
    finder.setInputSize((small.shape[1], small.shape[0]))
    _, found = finder.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    boxes = []
    for row in [] if found is None else found:
        left, top, width, height = (float(value) / scale for value in row[:4])
        x, y = round(left), round(top)
        box = Bounds(x, y, round(left + width) - x, round(top + height) - y).clamp(canvas)
        if not box.is_empty:
            boxes.append(box)
    return sorted(boxes, key=lambda box: -box.width * box.height)


def face_square(box: Bounds, canvas: Extent) -> Bounds:
    """The square the restorer sees around a face box: FACE_CONTEXT times its longer side,
    centred on it, moved inside the canvas where it fits (and cut where it does not)."""
    side = min(round(max(box.width, box.height) * FACE_CONTEXT), canvas.width, canvas.height)
    x = min(max(box.x + box.width // 2 - side // 2, 0), canvas.width - side)
    y = min(max(box.y + box.height // 2 - side // 2, 0), canvas.height - side)
    return Bounds(x, y, side, side)


def paste_weight(box: Bounds) -> np.ndarray:
    """HxW float weights of a face box: 1 inside, falling to 0 at its edge over the feather."""
    feather = max(1, round(min(box.width, box.height) * FEATHER_SHARE))
    rows = np.minimum(np.arange(box.height), np.arange(box.height)[::-1]) + 0.5
    columns = np.minimum(np.arange(box.width), np.arange(box.width)[::-1]) + 0.5
    ramp = np.minimum(rows[:, None], columns[None, :]) / feather
    return np.clip(ramp, 0.0, 1.0).astype(np.float32)


def restore_faces(
    rgb: np.ndarray, restorer: FaceRestorer, detector: Path
) -> tuple[np.ndarray, int]:
    """`rgb` (HxWx3 uint8) with every detected face restored, and how many there were."""
    canvas = Extent(rgb.shape[1], rgb.shape[0])
    boxes = detect_faces(rgb, detector)
    result = rgb.copy()
    if restorer.visibility == 0.0:  # the original faces kept whole: nothing to run
        return result, len(boxes)
    for box in boxes:
        square = face_square(box, canvas)
        face = resize_rgb(np.ascontiguousarray(rgb[square.slices]), Extent(FACE_SIDE, FACE_SIDE))
        restored = resize_rgb(restorer.restore(face), square.extent)
        inside = box.relative_to(square)
        target = result[box.slices]
        weight = paste_weight(box) * restorer.visibility
        result[box.slices] = blend(target, restored[inside.slices], weight)
    return result, len(boxes)


def restore_faces_in_layers(
    images: list[GeneratedImage], choice: str, source: ModelSource
) -> tuple[list[GeneratedImage], str]:
    """A generation's layers with their faces restored (alpha kept), and a hint saying how
    many faces were restored."""
    restorer = load_face_restorer(source, choice, "restore_faces")
    detector = detector_path(source, "restore_faces")
    restored_images, found = [], 0
    for generated in images:
        pixels = np.array(image_array(generated.image))
        pixels[..., :3], count = restore_faces(
            np.ascontiguousarray(pixels[..., :3]), restorer, detector
        )
        found += count
        restored_images.append(
            GeneratedImage(rgba_image(pixels), generated.x, generated.y, generated.seed)
        )
    return restored_images, faces_hint(found, restorer)


def faces_hint(found: int, restorer: FaceRestorer) -> str:
    if not found:
        return "no faces found to restore"
    return f"{found} face{'s' if found > 1 else ''} restored with {restorer.model.name}"
