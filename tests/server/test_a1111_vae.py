"""A1111's sd_vae: the full autoencoders of the vae/ folders listed by GET sd-vae, chosen by
option or override_settings, read back, and refused clearly when unknown or of another family."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.models import TINY_FULL_VAE_LDM, TINY_FULL_VAE_XL, TINY_SD15
from tests.fixtures.server import ServerProcess, running_server
from tests.server.helpers import decode_png, exchange, post_json

LDM_FILE = f"{TINY_FULL_VAE_LDM}.safetensors"
BODY = {"prompt": "a boat", "steps": 2, "width": 32, "height": 32, "seed": 5, "cfg_scale": 1}


@pytest.fixture(scope="module")
def vae_server(
    tiny_models_dir: Path, tiny_full_vaes_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("vae-config")
    arguments = ("--models-dir", str(tiny_full_vaes_dir))
    with running_server(config, tiny_models_dir, *arguments) as server:
        yield server


def generate(server: ServerProcess, **override: object) -> tuple[int, dict]:
    body = {**BODY, "override_settings": {"sd_model_checkpoint": TINY_SD15, **override}}
    answer = post_json(server, "/sdapi/v1/txt2img", body)
    return answer.status, answer.json()


def test_sd_vae_lists_the_full_autoencoders_by_file_name(vae_server: ServerProcess) -> None:
    listed = exchange(vae_server, "GET", "/sdapi/v1/sd-vae", auth="basic").json()
    assert LDM_FILE in {vae["model_name"] for vae in listed}
    assert all(Path(vae["filename"]).name == vae["model_name"] for vae in listed)


def test_sd_vae_acts_as_override_and_as_option(vae_server: ServerProcess) -> None:
    status, own = generate(vae_server)
    assert status == 200
    status, tuned = generate(vae_server, sd_vae=LDM_FILE)
    assert status == 200
    own_pixels, tuned_pixels = (decode_png(a["images"][0]) for a in (own, tuned))
    assert not np.array_equal(tuned_pixels, own_pixels)
    assert post_json(vae_server, "/sdapi/v1/options", {"sd_vae": LDM_FILE}).status == 200
    try:
        options = exchange(vae_server, "GET", "/sdapi/v1/options", auth="basic").json()
        assert options["sd_vae"] == LDM_FILE
        status, stored = generate(vae_server)
        assert np.array_equal(decode_png(stored["images"][0]), tuned_pixels)
        status, automatic = generate(vae_server, sd_vae="Automatic")
        assert np.array_equal(decode_png(automatic["images"][0]), own_pixels)
    finally:
        post_json(vae_server, "/sdapi/v1/options", {"sd_vae": "Automatic"})


def test_an_unknown_or_unfitting_sd_vae_is_a_422_naming_it(vae_server: ServerProcess) -> None:
    refused = post_json(vae_server, "/sdapi/v1/options", {"sd_vae": "nope.safetensors"})
    assert refused.status == 422
    assert refused.json()["field"] == "sd_vae" and LDM_FILE in refused.json()["detail"]
    status, answer = generate(vae_server, sd_vae="nope.safetensors")
    assert status == 422 and answer["field"] == "override_settings.sd_vae"
    status, answer = generate(vae_server, sd_vae=f"{TINY_FULL_VAE_XL}.safetensors")
    assert status == 422, json.dumps(answer)
    assert answer["field"] == "sd_vae" and "is for sdxl" in answer["message"]
    assert generate(vae_server)[0] == 200  # the server goes on
