"""AUTOMATIC1111's ControlNet extension API on a real server: webuiapi's ControlNetUnit as it
sends it, the /controlnet routes, and every unit field acting, a no-op, or a 422 naming it."""

from __future__ import annotations

import numpy as np
import pytest
import webuiapi
from PIL import Image

from tests.fixtures.guided_models import TINY_CONTROLNET, TINY_CONTROLNET_SDXL
from tests.fixtures.models import TINY_SD15
from tests.fixtures.server import ServerProcess
from tests.server.helpers import decode_png, exchange, png_base64, post_json

SIZE = 64


@pytest.fixture
def api(guided_server: ServerProcess) -> webuiapi.WebUIApi:
    client = webuiapi.WebUIApi(host="127.0.0.1", port=guided_server.port)
    client.set_auth("user", guided_server.token)
    return client


def sketch(size: int = SIZE) -> Image.Image:
    pixels = np.full((size, size, 3), 255, dtype=np.uint8)
    pixels[size // 8 : -size // 8, size // 2 - 1 : size // 2 + 1] = 0
    pixels[size // 2 - 1 : size // 2 + 1, size // 8 : -size // 8] = 0
    return Image.fromarray(pixels)


def generate(api: webuiapi.WebUIApi, units: list[webuiapi.ControlNetUnit]) -> np.ndarray:
    result = api.txt2img(
        prompt="a portrait",
        seed=7,
        steps=2,
        width=SIZE,
        height=SIZE,
        sampler_name="Euler",
        override_settings={"sd_model_checkpoint": TINY_SD15},
        controlnet_units=units,
    )
    return np.asarray(result.image)


def test_the_extension_routes_answer_as_the_extension_does(api):
    assert api.get_scripts() == {"txt2img": ["controlnet"], "img2img": ["controlnet"]}
    assert api.controlnet_version() == 2
    models = api.controlnet_model_list()
    assert TINY_CONTROLNET in models and TINY_CONTROLNET_SDXL in models
    modules = api.controlnet_module_list()
    assert {"none", "canny", "scribble_pidinet", "lineart_realistic", "depth_midas"} <= set(modules)


def test_webuiapi_controlnet_units_guide_txt2img(api):
    plain = generate(api, [])
    unit = webuiapi.ControlNetUnit(
        image=sketch(), module="scribble_pidinet", model=f"{TINY_CONTROLNET} [0123abcd]"
    )
    guided = generate(api, [unit])
    assert guided.shape == plain.shape == (SIZE, SIZE, 3)
    assert not np.array_equal(guided, plain)
    zero = webuiapi.ControlNetUnit(
        image=sketch(), module="scribble_pidinet", model=TINY_CONTROLNET, weight=0
    )
    assert np.array_equal(generate(api, [zero]), plain)
    disabled = webuiapi.ControlNetUnit(image=sketch(), model=TINY_CONTROLNET, enabled=False)
    assert np.array_equal(generate(api, [disabled]), plain)


def test_a_unit_without_an_image_guides_img2img_with_the_init_image(api):
    init = sketch()
    unit = webuiapi.ControlNetUnit(module="canny", model=TINY_CONTROLNET, guidance_end=0.5)
    result = api.img2img(
        images=[init],
        prompt="a portrait",
        seed=3,
        steps=2,
        width=SIZE,
        height=SIZE,
        denoising_strength=0.8,
        controlnet_units=[unit],
    )
    assert np.asarray(result.image).shape[:2] == (SIZE, SIZE)


@pytest.mark.parametrize("resize_mode", ["Just Resize", "Crop and Resize", "Resize and Fill"])
def test_a_control_image_of_another_size_is_resized_as_the_unit_says(api, resize_mode):
    unit = webuiapi.ControlNetUnit(
        image=sketch(SIZE * 2).crop((0, 0, SIZE * 2, SIZE)),
        module="lineart",
        model=TINY_CONTROLNET,
        resize_mode=resize_mode,
    )
    assert generate(api, [unit]).shape == (SIZE, SIZE, 3)


def body_with(**unit_fields: object) -> dict:
    unit = {"image": png_base64(np.asarray(sketch())), "model": TINY_CONTROLNET} | unit_fields
    return {
        "prompt": "a portrait",
        "steps": 2,
        "width": SIZE,
        "height": SIZE,
        "override_settings": {"sd_model_checkpoint": TINY_SD15},
        "alwayson_scripts": {"controlnet": {"args": [unit]}},
    }


UNIT = "alwayson_scripts.controlnet.args[0]."


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"control_mode": "ControlNet is more important"}, "control_mode"),
        ({"control_mode": 1}, "control_mode"),
        ({"module": "openpose_full"}, "module"),
        ({"model": "control_v11p_sd15_openpose [cab727d4]"}, "model"),
        ({"mask": png_base64(np.zeros((SIZE, SIZE), np.uint8))}, "mask"),
        ({"weight": 3.0}, "weight"),
        ({"guidance_start": 0.8, "guidance_end": 0.2}, "guidance_start"),
        ({"resize_mode": "Stretch"}, None),  # same size: nothing to resize
        ({"bogus": 1}, "bogus"),
        ({"image": "", "input_image": ""}, "image"),  # txt2img has no init image to fall back on
        ({"image": png_base64(np.full((SIZE, SIZE, 3), 255, np.uint8))}, "image"),  # empty
        ({"model": TINY_CONTROLNET_SDXL}, "model"),  # another family (a failed job)
    ],
)
def test_unit_fields_act_or_are_a_422_naming_the_unit_field(guided_server, fields, named):
    answer = post_json(guided_server, "/sdapi/v1/txt2img", body_with(**fields))
    if named is None:
        assert answer.status == 200, answer.body[:300]
        return
    assert answer.status == 422, answer.body[:300]
    assert answer.json()["field"] == UNIT + named
    assert exchange(guided_server, "GET", "/controlnet/version", auth="basic").status == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"pixel_perfect": True, "processor_res": 768, "threshold_a": 50, "threshold_b": 120},
        {"control_mode": "Balanced", "guessmode": 0, "low_vram": True, "hr_option": "Both"},
        {"lowvram": False, "guidance": 1.0, "mask": None, "save_detected_map": True},
    ],
)
def test_no_op_unit_fields_change_nothing(guided_server, fields):
    plain = post_json(guided_server, "/sdapi/v1/txt2img", body_with() | {"seed": 2})
    other = post_json(guided_server, "/sdapi/v1/txt2img", body_with(**fields) | {"seed": 2})
    assert plain.status == other.status == 200, other.body[:300]
    assert np.array_equal(
        decode_png(plain.json()["images"][0]), decode_png(other.json()["images"][0])
    )


def test_the_routes_need_the_token(guided_server):
    assert exchange(guided_server, "GET", "/controlnet/model_list", auth=None).status == 401
