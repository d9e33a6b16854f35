"""Mode.SELECT: the subject of a layer as a mask, to start an edit from ("change the car").

The segmenter is the request's: a subject segmenter (IS-Net, BiRefNet: `salient_selection.py`),
a Segment Anything model (`sam_selection.py`), or OpenCV's GrabCut ("grabcut"). A request that
names none gets the first subject segmenter installed, which needs no prompt; else the first
Segment Anything, which is asked about a box; else GrabCut.

GrabCut needs no weights: a colour model of subject and background refined by graph cuts.
With a selection, the subject is looked for under it: what lies outside is background, what
lies inside probably subject. Without one, the subject is taken to be inside the layer's middle
(`MARGIN_SHARE` of each side is background). Transparent pixels are always background. GrabCut
runs on a copy at most `WORKING_SIDE` px long and the mask is scaled back, so its cost does not
grow with the layer.

The result is one layer over the whole canvas: the source's own pixels with the subject mask as
alpha. Shown as a layer it is the cut-out subject; the plug-ins turn its alpha into a selection
(GIMP) or a selection mask (Krita), and `inlayer run select` writes it as a mask file. So
`EditResult` stays the one result type.
"""

from __future__ import annotations

import cv2
import numpy as np

from .client.bounds import Extent
from .client.protocol import SEGMENTER_GRABCUT, EditRequest, GeneratedImage
from .geometry import image_array, layer_pixels, mask_array, resize_mask, resize_rgb, rgba_image
from .restoration_models import ModelSource, Outcome
from .salient_selection import (
    load_subject_segmenter,
    looked_at,
    salient_subject_mask,
    subject_segmenter_file,
)
from .sam_selection import box_prompt, load_segmenter, sam_subject_mask, segmenter_folder

WORKING_SIDE = 512
MARGIN_SHARE = 0.08  # of each side, background when there is no selection
ITERATIONS = 5
SUBJECT_THRESHOLD = 128  # of the mask scaled back: above is subject


def subject_mask(rgba: np.ndarray, near: np.ndarray | None) -> np.ndarray:
    """HxW uint8 mask (255 = subject) of an HxWx4 image; `near` (HxW, > 0 = where to look) or
    None for the whole layer."""
    full = Extent(rgba.shape[1], rgba.shape[0])
    scale = min(1.0, WORKING_SIDE / max(full.width, full.height))
    working = Extent(max(1, round(full.width * scale)), max(1, round(full.height * scale)))
    rgb = resize_rgb(np.ascontiguousarray(rgba[..., :3]), working)
    opaque = resize_mask(np.ascontiguousarray(rgba[..., 3]), working) > 0
    labels = np.full((working.height, working.width), cv2.GC_BGD, dtype=np.uint8)
    if near is None:
        margin_x = max(1, round(working.width * MARGIN_SHARE))
        margin_y = max(1, round(working.height * MARGIN_SHARE))
        labels[margin_y:-margin_y, margin_x:-margin_x] = cv2.GC_PR_FGD
    else:
        labels[resize_mask(near, working) > 0] = cv2.GC_PR_FGD
    labels[~opaque] = cv2.GC_BGD
    if (labels == cv2.GC_PR_FGD).all() or not (labels == cv2.GC_PR_FGD).any():
        return np.zeros((full.height, full.width), dtype=np.uint8)
    background = np.zeros((1, 65), np.float64)
    foreground = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means: the same mask every time
    cv2.grabCut(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        labels,
        None,
        background,
        foreground,
        ITERATIONS,
        cv2.GC_INIT_WITH_MASK,
    )
    subject = np.where((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD), 255, 0)
    subject = resize_mask(subject.astype(np.uint8), full)
    return np.where(subject >= SUBJECT_THRESHOLD, 255, 0).astype(np.uint8)


def default_segmenter(source: ModelSource) -> str:
    """The segmenter a request that names none gets: the first subject segmenter (it needs no
    prompt), else the first Segment Anything, else GrabCut."""
    installed = source.segmenter_names()
    return installed[0] if installed else SEGMENTER_GRABCUT


def select_subject(request: EditRequest, source: ModelSource, seed: int) -> Outcome:
    """The answer to a select request (see the module docstring)."""
    assert request.image is not None  # validate() checked
    pixels = image_array(request.image)
    near = None
    if request.mask is not None and not request.mask.is_empty():
        near = mask_array(request.mask)
    where = "under the selection" if near is not None else "in the layer"
    asked = request.segmenter.strip()
    fallback = default_segmenter(source)
    reference = asked or fallback
    subject = np.zeros(pixels.shape[:2], np.uint8)
    if reference == SEGMENTER_GRABCUT:
        subject = subject_mask(pixels, near)
        name, by = "", "GrabCut (no model)"
    elif (onnx := subject_segmenter_file(reference, source)) is not None:
        segmenter = load_subject_segmenter(onnx, source)
        name, by = segmenter.name, f"the subject segmenter {segmenter.name}"
        area = looked_at(pixels, near)
        if area is not None:
            subject = salient_subject_mask(segmenter, pixels, area)
    else:
        segmenter = load_segmenter(segmenter_folder(reference, source), source)
        name, by = segmenter.name, f"Segment Anything ({segmenter.name})"
        box = box_prompt(pixels, near, MARGIN_SHARE)
        if box is not None:
            subject = sam_subject_mask(segmenter, pixels, box)
            where = f"in the box {box.x},{box.y} {box.width}x{box.height}"
    found = bool(subject.any())
    share = float((subject >= SUBJECT_THRESHOLD).mean())
    hint = f"subject selected {where} by {by}: {share:.0%} of the layer"
    if not found:
        hint = f"no subject found {where} by {by}: select an area around it and try again"
    if not asked and fallback == SEGMENTER_GRABCUT:
        hint += "; `inlayer models pull isnet` fetches a subject segmenter, which does better"
    if not found:
        return Outcome([], name, hint)
    layer = GeneratedImage(rgba_image(layer_pixels(pixels, subject)), 0, 0, seed)
    return Outcome([layer], name, hint)
