"""Mode.RESTORE: repair a photograph with restoration models, no prompt and no diffusion.

In order: `denoise` (a repair model of spandrel's "Restoration" purpose that keeps the size:
DRUNet, SCUNet denoise, FBCNN JPEG-artifact repair), `colorize` (DDColor, where
spandrel-extra-arches is installed), `restore_faces` (`face_restore.py`). The first two are
``MODEL[:STRENGTH]``: the model's picture blended over its input by the strength (default 1).
They come from `upscale_models/`, where ComfyUI keeps the restorers that keep the size, or from
a path.

The whole layer, or with a mask the selection: the models see the selection with the engine's
context around it, and the result covers the mask bounds with the blend mask as alpha, as every
other mode's does. A layer where nothing was to be done (only faces asked for, and none found)
gets no result layer and a hint saying so.
"""

from __future__ import annotations

import numpy as np

from .client.bounds import Bounds, Extent, context_bounds
from .client.protocol import EditRequest, GeneratedImage, InvalidRequest, split_name_value
from .face_restore import detector_path, faces_hint, load_face_restorer, restore_faces
from .geometry import blend_mask, image_array, layer_pixels, mask_array, rgba_image
from .model_files import UPSCALERS
from .restoration_models import ModelSource, Outcome, blend, run_image_model

CONTEXT_MIN_SIDE = 512  # as an inpaint's context: faces near the selection are seen whole


def repair(rgb: np.ndarray, source: ModelSource, choice: str, field: str) -> tuple[np.ndarray, str]:
    """`rgb` through the repair model ``MODEL[:STRENGTH]`` names, and what was done."""
    name, strength = split_name_value(choice)
    model = source.load(UPSCALERS, name, field=field, purposes=("Restoration",))
    if model.scale != 1:
        raise InvalidRequest(
            field, f"{model.name} scales by {model.scale}; it is an upscaler, not a repair model"
        )
    strength = 1.0 if strength is None else strength
    return blend(rgb, run_image_model(model, rgb), strength), f"{field} with {model.name}"


def restore_photo(request: EditRequest, source: ModelSource, seed: int) -> Outcome:
    """The answer to a restore request (see the module docstring)."""
    assert request.image is not None  # validate() checked
    pixels = image_array(request.image)
    canvas = Extent(request.image.width, request.image.height)
    selection = None
    if request.mask is not None:
        selection = blend_mask(mask_array(request.mask), request.grow, request.feather)
        if selection is None:
            raise InvalidRequest("mask", "restore's selection is empty; select an area or none")
    if selection is None:
        weights, mask_bounds = None, Bounds.of(canvas)
        context = mask_bounds
    else:
        weights, mask_bounds = selection
        context = context_bounds(mask_bounds, canvas, min_size=CONTEXT_MIN_SIDE)
    rgb = np.ascontiguousarray(pixels[context.slices][..., :3])
    done: list[str] = []
    if request.denoise:
        rgb, note = repair(rgb, source, request.denoise, "denoise")
        done.append(note)
    if request.colorize:
        rgb, note = repair(rgb, source, request.colorize, "colorize")
        done.append(note)
    if request.restore_faces:
        restorer = load_face_restorer(source, request.restore_faces, "restore_faces")
        rgb, found = restore_faces(rgb, restorer, detector_path(source, "restore_faces"))
        done.append(faces_hint(found, restorer))
        if not found and len(done) == 1:  # nothing else was asked: no layer to add
            return Outcome([], "", "; ".join(done))
    inside = mask_bounds.relative_to(context)
    alpha = weights if weights is not None else pixels[..., 3]
    layer = rgba_image(layer_pixels(rgb[inside.slices], alpha))
    return Outcome([GeneratedImage(layer, mask_bounds.x, mask_bounds.y, seed)], "", "; ".join(done))
