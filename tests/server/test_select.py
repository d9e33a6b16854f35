"""Select on a real server with the tiny random-weight Segment Anything of
tests/fixtures/image_models.py: a job naming the segmenter runs it and says so; a server takes
a segmenter by its listed name (or "grabcut") only, never a path."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inlayer.core.client.protocol import EditRequest, InvalidRequest, Mask, Mode, RGBAImage
from inlayer.core.geometry import image_array
from tests.fixtures.image_models import TINY_SAM, write_stand_in_subject_segmenter
from tests.fixtures.server import ServerProcess, running_server

WIDTH, HEIGHT = 96, 64
BOX = (40, 16, 32, 30)  # x, y, width, height of the selection


@pytest.fixture(scope="module")
def sam_server(
    sam_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("sam-config"), sam_models_dir) as server:
        yield server


def select_request(**fields: str) -> EditRequest:
    pixels = np.random.default_rng(5).integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    x, y, width, height = BOX
    near = np.zeros((HEIGHT, WIDTH), np.uint8)
    near[y : y + height, x : x + width] = 255
    return EditRequest(
        mode=Mode.SELECT,
        image=RGBAImage(WIDTH, HEIGHT, pixels.tobytes()),
        mask=Mask(WIDTH, HEIGHT, near.tobytes()),
        **fields,
    )


def test_a_select_job_naming_the_segmenter_runs_it(sam_server: ServerProcess) -> None:
    result = sam_server.client().run(select_request(segmenter=TINY_SAM))
    assert result.model == TINY_SAM and "Segment Anything" in result.hint
    x, y, width, height = BOX
    assert f"in the box {x},{y} {width}x{height}" in result.hint
    [layer] = result.images
    alpha = image_array(layer.image)[..., 3]
    assert alpha.shape == (HEIGHT, WIDTH) and set(np.unique(alpha)) <= {0, 255}
    grabcut = sam_server.client().run(select_request(segmenter="grabcut"))
    assert grabcut.model == "" and "GrabCut" in grabcut.hint


def test_a_server_takes_segmenters_by_listed_name_only(sam_server: ServerProcess) -> None:
    client = sam_server.client()
    for segmenter in ("sam-vit-huge", str(Path("/") / "tmp" / TINY_SAM)):
        with pytest.raises(InvalidRequest) as raised:
            client.submit(select_request(segmenter=segmenter))
        assert raised.value.field == "segmenter" and TINY_SAM in raised.value.message


def test_a_select_job_naming_no_segmenter_gets_the_subject_segmenter(
    sam_models_dir: Path, tmp_path: Path
) -> None:
    """As the plug-ins send it: no segmenter. With a subject segmenter beside Segment Anything,
    the subject segmenter runs (the stand-in of tests/fixtures/image_models.py, which calls
    bright pixels the subject), and the plug-ins' lists show both."""
    models = tmp_path / "models"
    shutil.copytree(sam_models_dir, models)
    write_stand_in_subject_segmenter(models / "rembg" / "isnet-general-use.onnx", 64)
    request = select_request()
    assert request.image is not None
    bright = np.frombuffer(request.image.data, np.uint8).reshape(HEIGHT, WIDTH, 4).copy()
    x, y, width, height = BOX
    bright[..., :3] = 20
    bright[y + 5 : y + height - 5, x + 5 : x + width - 5, :3] = 240
    request = dataclasses.replace(request, image=RGBAImage(WIDTH, HEIGHT, bright.tobytes()))
    with running_server(tmp_path / "config", models) as server:
        client = server.client()
        assert client.image_models()["segmenter"] == ["isnet-general-use", TINY_SAM]
        result = client.run(request)
    assert result.model == "isnet-general-use" and "subject segmenter" in result.hint
    [layer] = result.images
    alpha = image_array(layer.image)[..., 3]
    assert alpha.shape == (HEIGHT, WIDTH)
    assert alpha[y + 8 : y + height - 8, x + 8 : x + width - 8].min() == 255
    assert alpha[:, : x - 5].max() == 0  # outside the selection's surroundings: nothing
