"""ControlNets and style references over HTTP, through a real server process: /v1 jobs carry
control and style images as blobs and name ControlNets and IP-Adapters the server lists (never
paths)."""

from __future__ import annotations

import numpy as np
import pytest

from inlayer.core.client.protocol import (
    AddOnKind,
    ControlChoice,
    InvalidRequest,
    RGBAImage,
    StyleChoice,
)
from tests.fixtures.guided_models import TINY_CONTROLNET, TINY_CONTROLNET_SDXL, TINY_IP_ADAPTER
from tests.fixtures.models import TINY_SD15
from tests.server.helpers import inpaint_request

SIZE = 32


def lines(size: int = SIZE) -> RGBAImage:
    pixels = np.full((size, size, 4), 255, dtype=np.uint8)
    pixels[4 : size - 4, size // 2, :3] = 0
    pixels[size // 2, 4 : size - 4, :3] = 0
    return RGBAImage(size, size, pixels.tobytes())


def test_v1_lists_controlnets(guided_server):
    listed = {a.name: a for a in guided_server.client().add_ons() if a.kind == AddOnKind.CONTROLNET}
    assert listed[TINY_CONTROLNET].family == "sd15"
    assert listed[TINY_CONTROLNET_SDXL].family == "sdxl"


def test_a_v1_job_with_a_control_differs_from_one_without(guided_server):
    client = guided_server.client()
    plain = client.run(inpaint_request(SIZE, model=TINY_SD15, preset="quality"))
    control = ControlChoice(TINY_CONTROLNET, lines(), preprocessor="scribble", weight=0.9)
    guided = client.run(
        inpaint_request(SIZE, model=TINY_SD15, preset="quality", controls=(control,))
    )
    assert guided.images[0].image.data != plain.images[0].image.data
    assert guided.parameters["controls"] == [
        {
            "model": TINY_CONTROLNET,
            "image": {"width": SIZE, "height": SIZE},
            "preprocessor": "scribble",
            "weight": 0.9,
            "start": 0.0,
            "end": 1.0,
        }
    ]


def test_a_controlnet_path_is_refused(guided_server, tiny_guides_dir):
    path = str(tiny_guides_dir / "controlnet" / TINY_CONTROLNET)
    request = inpaint_request(SIZE, model=TINY_SD15, controls=(ControlChoice(path, lines()),))
    with pytest.raises(InvalidRequest) as refused:
        guided_server.client().submit(request)
    assert refused.value.field == "controls[0].model"


def test_a_controlnet_of_another_family_fails_the_job_naming_the_field(guided_server):
    control = ControlChoice(TINY_CONTROLNET_SDXL, lines())
    with pytest.raises(InvalidRequest) as failed:
        guided_server.client().run(inpaint_request(SIZE, model=TINY_SD15, controls=(control,)))
    assert failed.value.field == "controls[0].model" and "sdxl" in failed.value.message
    assert guided_server.client().health().version  # the server stays up


def test_a_v1_job_with_a_style_reference_and_its_listed_ip_adapter(guided_server):
    client = guided_server.client()
    listed = [a.name for a in client.add_ons() if a.kind == AddOnKind.IP_ADAPTER]
    assert listed == [TINY_IP_ADAPTER]
    plain = client.run(inpaint_request(SIZE, model=TINY_SD15, preset="quality"))
    style = StyleChoice(lines(), 0.9, TINY_IP_ADAPTER)
    styled = client.run(inpaint_request(SIZE, model=TINY_SD15, preset="quality", style=style))
    assert styled.images[0].image.data != plain.images[0].image.data
    with pytest.raises(InvalidRequest) as refused:
        client.submit(inpaint_request(SIZE, model=TINY_SD15, style=StyleChoice(lines(), 1, "x")))
    assert refused.value.field == "style.model"
