"""AUTOMATIC1111's face restoration on a real server: GET face-restorers, restore_faces on
txt2img, and gfpgan_visibility on extra-single-image, with a tiny RestoreFormer and the
stand-in YuNet detector of tests/fixtures/image_models.py (faces at fixed boxes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inlayer.core.client.protocol import EditRequest, InvalidRequest, Mode, RGBAImage
from inlayer.server.service import Limits, Service
from tests.fixtures.image_models import (
    DRUNET,
    LAMA,
    RESTOREFORMER,
    write_stand_in_face_detector,
)
from tests.fixtures.models import TINY_SD15
from tests.fixtures.server import ServerProcess, running_server
from tests.server.helpers import decode_png, exchange, png_base64, post_json

SIDE = 320
BOX = (100, 80, 110, 130)


@pytest.fixture(scope="module")
def face_server(
    tiny_models_dir: Path, restoration_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    detector = tmp_path_factory.mktemp("detector")
    write_stand_in_face_detector(detector / "facedetection" / "yunet.onnx", SIDE, [BOX])
    extra = ["--models-dir", str(restoration_models_dir), "--models-dir", str(detector)]
    with running_server(tmp_path_factory.mktemp("faces-config"), tiny_models_dir, *extra) as server:
        yield server


def outside_box() -> np.ndarray:
    outside = np.ones((SIDE, SIDE), dtype=bool)
    x, y, width, height = BOX
    outside[y : y + height, x : x + width] = False
    return outside


def test_face_restorers_lists_the_installed_ones(face_server: ServerProcess) -> None:
    answer = exchange(face_server, "GET", "/sdapi/v1/face-restorers", auth="basic")
    assert answer.status == 200
    assert answer.json() == [{"name": RESTOREFORMER, "cmd_dir": None}]


def test_v1_lists_the_image_models_each_field_takes(face_server: ServerProcess) -> None:
    """The plug-ins' restore lists: GET /v1/image-models through the stdlib client."""
    listed = face_server.client().image_models()
    assert listed["restore_faces"] == [RESTOREFORMER]
    assert listed["denoise"] == listed["colorize"] == [DRUNET]
    assert listed["remover"] == [LAMA]


def test_the_in_process_client_lists_the_same_image_models(
    face_server: ServerProcess, tiny_models_dir: Path, restoration_models_dir: Path
) -> None:
    from inlayer.core.engine import Engine
    from inlayer.core.inprocess import InProcessClient
    from inlayer.core.models import ModelRegistry

    local = InProcessClient(Engine(ModelRegistry([tiny_models_dir, restoration_models_dir])))
    assert local.image_models() == face_server.client().image_models()


def test_restore_faces_on_txt2img_changes_only_the_face(face_server: ServerProcess) -> None:
    body = {"prompt": "a face", "steps": 2, "seed": 3, "width": SIDE, "height": SIDE}
    body["override_settings"] = {"sd_model_checkpoint": TINY_SD15}
    plain = post_json(face_server, "/sdapi/v1/txt2img", body)
    restored = post_json(face_server, "/sdapi/v1/txt2img", {**body, "restore_faces": True})
    assert plain.status == restored.status == 200, restored.body[:300]
    before = decode_png(plain.json()["images"][0])
    after = decode_png(restored.json()["images"][0])
    np.testing.assert_array_equal(after[outside_box()], before[outside_box()])
    assert (after[~outside_box()] != before[~outside_box()]).any()


def test_extras_gfpgan_visibility_blends_the_restored_face(face_server: ServerProcess) -> None:
    pixels = np.random.default_rng(4).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    image = png_base64(pixels)
    answers = [
        post_json(
            face_server,
            "/sdapi/v1/extra-single-image",
            {"image": image, "upscaling_resize": 1, "gfpgan_visibility": visibility},
        )
        for visibility in (1.0, 0.5)
    ]
    assert all(answer.status == 200 for answer in answers), answers[0].body[:300]
    full, half = (decode_png(answer.json()["image"])[..., :3] for answer in answers)
    np.testing.assert_array_equal(full[outside_box()], pixels[outside_box()])
    assert (full[~outside_box()] != pixels[~outside_box()]).mean() > 0.5
    expected = (pixels.astype(np.float32) + full) / 2
    assert np.abs(half.astype(np.float32) - expected).max() <= 1.0


def test_a_server_takes_image_models_by_listed_name_only() -> None:
    service = Service(
        queue=None,  # type: ignore[arg-type]  # check_image_models reads no queue
        list_models=list,
        default_model=str,  # type: ignore[arg-type]
        device="cpu",
        limits=Limits(max_body_bytes=1, max_pixels=1),
        list_image_models=lambda: {"restore_faces": [RESTOREFORMER]},
    )
    image = RGBAImage(1, 1, b"\0\0\0\xff")
    service.check_image_models(
        EditRequest(mode=Mode.RESTORE, image=image, restore_faces=f"{RESTOREFORMER}:0.3")
    )
    for field, value in (("restore_faces", "/etc/weights.safetensors"), ("denoise", "any")):
        request = EditRequest(mode=Mode.RESTORE, image=image, **{field: value})
        with pytest.raises(InvalidRequest) as caught:
            service.check_image_models(request)
        assert caught.value.field == field
