"""Mode.SELECT by Segment Anything (SAM): the subject inside a box prompt, segmented by a model
from a sams/ folder (a transformers folder: `inlayer models pull sam-vit-base`), run through
transformers' own `SamModel` and `SamProcessor` (no code from the model's repository).

The box prompt is the selection's bounding box. Without a selection it is the opaque part of
the layer less the margin GrabCut leaves (`subject_selection.MARGIN_SHARE` of each side), not
the layer's centre point: one point is ambiguous (SAM answers the whole, a part and a subpart of
whatever lies under it, and the centre of a picture often falls on a part: the shirt, not the
person), while a box says how far the subject reaches; the SAM paper's box prompts score higher
than single points on every benchmark it reports.

SAM answers three masks with a predicted quality (IoU) each; the best-scoring one is kept,
scaled back to the layer and cut to the box grown by `BOX_SLACK_SHARE` (SAM can follow a
subject's colour past a loose box into its surroundings; the slack keeps what a box drawn a
little too tight cut off). Transparent pixels are never subject.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .client.bounds import Bounds, Extent
from .client.protocol import InvalidRequest, ModelLoadError
from .geometry import nonzero_bounds, resize_mask, resize_rgb
from .model_files import SEGMENTERS, SUBJECT_SEGMENTERS

if TYPE_CHECKING:
    from .restoration_models import ModelSource

# SAM sees 1024 px on the long side (its processor scales to that): a larger copy adds nothing.
WORKING_SIDE = 1024
BOX_SLACK_SHARE = 0.1  # of the box's longer side, added on every side
SUBJECT_THRESHOLD = 128  # of the mask scaled back: above is subject
SAM_MODEL_TYPE = "sam"  # config.json's model_type of the folders SamModel loads


@dataclass(frozen=True)
class Segmenter:
    """A loaded SAM: its name as `inlayer models` lists it, the model and its processor."""

    name: str
    model: Any  # transformers.SamModel
    processor: Any  # transformers.SamProcessor


def segmenter_folder(reference: str, source: ModelSource) -> Path:
    """The SAM folder a request's `segmenter` names: a listed name or a folder's path."""
    found = source.registry.catalog.find_one(SEGMENTERS, reference)
    if found is None:
        names = ", ".join(source.segmenter_names()) or "none installed"
        raise InvalidRequest(
            "segmenter",
            f"{reference!r} is neither a subject segmenter in a {SUBJECT_SEGMENTERS.subfolder}/ "
            f"folder nor a Segment Anything model in a {SEGMENTERS.subfolder}/ folder of a "
            f"models folder ({names}), nor such a file or folder; `inlayer models pull isnet` "
            "fetches one, and 'grabcut' selects without a model",
        )
    return found.path


def load_segmenter(folder: Path, source: ModelSource) -> Segmenter:
    """The SAM in `folder`, loaded once per change of its config (see `_load_cached`)."""
    config = folder / SEGMENTERS.folder_marker
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as error:
        raise ModelLoadError(f"cannot read {config}: {error}") from None
    if model_type != SAM_MODEL_TYPE:
        raise InvalidRequest(
            "segmenter",
            f"{folder.name} is not a Segment Anything model: its config.json says model_type "
            f"{model_type!r}, not {SAM_MODEL_TYPE!r}",
        )
    registry = source.registry
    return _load_cached(folder, config.stat().st_mtime_ns, registry.allow_pickle, registry.device)


@functools.lru_cache(maxsize=1)
def _load_cached(folder: Path, modified_ns: int, allow_pickle: bool, device: str) -> Segmenter:
    del modified_ns  # part of the cache key only: a replaced model is loaded again
    from transformers import SamModel, SamProcessor

    model = SamModel.from_pretrained(
        folder, use_safetensors=None if allow_pickle else True, local_files_only=True
    )
    processor = SamProcessor.from_pretrained(folder, local_files_only=True)
    return Segmenter(folder.name, model.to(device).eval(), processor)


def box_prompt(rgba: np.ndarray, near: np.ndarray | None, margin_share: float) -> Bounds | None:
    """The box SAM is asked about (see the module docstring); None when the layer is empty."""
    if near is not None:
        return nonzero_bounds(near)
    opaque = nonzero_bounds(rgba[..., 3])
    if opaque is None:
        return None
    margin_x = max(1, round(opaque.width * margin_share))
    margin_y = max(1, round(opaque.height * margin_share))
    inner = Bounds(
        opaque.x + margin_x,
        opaque.y + margin_y,
        opaque.width - 2 * margin_x,
        opaque.height - 2 * margin_y,
    )
    return opaque if inner.is_empty else inner


def sam_subject_mask(segmenter: Segmenter, rgba: np.ndarray, box: Bounds) -> np.ndarray:
    """HxW uint8 mask (255 = subject) of an HxWx4 image: SAM's best mask for `box`, inside
    the box grown by `BOX_SLACK_SHARE`, never on a transparent pixel."""
    import torch

    full = Extent(rgba.shape[1], rgba.shape[0])
    scale = min(1.0, WORKING_SIDE / max(full.width, full.height))
    working = Extent(max(1, round(full.width * scale)), max(1, round(full.height * scale)))
    rgb = resize_rgb(np.ascontiguousarray(rgba[..., :3]), working)
    corners = [box.x * scale, box.y * scale, box.right * scale, box.bottom * scale]
    inputs = segmenter.processor(images=rgb, input_boxes=[[corners]], return_tensors="pt")
    device = next(segmenter.model.parameters()).device
    with torch.inference_mode():
        output = segmenter.model(
            pixel_values=inputs["pixel_values"].to(device),
            input_boxes=inputs["input_boxes"].to(device),
            multimask_output=True,
        )
    best = int(output.iou_scores[0, 0].argmax())
    [masks] = segmenter.processor.image_processor.post_process_masks(
        output.pred_masks[:, :, best : best + 1].cpu(),
        inputs["original_sizes"],
        inputs["reshaped_input_sizes"],
    )
    subject = np.where(masks[0, 0].numpy(), 255, 0).astype(np.uint8)
    subject = np.where(resize_mask(subject, full) >= SUBJECT_THRESHOLD, 255, 0).astype(np.uint8)
    slack = round(max(box.width, box.height) * BOX_SLACK_SHARE)
    inside = np.zeros_like(subject)
    inside[box.pad(slack).clamp(full).slices] = 255
    subject &= inside
    subject[rgba[..., 3] == 0] = 0
    return subject
