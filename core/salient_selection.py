"""Mode.SELECT by a salient-object model: IS-Net (DIS), BiRefNet or U²-Net, as the ONNX files
rembg publishes (`inlayer models pull isnet` / `birefnet-lite`) in a rembg/ folder, run by
onnxruntime (`inlayer[restore]`). Unlike Segment Anything these need no prompt: they answer,
for every pixel, whether it belongs to the picture's subject, with soft edges for hair and fur.

The model looks at the whole layer; with a selection, at the selection's bounding box grown by
`CONTEXT_SHARE` of its longer side on every side (the subject with some of its surroundings),
and nothing outside that box is subject. Transparent pixels are never subject.

Each family's pre- and post-processing is the published one, as rembg runs it: the picture
scaled to the model's input (read from the file: 1024² for IS-Net and BiRefNet, 320² for
U²-Net), divided by its brightest value, less ImageNet's mean, divided by ImageNet's deviation
(IS-Net: by 1); of the answers, the first output's first channel, through a sigmoid where it
holds logits (BiRefNet's), stretched to [0, 1] and scaled back. The family is told by the file's
name, as rembg tells it. What is under `FLOOR` of the stretched answer is background; the soft
edge above it becomes the selection's feather.

rembg itself is not a dependency: it fetches its models through pooch into a folder of its own
at first use and brings scikit-image and pymatting (with numba); onnxruntime is all these files
need.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .client.bounds import Bounds, Extent
from .client.protocol import InvalidRequest, ModelLoadError
from .geometry import nonzero_bounds, resize_mask, resize_rgb
from .model_files import SUBJECT_SEGMENTERS
from .restoration_models import ModelSource

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEVIATION = (0.229, 0.224, 0.225)
UNIT_DEVIATION = (1.0, 1.0, 1.0)
UNIT_DEVIATION_FAMILIES = ("isnet", "dis")  # file-name beginnings, as rembg names the files
DEFAULT_SIDE = 1024  # for a file whose input size is left open
CONTEXT_SHARE = 0.1  # of the selection box's longer side, added on every side
FLOOR = 0.1  # of the stretched answer: below is background


@dataclass(frozen=True)
class SubjectSegmenter:
    """A loaded salient-object model: its name as `inlayer models` lists it, the onnxruntime
    session, the picture size it takes and the deviation its input is divided by."""

    name: str
    session: Any  # onnxruntime.InferenceSession
    extent: Extent
    deviation: tuple[float, float, float]

    def answer(self, rgb: np.ndarray) -> np.ndarray:
        """HxW float32 in [0, 1] (1 = subject) for an HxWx3 uint8 picture."""
        height, width = rgb.shape[:2]
        scaled = resize_rgb(np.ascontiguousarray(rgb), self.extent).astype(np.float32)
        scaled /= max(float(scaled.max()), 1e-6)
        scaled = (scaled - np.array(IMAGENET_MEAN, np.float32)) / np.array(
            self.deviation, np.float32
        )
        batch = scaled.transpose(2, 0, 1)[np.newaxis].astype(np.float32)
        first = self.session.run(None, {self.session.get_inputs()[0].name: batch})[0]
        # One map: 1x1xHxW (or 1xHxW), not boxes or scores.
        if (
            first.ndim not in (3, 4)
            or first.size != first.shape[-2] * first.shape[-1]
            or min(first.shape[-2:]) < 2
        ):
            raise InvalidRequest(
                "segmenter",
                f"{self.name} is not a subject segmenter: its first output has the shape "
                f"{list(first.shape)}, not 1x1xHxW",
            )
        answer = first.reshape(first.shape[-2:]).astype(np.float32)
        if answer.min() < 0.0 or answer.max() > 1.0:  # logits
            answer = 1.0 / (1.0 + np.exp(-answer))
        low, high = float(answer.min()), float(answer.max())
        if high - low > 1e-3:  # an even answer (all subject, or none) is kept as it is
            answer = (answer - low) / (high - low)
        grey = np.round(answer * 255).astype(np.uint8)
        return resize_mask(grey, Extent(width, height)).astype(np.float32) / 255.0


def subject_segmenter_file(reference: str, source: ModelSource) -> Path | None:
    """The ONNX file `reference` names (a listed name or a path), None when it names none."""
    found = source.registry.catalog.find_one(SUBJECT_SEGMENTERS, reference)
    return None if found is None else found.path


def load_subject_segmenter(path: Path, source: ModelSource) -> SubjectSegmenter:
    """The model in `path`, loaded once per change of the file."""
    return _load_cached(path, path.stat().st_mtime_ns, source.registry.device)


@functools.lru_cache(maxsize=1)
def _load_cached(path: Path, modified_ns: int, device: str) -> SubjectSegmenter:
    del modified_ns  # part of the cache key only: a replaced file is loaded again
    try:
        import onnxruntime
    except ImportError:
        raise ModelLoadError(
            f'{path.name} needs onnxruntime: pip install "inlayer[restore]"'
        ) from None
    available = onnxruntime.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=providers)
    except Exception as error:  # onnxruntime raises its own classes for a broken file
        raise ModelLoadError(f"cannot load {path.name}: {error}") from None
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or shape[1] != 3:
        raise InvalidRequest(
            "segmenter",
            f"{path.stem} is not a subject segmenter: it takes {shape}, not a 1x3xHxW picture",
        )
    height, width = (side if isinstance(side, int) else DEFAULT_SIDE for side in shape[2:])
    family = path.stem.lower()
    deviation = UNIT_DEVIATION if family.startswith(UNIT_DEVIATION_FAMILIES) else IMAGENET_DEVIATION
    return SubjectSegmenter(path.stem, session, Extent(width, height), deviation)


def looked_at(rgba: np.ndarray, near: np.ndarray | None) -> Bounds | None:
    """The part of the layer the model sees (see the module docstring); None when there is
    nothing to see."""
    full = Extent(rgba.shape[1], rgba.shape[0])
    if near is None:
        return nonzero_bounds(rgba[..., 3])
    box = nonzero_bounds(near)
    if box is None:
        return None
    return box.pad(round(max(box.width, box.height) * CONTEXT_SHARE)).clamp(full)


def salient_subject_mask(segmenter: SubjectSegmenter, rgba: np.ndarray, area: Bounds) -> np.ndarray:
    """HxW uint8 mask (255 = subject, soft at the edges) of an HxWx4 image: the model's answer
    for `area`, nothing outside it, never on a transparent pixel."""
    answer = segmenter.answer(rgba[area.slices][..., :3])
    subject = np.zeros(rgba.shape[:2], np.uint8)
    subject[area.slices] = np.where(answer < FLOOR, 0, np.round(answer * 255)).astype(np.uint8)
    subject[rgba[..., 3] == 0] = 0
    return subject
