"""Seamless tiling: textures whose right edge continues into their left, and bottom into top.

Every convolution of the UNet and of the autoencoder pads circularly for the run, as
AUTOMATIC1111's `tiling` does: the picture is then a torus to the model, and what it paints at
one edge fits the opposite one. The padding is set on the cached pipeline's layers for the one
call and restored after it, so the next run (of any mode) sees the model as it was. The picture
is scaled from the model's working size to the canvas as a torus too (`resize_wrapping`).

Only whole pictures wrap: an inpaint (or any edit of a selection) repaints a part whose edges are
not the picture's, so a request with `tiling` must be a txt2img or img2img of the whole canvas
(`EditRequest.validate` refuses the rest). The full-resolution refine works in tiles that do not
wrap, so a tiling run skips it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from .client.bounds import Extent
from .geometry import resize_rgb

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

CIRCULAR = "circular"


@contextmanager
def circular_padding(pipe: DiffusionPipeline, enabled: bool = True) -> Iterator[None]:
    """Within the block, the UNet's and the autoencoder's 2D convolutions pad circularly
    (`enabled`); their own padding modes come back afterwards, even on an error."""
    import torch

    if not enabled:
        yield
        return
    convolutions = [
        layer
        for component in (pipe.unet, pipe.vae)
        for layer in component.modules()
        if isinstance(layer, torch.nn.Conv2d)
    ]
    kept = [layer.padding_mode for layer in convolutions]
    for layer in convolutions:
        layer.padding_mode = CIRCULAR  # nn.Conv2d pads by this mode on every call
    try:
        yield
    finally:
        for layer, mode in zip(convolutions, kept, strict=True):
            layer.padding_mode = mode


def resize_wrapping(rgb: np.ndarray, extent: Extent) -> np.ndarray:
    """A tiling picture (HxWx3 uint8) scaled to `extent` as the torus it is: resized as a 3x3
    tiling of itself and cut back to the middle one, so that the interpolation at each edge reads
    the opposite edge (a plain resize repeats the edge, and the seam shows)."""
    if (rgb.shape[1], rgb.shape[0]) == (extent.width, extent.height):
        return rgb
    tiled = resize_rgb(np.tile(rgb, (3, 3, 1)), Extent(3 * extent.width, 3 * extent.height))
    return np.ascontiguousarray(
        tiled[extent.height : 2 * extent.height, extent.width : 2 * extent.width]
    )
