"""The AUTOMATIC1111 routes of resolution and canvas, as clients call them: hires fix on
txt2img, tiling, the upscalers list and extras with an installed upscaler model (a tiny ESRGAN
built from spandrel's architecture class), against a real server with its own models folder."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.fixtures.models import TINY_SD15
from tests.fixtures.server import ServerProcess, running_server
from tests.server.helpers import decode_png, exchange, post_json

TINY_ESRGAN = "tiny-esrgan-x2"


@pytest.fixture(scope="module")
def canvas_server(
    tiny_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    models = tmp_path_factory.mktemp("canvas-models")
    (models / TINY_SD15).symlink_to(tiny_models_dir / TINY_SD15)
    (models / "upscale_models").mkdir()
    torch.manual_seed(0)
    model = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(models / "upscale_models" / f"{TINY_ESRGAN}.safetensors"))
    with running_server(tmp_path_factory.mktemp("canvas-config"), models) as server:
        yield server


def png_base64(width: int, height: int) -> str:
    pixels = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


TXT2IMG = {
    "prompt": "a harbour",
    "seed": 5,
    "steps": 2,
    "width": 64,
    "height": 48,
    "override_settings": {"sd_model_checkpoint": TINY_SD15},
}


def test_upscalers_lists_lanczos_and_the_installed_models(canvas_server: ServerProcess) -> None:
    answer = exchange(canvas_server, "GET", "/sdapi/v1/upscalers")
    assert answer.status == 200
    listed = {entry["name"]: entry for entry in answer.json()}
    assert "Lanczos" in listed and TINY_ESRGAN in listed
    assert listed[TINY_ESRGAN]["model_path"].endswith(f"{TINY_ESRGAN}.safetensors")


@pytest.mark.parametrize("resize", [2, 3])
def test_extras_upscale_with_an_installed_model(canvas_server: ServerProcess, resize) -> None:
    body = {"image": png_base64(40, 30), "upscaling_resize": resize, "upscaler_1": TINY_ESRGAN}
    answer = post_json(canvas_server, "/sdapi/v1/extra-single-image", body)
    assert answer.status == 200, answer.body[:300]
    by_model = decode_png(answer.json()["image"])
    assert by_model.shape[:2] == (30 * resize, 40 * resize)
    lanczos = post_json(
        canvas_server, "/sdapi/v1/extra-single-image", body | {"upscaler_1": "Lanczos"}
    )
    assert not np.array_equal(decode_png(lanczos.json()["image"]), by_model)


def test_extras_with_an_unknown_upscaler_names_it(canvas_server: ServerProcess) -> None:
    body = {"image": png_base64(8, 8), "upscaler_1": "4x-Nowhere"}
    answer = post_json(canvas_server, "/sdapi/v1/extra-single-image", body)
    assert answer.status == 422 and "upscaler_1" in answer.body.decode()
    assert TINY_ESRGAN in answer.body.decode()  # it says what there is


@pytest.mark.parametrize("hr_upscaler", ["Latent", TINY_ESRGAN])
def test_hires_fix_generates_upscales_and_refines(canvas_server: ServerProcess, hr_upscaler):
    hires = TXT2IMG | {
        "enable_hr": True, "hr_scale": 2, "hr_upscaler": hr_upscaler, "denoising_strength": 0.5,
        "hr_second_pass_steps": 0, "hr_prompt": "",
    }  # fmt: skip
    answer = post_json(canvas_server, "/sdapi/v1/txt2img", hires)
    assert answer.status == 200, answer.body[:300]
    image = decode_png(answer.json()["images"][0])
    assert image.shape[:2] == (96, 128)
    plain = post_json(canvas_server, "/sdapi/v1/txt2img", TXT2IMG | {"width": 128, "height": 96})
    assert not np.array_equal(decode_png(plain.json()["images"][0]), image)


def test_hires_fix_refuses_what_it_would_drop(canvas_server: ServerProcess) -> None:
    body = TXT2IMG | {"enable_hr": True, "hr_prompt": "a sharper harbour"}
    answer = post_json(canvas_server, "/sdapi/v1/txt2img", body)
    assert answer.status == 422 and "hr_prompt" in answer.body.decode()


def test_tiling_txt2img_and_refused_with_a_mask(canvas_server: ServerProcess) -> None:
    answer = post_json(canvas_server, "/sdapi/v1/txt2img", TXT2IMG | {"tiling": True})
    assert answer.status == 200, answer.body[:300]
    assert json.loads(answer.json()["info"])["all_seeds"] == [5]
    masked = {
        **TXT2IMG,
        "tiling": True,
        "init_images": [png_base64(64, 48)],
        "mask": png_base64(64, 48),
    }
    refused = post_json(canvas_server, "/sdapi/v1/img2img", masked)
    assert refused.status == 422 and "tiling" in refused.body.decode()
