"""The AUTOMATIC1111 routes, driven as A1111 clients call them: JSON bodies, base64 PNGs, Basic
auth, a blocking generate call while another thread polls /progress and may /interrupt."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import numpy as np
import pytest

from inlayer.server.a1111 import SAMPLERS
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING
from tests.fixtures.server import ServerProcess
from tests.server.helpers import (
    decode_png,
    exchange,
    inpaint_request,
    pattern_image,
    png_base64,
    post_json,
)


def init_pixels(width: int = 64, height: int = 64) -> np.ndarray:
    image = pattern_image(width, height, seed=3)
    return np.frombuffer(image.data, np.uint8).reshape(height, width, 4)[..., :3].copy()


def box_mask_png(width: int, height: int, box: tuple[int, int, int, int]) -> str:
    x, y, box_width, box_height = box
    mask = np.zeros((height, width), np.uint8)
    mask[y : y + box_height, x : x + box_width] = 255
    return png_base64(mask)


def test_sd_models_and_options(inlayer_server: ServerProcess) -> None:
    models = exchange(inlayer_server, "GET", "/sdapi/v1/sd-models", auth="basic").json()
    titles = {m["title"] for m in models}
    assert {TINY_SD15, TINY_SD15_INPAINTING} <= titles
    options = exchange(inlayer_server, "GET", "/sdapi/v1/options", auth="basic").json()
    assert options["sd_model_checkpoint"] in titles
    # A1111 titles carry a hash in brackets; the name before it counts.
    assert (
        post_json(
            inlayer_server, "/sdapi/v1/options", {"sd_model_checkpoint": f"{TINY_SD15} [abc123]"}
        ).status
        == 200
    )
    options = exchange(inlayer_server, "GET", "/sdapi/v1/options", auth="basic").json()
    assert options["sd_model_checkpoint"] == TINY_SD15
    # "" goes back to Inlayer's default per mode.
    assert post_json(inlayer_server, "/sdapi/v1/options", {"sd_model_checkpoint": ""}).status == 200
    samplers = exchange(inlayer_server, "GET", "/sdapi/v1/samplers", auth="basic").json()
    assert "Euler a" in {s["name"] for s in samplers}


def test_txt2img(inlayer_server: ServerProcess) -> None:
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/txt2img",
        {
            "prompt": "a lighthouse",
            "negative_prompt": "blurry",
            "seed": 42,
            "steps": 2,
            "cfg_scale": 6.5,
            "sampler_name": "DPM++ 2M",
            "scheduler": "Karras",
            "batch_size": 2,
            "n_iter": 1,
            "width": 64,
            "height": 48,
            "restore_faces": False,  # features switched off are fine
            "alwayson_scripts": {},
            "override_settings": {"sd_model_checkpoint": TINY_SD15},
        },
    )
    assert answer.status == 200, answer.body[:300]
    data = answer.json()
    assert len(data["images"]) == 2
    for image in data["images"]:
        assert decode_png(image).shape[:2] == (48, 64)
    assert data["images"][0] != data["images"][1]
    info = json.loads(data["info"])
    assert info["all_seeds"] == [42, 43]
    assert info["sd_model_name"] == TINY_SD15
    assert "Seed: 42" in info["infotexts"][0]
    assert data["parameters"]["prompt"] == "a lighthouse"


def test_bearer_token_works_too(inlayer_server: ServerProcess) -> None:
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/txt2img",
        {"steps": 1, "width": 32, "height": 32},
        auth="bearer",
    )
    assert answer.status == 200
    assert post_json(inlayer_server, "/sdapi/v1/txt2img", {}, auth=None).status == 401


def test_img2img_inpaint_returns_the_full_image_with_the_rest_untouched(
    inlayer_server: ServerProcess,
) -> None:
    init = init_pixels()
    box = (16, 16, 24, 20)
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/img2img",
        {
            "init_images": ["data:image/png;base64," + png_base64(init)],
            "mask": box_mask_png(64, 64, box),
            "mask_blur": 0,
            "inpainting_fill": 1,
            "inpaint_full_res": True,
            "inpaint_full_res_padding": 32,
            "denoising_strength": 0.75,
            "prompt": "a cat",
            "steps": 4,
            "seed": 5,
            "width": 64,
            "height": 64,
        },
    )
    assert answer.status == 200, answer.body[:300]
    (image,) = answer.json()["images"]
    out = decode_png(image)
    assert out.shape == (64, 64, 3)
    x, y, width, height = box
    inside = np.zeros((64, 64), bool)
    inside[y : y + height, x : x + width] = True
    assert np.array_equal(out[~inside], init[~inside])
    assert not np.array_equal(out[inside], init[inside])


def test_img2img_mask_invert_repaints_the_outside(inlayer_server: ServerProcess) -> None:
    init = init_pixels()
    box = (8, 8, 48, 48)
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/img2img",
        {
            "init_images": [png_base64(init)],
            "mask": box_mask_png(64, 64, box),
            "inpainting_mask_invert": 1,
            "mask_blur": 0,
            "inpainting_fill": 0,
            "steps": 2,
            "width": 64,
            "height": 64,
        },
    )
    assert answer.status == 200, answer.body[:300]
    out = decode_png(answer.json()["images"][0])
    x, y, width, height = box
    # The box itself (the unmasked part once inverted) stays, shrunk by a pixel of blending.
    assert np.array_equal(
        out[y + 1 : y + height - 1, x + 1 : x + width - 1],
        init[y + 1 : y + height - 1, x + 1 : x + width - 1],
    )
    assert not np.array_equal(out[:y], init[:y])


def test_img2img_without_mask_resizes_to_width_and_height(inlayer_server: ServerProcess) -> None:
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/img2img",
        {
            "init_images": [png_base64(init_pixels(64, 64))],
            "denoising_strength": 0.5,
            "steps": 4,
            "width": 96,
            "height": 64,
            "sampler_name": "Euler a",
        },
    )
    assert answer.status == 200, answer.body[:300]
    assert decode_png(answer.json()["images"][0]).shape[:2] == (64, 96)


def test_progress_then_interrupt_while_a_call_blocks(inlayer_server: ServerProcess) -> None:
    answers: list = []
    call = threading.Thread(
        target=lambda: answers.append(
            post_json(
                inlayer_server,
                "/sdapi/v1/txt2img",
                {"steps": 150, "batch_size": 16, "width": 128, "height": 128},
            )
        )
    )
    call.start()
    progress: dict = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = exchange(inlayer_server, "GET", "/sdapi/v1/progress", auth="basic").json()
        if progress["state"]["sampling_step"] > 0 and progress["current_image"]:
            break
        time.sleep(0.02)
    assert 0 < progress["progress"] < 1
    assert progress["eta_relative"] > 0
    assert progress["state"]["sampling_steps"] > progress["state"]["sampling_step"]
    preview = decode_png(progress["current_image"])
    assert max(preview.shape[:2]) <= 256
    skipped = exchange(
        inlayer_server, "GET", "/sdapi/v1/progress?skip_current_image=true", auth="basic"
    ).json()
    assert skipped["current_image"] is None
    assert exchange(inlayer_server, "POST", "/sdapi/v1/interrupt", auth="basic").status == 200
    call.join(60)
    (answer,) = answers
    assert answer.status == 200
    assert answer.json()["images"] == []
    assert json.loads(answer.json()["info"])["interrupted"] is True
    idle = exchange(inlayer_server, "GET", "/sdapi/v1/progress", auth="basic").json()
    assert idle["progress"] == 0


@pytest.mark.parametrize("fill", [0, 1, 2, 3])
def test_every_inpainting_fill_runs(inlayer_server: ServerProcess, fill: int) -> None:
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/img2img",
        {
            "init_images": [png_base64(init_pixels())],
            "mask": box_mask_png(64, 64, (20, 20, 10, 10)),
            "inpainting_fill": fill,
            "steps": 2,
            "width": 64,
            "height": 64,
            "override_settings": {"sd_model_checkpoint": TINY_SD15},
        },
    )
    assert answer.status == 200, answer.body[:300]


def test_a_client_hanging_up_mid_call_cancels_its_job_only(inlayer_server: ServerProcess) -> None:
    body = json.dumps({"steps": 150, "batch_size": 16, "width": 128, "height": 128}).encode()
    with socket.create_connection(("127.0.0.1", inlayer_server.port)) as raw:
        raw.sendall(
            f"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: 127.0.0.1:{inlayer_server.port}\r\n"
            f"Authorization: Bearer {inlayer_server.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        deadline = time.monotonic() + 60
        while inlayer_server.client().health().queue_length == 0:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.02)
    # The caller is gone: nobody will receive the images, so the job stops.
    client = inlayer_server.client()
    while client.health().queue_length:
        assert time.monotonic() < deadline, "the orphaned job kept running"
        time.sleep(0.05)
    assert client.run(inpaint_request()).images


# What webuiapi's `WebUIApi.txt2img()` sends with its defaults (webuiapi 0.9), at a small size.
WEBUIAPI_TXT2IMG = {
    "enable_hr": False,
    "denoising_strength": 0.7,
    "firstphase_width": 0,
    "firstphase_height": 0,
    "hr_scale": 2,
    "hr_upscaler": "Latent",
    "hr_second_pass_steps": 0,
    "hr_resize_x": 0,
    "hr_resize_y": 0,
    "hr_checkpoint_name": None,
    "hr_sampler_name": None,
    "hr_prompt": "",
    "hr_negative_prompt": "",
    "prompt": "a red barn",
    "styles": [],
    "seed": 7,
    "subseed": -1,
    "subseed_strength": 0.0,
    "seed_resize_from_h": 0,
    "seed_resize_from_w": 0,
    "sampler_name": "Euler a",
    "batch_size": 1,
    "n_iter": 2,
    "steps": 2,
    "cfg_scale": 7.0,
    "width": 48,
    "height": 32,
    "restore_faces": False,
    "tiling": False,
    "do_not_save_samples": False,
    "do_not_save_grid": False,
    "negative_prompt": "",
    "eta": 1.0,
    "s_churn": 0,
    "s_tmax": 0,
    "s_tmin": 0,
    "s_noise": 1,
    "override_settings": {},
    "override_settings_restore_afterwards": True,
    "script_args": [],
    "script_name": None,
    "send_images": True,
    "save_images": False,
    "alwayson_scripts": {},
    "sampler_index": None,
}
# A ControlNet unit as the sd-webui-controlnet extension's clients send it.
CONTROLNET_UNIT = {
    "controlnet": {
        "args": [
            {
                "input_image": "iVBORw0KGgo=",
                "module": "canny",
                "model": "control_v11p_sd15_canny [d14c016b]",
                "weight": 1.0,
            }
        ]
    }
}


def test_webuiapi_txt2img_defaults_get_what_they_ask_for(inlayer_server: ServerProcess) -> None:
    answer = post_json(inlayer_server, "/sdapi/v1/txt2img", WEBUIAPI_TXT2IMG)
    assert answer.status == 200, answer.body[:300]
    images = answer.json()["images"]
    assert len(images) == 2
    assert decode_png(images[0]).shape[:2] == (32, 48)


def test_webuiapi_img2img_defaults_get_what_they_ask_for(inlayer_server: ServerProcess) -> None:
    hires = ("enable_hr", "denoising_strength", "firstphase_width", "firstphase_height")
    shared = {
        k: v for k, v in WEBUIAPI_TXT2IMG.items() if not k.startswith("hr_") and k not in hires
    }
    body = shared | {
        "init_images": [png_base64(init_pixels())],
        "resize_mode": 0,
        "denoising_strength": 0.75,
        "image_cfg_scale": 1.5,
        "mask": None,
        "mask_blur": 4,
        "inpainting_fill": 0,
        "inpaint_full_res": True,
        "inpaint_full_res_padding": 0,
        "inpainting_mask_invert": 0,
        "initial_noise_multiplier": 1.0,
        "include_init_images": False,
        "width": 64,
        "height": 64,
        "n_iter": 1,
    }
    answer = post_json(inlayer_server, "/sdapi/v1/img2img", body)
    assert answer.status == 200, answer.body[:300]
    assert decode_png(answer.json()["images"][0]).shape[:2] == (64, 64)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"enable_hr": True, "hr_prompt": "sharper"}, "hr_prompt"),
        ({"enable_hr": True, "hr_scale": 9}, "hr_scale"),
        ({"restore_faces": True}, "restore_faces"),
        ({"script_name": "sd upscale", "script_args": ["", 64, "Lanczos", 2]}, "script_name"),
        # A ControlNet this server lacks (tests/server/test_a1111_controlnet.py runs them).
        ({"alwayson_scripts": CONTROLNET_UNIT}, "alwayson_scripts.controlnet.args[0].model"),
        ({"subseed_strength": 0.3}, "subseed_strength"),
        ({"styles": ["cinematic"]}, "styles"),
        ({"bogus_option": 1}, "bogus_option"),
        ({"sampler_name": "DPM fast"}, "sampler_name"),
        ({"override_settings": {"CLIP_stop_at_last_layers": 0}}, "override_settings"),
        ({"override_settings": {"eta_noise_seed_delta": -1}}, "override_settings"),
    ],
)
def test_what_inlayer_would_drop_is_a_422_naming_the_field(
    inlayer_server: ServerProcess, fields: dict, named: str
) -> None:
    answer = post_json(inlayer_server, "/sdapi/v1/txt2img", {**WEBUIAPI_TXT2IMG, **fields})
    assert answer.status == 422, answer.body[:300]
    assert answer.json()["field"].startswith(named)


def test_a_script_inlayer_lacks_is_named_as_a1111_does(inlayer_server: ServerProcess) -> None:
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/img2img",
        {
            "init_images": [png_base64(init_pixels())],
            "alwayson_scripts": {"ADetailer": {"args": [True]}},
        },
    )
    assert answer.status == 422
    assert "always on script ADetailer not found" in answer.json()["detail"]
    fast = post_json(inlayer_server, "/sdapi/v1/txt2img", {"sampler_name": "DPM fast"})
    assert "'DPM2'" in fast.json()["detail"]  # the nearest sampler Inlayer has


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_listed_sampler_runs(inlayer_server: ServerProcess, sampler: str) -> None:
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/txt2img",
        {"sampler_name": sampler, "steps": 3, "width": 32, "height": 32, "seed": 1},
    )
    assert answer.status == 200, answer.body[:300]
    assert len(answer.json()["images"]) == 1


def test_samplers_and_schedulers_list_what_works(inlayer_server: ServerProcess) -> None:
    samplers = exchange(inlayer_server, "GET", "/sdapi/v1/samplers", auth="basic").json()
    names = {s["name"] for s in samplers}
    # Blender's AI-Render offers these (and defaults to LMS).
    assert {"Euler", "Euler a", "Heun", "DPM2", "DPM2 a", "LMS", "DDIM", "PLMS"} <= names
    assert {"DPM++ 2S a Karras", "DPM++ 2M Karras"} <= names
    assert not {"DPM fast", "DPM adaptive"} & names
    schedulers = exchange(inlayer_server, "GET", "/sdapi/v1/schedulers", auth="basic").json()
    labels = {s["label"] for s in schedulers}
    assert {"Automatic", "Karras"} <= labels
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/txt2img",
        {"sampler_name": "DPM2", "scheduler": "Karras", "steps": 2, "width": 32, "height": 32},
    )
    assert answer.status == 200, answer.body[:300]


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("hypernetworks", []),
        ("face-restorers", []),
        ("realesrgan-models", []),
        ("prompt-styles", []),
        ("sd-vae", []),
        ("sd-modules", []),
        ("embeddings", {"loaded": {}, "skipped": {}}),
        ("scripts", {"txt2img": [], "img2img": []}),
    ],
)
def test_start_up_lists_say_what_is_installed(
    inlayer_server: ServerProcess, route: str, expected: object
) -> None:
    answer = exchange(inlayer_server, "GET", f"/sdapi/v1/{route}", auth="basic")
    assert answer.status == 200
    assert answer.json() == expected


def test_start_up_routes_answer_in_a1111_shapes(inlayer_server: ServerProcess) -> None:
    upscalers = exchange(inlayer_server, "GET", "/sdapi/v1/upscalers", auth="basic").json()
    assert [u["name"] for u in upscalers] == ["None", "Lanczos", "Nearest"]
    flags = exchange(inlayer_server, "GET", "/sdapi/v1/cmd-flags", auth="basic").json()
    assert flags["api"] is True
    memory = exchange(inlayer_server, "GET", "/sdapi/v1/memory", auth="basic").json()
    assert memory["ram"]["total"] > memory["ram"]["free"] > 0
    refresh = exchange(inlayer_server, "POST", "/sdapi/v1/refresh-checkpoints", auth="basic")
    assert refresh.status == 200


def test_options_are_stored_and_read_back(inlayer_server: ServerProcess) -> None:
    written = {"send_seed": False, "sd_vae": "None", "samples_format": "jpg", "my_setting": [1]}
    assert post_json(inlayer_server, "/sdapi/v1/options", written).status == 200
    try:
        options = exchange(inlayer_server, "GET", "/sdapi/v1/options", auth="basic").json()
        assert {name: options[name] for name in written} == written
        # samples_format is honoured: the images come as JPEG.
        answer = post_json(
            inlayer_server, "/sdapi/v1/txt2img", {"steps": 1, "width": 32, "height": 32}
        )
        assert base64.b64decode(answer.json()["images"][0])[:3] == b"\xff\xd8\xff"
    finally:
        post_json(inlayer_server, "/sdapi/v1/options", {"samples_format": "png"})
    refused = post_json(inlayer_server, "/sdapi/v1/options", {"CLIP_stop_at_last_layers": 0})
    assert refused.status == 422
    assert refused.json()["field"] == "CLIP_stop_at_last_layers"
    options = exchange(inlayer_server, "GET", "/sdapi/v1/options", auth="basic").json()
    assert options["CLIP_stop_at_last_layers"] == 1


def test_clip_skip_and_eta_noise_seed_delta_act_as_option_and_override(
    inlayer_server: ServerProcess,
) -> None:
    body = {"steps": 3, "width": 32, "height": 32, "seed": 11, "sampler_name": "Euler a"}

    def generate(**override: object) -> tuple[np.ndarray, str]:
        answer = post_json(
            inlayer_server, "/sdapi/v1/txt2img", {**body, "override_settings": override}
        )
        assert answer.status == 200, answer.body[:300]
        infotext = json.loads(answer.json()["info"])["infotexts"][0]
        return decode_png(answer.json()["images"][0]), infotext

    plain, plain_info = generate()
    assert "Clip skip" not in plain_info and "ENSD" not in plain_info
    skipped, info = generate(CLIP_stop_at_last_layers=2)
    assert "Clip skip: 2" in info and not np.array_equal(skipped, plain)
    offset, info = generate(eta_noise_seed_delta=31337)
    assert "ENSD: 31337" in info and not np.array_equal(offset, plain)
    # Stored as options, they act on every call and read back.
    written = {"CLIP_stop_at_last_layers": 2, "eta_noise_seed_delta": 31337}
    assert post_json(inlayer_server, "/sdapi/v1/options", written).status == 200
    try:
        options = exchange(inlayer_server, "GET", "/sdapi/v1/options", auth="basic").json()
        assert {name: options[name] for name in written} == written
        both, info = generate()
        assert "Clip skip: 2, ENSD: 31337" in info
        assert np.array_equal(generate(CLIP_stop_at_last_layers=1)[0], offset)
        assert not np.array_equal(both, plain)
    finally:
        reset = {"CLIP_stop_at_last_layers": 1, "eta_noise_seed_delta": 0}
        post_json(inlayer_server, "/sdapi/v1/options", reset)
    # Past the tiny text encoder's 2 layers: a 422 naming the option, not a 500.
    deep = post_json(
        inlayer_server,
        "/sdapi/v1/txt2img",
        {**body, "override_settings": {"CLIP_stop_at_last_layers": 3}},
    )
    assert deep.status == 422
    assert deep.json()["field"] == "CLIP_stop_at_last_layers"


def test_extras_upscale_with_lanczos(inlayer_server: ServerProcess) -> None:
    single = post_json(
        inlayer_server,
        "/sdapi/v1/extra-single-image",
        {"image": png_base64(init_pixels(32, 24)), "upscaling_resize": 2, "upscaler_1": "Lanczos"},
    )
    assert single.status == 200, single.body[:300]
    assert decode_png(single.json()["image"]).shape[:2] == (48, 64)
    batch = post_json(
        inlayer_server,
        "/sdapi/v1/extra-batch-images",
        {
            "imageList": [{"data": png_base64(init_pixels(32, 32)), "name": "a.png"}] * 2,
            "resize_mode": 1,
            "upscaling_resize_w": 80,
            "upscaling_resize_h": 40,
            "upscaler_1": "Nearest",
        },
    )
    assert batch.status == 200, batch.body[:300]
    assert [decode_png(i).shape[:2] for i in batch.json()["images"]] == [(40, 80)] * 2
    for fields, named in (
        ({"upscaler_1": "R-ESRGAN 4x+"}, "upscaler_1"),
        ({"gfpgan_visibility": 1.0}, "gfpgan_visibility"),
    ):
        body = {"image": png_base64(init_pixels(32, 32)), **fields}
        answer = post_json(inlayer_server, "/sdapi/v1/extra-single-image", body)
        assert answer.status == 422
        assert answer.json()["field"] == named


def test_png_info_reads_the_parameters_inlayer_writes(inlayer_server: ServerProcess) -> None:
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/txt2img",
        {
            "prompt": "a tower",
            "negative_prompt": "fog",
            "steps": 2,
            "seed": 9,
            "width": 32,
            "height": 32,
        },
    )
    image = answer.json()["images"][0]
    info = post_json(inlayer_server, "/sdapi/v1/png-info", {"image": image}).json()
    assert info["parameters"]["Prompt"] == "a tower"
    assert info["parameters"]["Negative prompt"] == "fog"
    assert info["parameters"]["Seed"] == "9"
    assert info["parameters"]["Steps"] == "2"


def test_an_inpainting_checkpoint_serves_txt2img_and_img2img(inlayer_server: ServerProcess) -> None:
    inpainting = {"override_settings": {"sd_model_checkpoint": TINY_SD15_INPAINTING}}
    made = post_json(
        inlayer_server,
        "/sdapi/v1/txt2img",
        {"steps": 2, "width": 48, "height": 32, **inpainting},
    )
    assert made.status == 200, made.body[:300]
    assert decode_png(made.json()["images"][0]).shape[:2] == (32, 48)
    changed = post_json(
        inlayer_server,
        "/sdapi/v1/img2img",
        {"init_images": [png_base64(init_pixels())], "steps": 4, "width": 64, "height": 64}
        | inpainting,
    )
    assert changed.status == 200, changed.body[:300]
    assert json.loads(changed.json()["info"])["sd_model_name"] == TINY_SD15_INPAINTING
