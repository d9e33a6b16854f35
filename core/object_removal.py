"""Mode.REMOVE: take out what the selection covers, filling it from its surroundings with a
big-mask inpainting model (LaMa; MAT where spandrel-extra-arches is installed) from the
`inpaint/` folder, or with the weight-free fill (`fill.py`) where none is installed.

No prompt and no diffusion: the model runs once on the context around the selection at the
image's own resolution (contexts larger than `MAX_REMOVE_SIDE` are scaled down to it and back).
The context is the engine's (`bounds.context_bounds` at full strength), so a plug-in reads the
same pixels as for an inpaint. The result is a layer over the mask bounds whose alpha is the
blend mask, like every other mode: pixels outside the selection stay bit-identical.

`refine` asks for a low-strength diffusion pass over the removal afterwards, for texture: the
engine runs it as an inpaint of the removal at that strength (`refine_request`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .client.bounds import Bounds, Extent, context_bounds
from .client.protocol import (
    REFINE_OFF,
    REMOVER_FILL,
    EditRequest,
    FillMode,
    GeneratedImage,
    InvalidRequest,
    Mode,
)
from .fill import fill_masked
from .geometry import (
    blend_mask,
    composite,
    image_array,
    layer_pixels,
    mask_array,
    resize_mask,
    resize_rgb,
    rgba_image,
)
from .image_models import ImageModel
from .model_files import OBJECT_REMOVERS
from .restoration_models import ModelSource, Outcome, rgb_tensor, tensor_rgb

# Contexts are cut to the selection plus surroundings; past this side they are scaled down.
MAX_REMOVE_SIDE = 2048
CONTEXT_MULTIPLE = 8  # LaMa's size multiple
CONTEXT_MIN_SIDE = 512  # LaMa was trained on 512² crops: a small hole still sees that much


def remove_objects(request: EditRequest, source: ModelSource, seed: int) -> Outcome:
    """The selection of `request` filled from its surroundings (see the module docstring)."""
    assert request.image is not None and request.mask is not None  # validate() checked
    canvas = Extent(request.image.width, request.image.height)
    selection = blend_mask(mask_array(request.mask), request.grow, request.feather)
    if selection is None:
        raise InvalidRequest("grow", f"shrinking by {-request.grow} px leaves no mask")
    blend, mask_bounds = selection
    context = context_bounds(
        mask_bounds, canvas, min_size=CONTEXT_MIN_SIDE, multiple=CONTEXT_MULTIPLE
    )
    rgb = np.ascontiguousarray(image_array(request.image)[context.slices][..., :3])
    inside = mask_bounds.relative_to(context)
    # Every pixel the blend touches is filled fully; the blend becomes the result's alpha.
    hole = np.zeros(rgb.shape[:2], dtype=np.uint8)
    hole[inside.slices] = np.where(blend > 0, 255, 0).astype(np.uint8)

    model = _remover(request, source)
    if model is None:
        filled = fill_masked(rgb, hole, FillMode.TELEA, seed=seed)
        name = ""
        hint = (
            "removed with the weight-free fill: no object remover is installed in an inpaint/ "
            "folder (`inlayer models pull lama` fetches LaMa, which fills far better)"
        )
    else:
        filled = run_remover(model, rgb, hole)
        name = model.name
        hint = f"removed with {model.name} ({model.architecture})"
    pixels = layer_pixels(filled[inside.slices], blend)
    layer = GeneratedImage(rgba_image(pixels), mask_bounds.x, mask_bounds.y, seed)
    return Outcome([layer], name, hint)


def _remover(request: EditRequest, source: ModelSource) -> ImageModel | None:
    """The request's remover, the first installed one, or None for the weight-free fill."""
    reference = request.remover.strip()
    if reference == REMOVER_FILL:
        return None
    if not reference:
        installed = source.names(OBJECT_REMOVERS, ("Inpainting",))
        if not installed:
            return None
        reference = installed[0]
    return source.load(OBJECT_REMOVERS, reference, field="remover", purposes=("Inpainting",))


def run_remover(model: ImageModel, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The model's fill of `hole` (HxW uint8, > 0 = fill) in `rgb` (HxWx3 uint8), at the
    context's own size up to `MAX_REMOVE_SIDE`; pixels outside the hole are the input's."""
    import torch

    full = Extent(rgb.shape[1], rgb.shape[0])
    working = full
    if max(full.width, full.height) > MAX_REMOVE_SIDE:
        working = full.scale_keep_aspect(MAX_REMOVE_SIDE**2, CONTEXT_MULTIPLE)
    small_rgb = resize_rgb(rgb, working)
    small_hole = resize_mask(hole, working)
    device = str(next(model.descriptor.model.parameters()).device)
    mask = torch.from_numpy((small_hole > 0).astype(np.float32))[None, None].to(device)
    with torch.inference_mode():
        output = tensor_rgb(model.descriptor(rgb_tensor(small_rgb, device), mask))
    output = resize_rgb(output, full)
    return np.where(hole[..., None] > 0, output, rgb)


def refine_request(request: EditRequest, removal: Outcome, strength: float) -> EditRequest:
    """The inpaint that refines a removal: the removal composited over the image, repainted
    under the same selection at `strength` (the request's `refine`), with no tiled refine of
    its own: the removal already has the image's resolution."""
    assert request.image is not None
    canvas = np.array(image_array(request.image))
    [layer] = removal.images
    bounds = Bounds(layer.x, layer.y, layer.image.width, layer.image.height)
    pixels = image_array(layer.image)
    canvas[bounds.slices] = composite(canvas[bounds.slices], pixels, pixels[..., 3])
    return dataclasses.replace(
        request,
        mode=Mode.INPAINT,
        image=rgba_image(canvas),
        strength=strength,
        refine=REFINE_OFF,
        fill=FillMode.KEEP,
    )
