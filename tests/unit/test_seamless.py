"""Seamless tiling: circular padding makes the real (tiny) pipeline paint on a torus, it is put
back after the run, and requests that edit a part of a picture are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inlayer.core.client.protocol import (
    EditRequest,
    InvalidRequest,
    Mask,
    Mode,
    Progress,
    RGBAImage,
)
from inlayer.core.engine import Engine, image_array
from inlayer.core.models import ModelRegistry
from inlayer.core.seamless import circular_padding
from tests.fixtures.models import TINY_SD15


@pytest.fixture(scope="module")
def engine(tiny_models_dir) -> Engine:
    # float32: the test feeds the pipeline float32 latents and compares to 1e-4, which a CPU
    # with bf16 in hardware (where the registry would choose bf16) does not keep.
    return Engine(ModelRegistry([tiny_models_dir], dtype="float32"))


def padding_modes(pipe) -> set[str]:
    return {
        layer.padding_mode
        for component in (pipe.unet, pipe.vae)
        for layer in component.modules()
        if isinstance(layer, torch.nn.Conv2d)
    }


def test_with_circular_padding_the_pipeline_paints_on_a_torus(engine):
    """Shifting the starting noise around the edges shifts the picture the same way, wrapping:
    what leaves on the right comes back on the left. Without it, the edges differ."""
    pipe, model = engine.registry.pipeline(TINY_SD15, Mode.TXT2IMG)
    factor = model.vae_scale_factor
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(5))
    shift = (4, 6)  # latent px, a multiple of the UNet's downsampling

    def paint(start: torch.Tensor) -> np.ndarray:
        output = pipe(
            prompt="bricks", latents=start, height=16 * factor, width=16 * factor,
            num_inference_steps=2, guidance_scale=1.0, output_type="np",
        )  # fmt: skip
        return output.images[0]

    def wraps() -> bool:
        first = paint(latents)
        shifted = paint(torch.roll(latents, shifts=shift, dims=(2, 3)))
        moved = np.roll(first, (shift[0] * factor, shift[1] * factor), axis=(0, 1))
        return bool(np.allclose(moved, shifted, atol=1e-4))

    with circular_padding(pipe):
        assert padding_modes(pipe) == {"circular"}
        assert wraps()
    assert padding_modes(pipe) == {"zeros"}  # as it was
    assert not wraps()


def test_a_tiling_run_wraps_and_leaves_the_cached_pipeline_as_it_was(engine):
    request = EditRequest(
        Mode.TXT2IMG, prompt="moss", width=96, height=64, steps=3, seed=8, tiling=True,
        model=TINY_SD15,
    )  # fmt: skip
    reports: list[Progress] = []
    tiled = image_array(engine.run(request, on_progress=reports.append).images[0].image)
    plain_request = EditRequest(**{**vars(request), "tiling": False, "refine": "off"})
    plain_reports: list[Progress] = []
    plain = engine.run(plain_request, on_progress=plain_reports.append).images[0].image
    # No refine for tiling (its tiles would not wrap): as many steps as a run without one.
    assert reports[-1].total == plain_reports[-1].total
    assert not np.array_equal(tiled, image_array(plain))
    pipe, _ = engine.registry.pipeline(TINY_SD15, Mode.TXT2IMG)
    assert padding_modes(pipe) == {"zeros"}

    rgb = tiled[..., :3].astype(np.int16)
    interior = np.abs(np.diff(rgb, axis=1)).mean()
    seam = np.abs(rgb[:, 0] - rgb[:, -1]).mean()
    assert seam < 1.5 * interior  # the right edge continues into the left one
    assert parameters_say_tiling(engine, request)


def parameters_say_tiling(engine: Engine, request: EditRequest) -> bool:
    return engine.run(request).parameters["tiling"] is True


@pytest.mark.parametrize(
    ("mode", "with_mask", "words"),
    [
        (Mode.INPAINT, True, "inpaint repaints a part"),
        (Mode.IMG2IMG, True, "a selection repaints a part"),
        (Mode.FILL, True, "fill repaints a part"),
    ],
)
def test_tiling_of_a_part_of_a_picture_is_refused(mode, with_mask, words):
    mask = Mask(8, 8, b"\xff" * 64) if with_mask else None
    request = EditRequest(mode, image=RGBAImage(8, 8, bytes(256)), mask=mask, tiling=True)
    with pytest.raises(InvalidRequest) as caught:
        request.validate()
    assert caught.value.field == "tiling" and words in str(caught.value)
    assert "edges are not the picture's edges" in str(caught.value)
