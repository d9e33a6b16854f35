"""LoRAs and tiny autoencoders over HTTP: listed by /v1/add-ons and A1111's /loras, named in
requests (never as paths), and written as <lora:NAME:SCALE> in A1111 prompts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from inlayer.core.client.protocol import AddOnKind, InvalidRequest, LoraChoice, Preset
from tests.fixtures.models import TINY_LORA, TINY_SD15, TINY_SPEED_LORA, TINY_TAESD
from tests.fixtures.server import ServerProcess, running_server
from tests.server.helpers import exchange, inpaint_request, post_json


@pytest.fixture(scope="module")
def server(
    tiny_models_dir: Path, tiny_add_ons_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running_server(
        tmp_path_factory.mktemp("add-ons-config"),
        tiny_models_dir,
        "--models-dir",
        str(tiny_add_ons_dir),
    ) as running:
        yield running


def test_add_ons_are_listed_with_kind_family_and_speed(server):
    listed = {a.name: a for a in server.client().add_ons()}
    assert listed[TINY_SPEED_LORA].kind == AddOnKind.LORA and listed[TINY_SPEED_LORA].speed == "lcm"
    assert listed[TINY_TAESD].kind == AddOnKind.VAE and listed[TINY_TAESD].family == "sd15"
    loras = exchange(server, "GET", "/sdapi/v1/loras", auth="basic").json()
    assert TINY_LORA in {lora["name"] for lora in loras}


def test_a_fast_inpaint_over_http_records_its_recipe(server):
    request = inpaint_request(
        32, model=TINY_SD15, preset=Preset.FAST.value, loras=(LoraChoice(TINY_LORA, 0.5),)
    )
    result = server.client().run(request)
    assert result.parameters["preset"] == "fast" and result.parameters["vae"] == TINY_TAESD
    assert result.parameters["loras"] == [
        {"name": TINY_LORA, "scale": 0.5},
        {"name": TINY_SPEED_LORA, "scale": 1.0},
    ]


def test_a_lora_or_autoencoder_path_is_refused_by_the_server(server, tiny_add_ons_dir):
    path = str(tiny_add_ons_dir / "loras" / f"{TINY_LORA}.safetensors")
    with pytest.raises(InvalidRequest) as refused:
        server.client().submit(inpaint_request(32, model=TINY_SD15, loras=(LoraChoice(path),)))
    assert refused.value.field == "loras"
    with pytest.raises(InvalidRequest) as refused:
        server.client().submit(inpaint_request(32, model=TINY_SD15, vae=str(tiny_add_ons_dir)))
    assert refused.value.field == "vae"


def test_a1111_prompts_carry_loras_and_the_lcm_sampler(server):
    body = {
        "prompt": f"a red apple <lora:{TINY_SPEED_LORA}:0.8>", "steps": 2, "cfg_scale": 1.0,
        "sampler_name": "LCM", "width": 32, "height": 32, "seed": 5,
        "override_settings": {"sd_model_checkpoint": TINY_SD15},
    }  # fmt: skip
    answer = post_json(server, "/sdapi/v1/txt2img", body)
    assert answer.status == 200, answer.body
    assert json.loads(answer.json()["info"])["prompt"] == body["prompt"]  # as the client wrote it
    missing = post_json(server, "/sdapi/v1/txt2img", {**body, "prompt": "<lora:nowhere:1>"})
    assert missing.status == 422 and "prompt" in missing.body.decode()
