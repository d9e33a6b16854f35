"""Restore faces (core/face_restore.py): Mode.RESTORE with `restore_faces`, and the face
restore after a generation.

No picture of a face ships offline here (scikit-image is not installed; OpenCV 5 no longer
carries its Haar cascades) and YuNet's weights need a download, so the faces are where a
stand-in detector says they are: an ONNX file with YuNet's outputs reporting fixed boxes, read
by the real `cv2.FaceDetectorYN`. The picture is noise, so any restorer changes every pixel it
pastes: what is asserted is where it pastes (only inside the boxes) and what it says.
"""

from __future__ import annotations

import numpy as np
import pytest

from inlayer.core.client.protocol import EditRequest, InvalidRequest, Mode, RGBAImage
from inlayer.core.engine import Engine
from inlayer.core.models import ModelRegistry
from tests.fixtures.image_models import GFPGAN, LAMA, RESTOREFORMER, write_stand_in_face_detector

SIDE = 320
BOXES = [(40, 50, 100, 120), (200, 150, 80, 90)]


def noise_image(seed: int = 7) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return pixels


def in_boxes(boxes) -> np.ndarray:
    inside = np.zeros((SIDE, SIDE), dtype=bool)
    for x, y, width, height in boxes:
        inside[y : y + height, x : x + width] = True
    return inside


def restore_request(pixels: np.ndarray, **fields) -> EditRequest:
    return EditRequest(
        mode=Mode.RESTORE, image=RGBAImage(SIDE, SIDE, pixels.tobytes()), seed=3, **fields
    )


def detector_dir(tmp_path_factory, boxes) -> object:
    folder = tmp_path_factory.mktemp("detector")
    write_stand_in_face_detector(folder / "facedetection" / "yunet.onnx", SIDE, boxes)
    return folder


@pytest.fixture(scope="module")
def engine(restoration_models_dir, tmp_path_factory) -> Engine:
    return Engine(ModelRegistry([restoration_models_dir, detector_dir(tmp_path_factory, BOXES)]))


def result_pixels(result) -> np.ndarray:
    [layer] = result.images
    assert (layer.x, layer.y, layer.image.width, layer.image.height) == (0, 0, SIDE, SIDE)
    return np.frombuffer(layer.image.data, np.uint8).reshape(SIDE, SIDE, 4)


def test_faces_are_restored_only_inside_the_detected_boxes(engine):
    pixels = noise_image()
    result = engine.run(restore_request(pixels, restore_faces=RESTOREFORMER))
    assert result.hint == f"2 faces restored with {RESTOREFORMER}"
    restored = result_pixels(result)
    inside = in_boxes(BOXES)
    np.testing.assert_array_equal(restored[~inside], pixels[~inside])
    for x, y, width, height in BOXES:  # the middle of each box takes the restored face
        middle = (
            slice(y + height // 4, y + 3 * height // 4),
            slice(x + width // 4, x + 3 * width // 4),
        )
        assert (restored[middle][..., :3] != pixels[middle][..., :3]).mean() > 0.9


def test_full_fidelity_keeps_the_faces_as_they_were(engine):
    pixels = noise_image()
    result = engine.run(restore_request(pixels, restore_faces=f"{RESTOREFORMER}:1"))
    np.testing.assert_array_equal(result_pixels(result), pixels)


def test_with_a_selection_only_the_faces_under_it_change(engine):
    from inlayer.core.client.protocol import Mask
    from inlayer.core.images import full_size_images

    pixels = noise_image()
    mask = np.zeros((SIDE, SIDE), np.uint8)
    mask[40:180, 30:150] = 255  # the first face
    request = restore_request(
        pixels,
        restore_faces=RESTOREFORMER,
        mask=Mask(SIDE, SIDE, mask.tobytes()),
        grow=0,
        feather=0,
    )
    [composited] = full_size_images(request, engine.run(request))
    np.testing.assert_array_equal(composited[~in_boxes(BOXES[:1])], pixels[~in_boxes(BOXES[:1])])
    assert (composited != pixels).any()


def test_a_layer_without_faces_gets_an_answer_and_no_layer(
    restoration_models_dir, tmp_path_factory
):
    engine = Engine(ModelRegistry([restoration_models_dir, detector_dir(tmp_path_factory, [])]))
    result = engine.run(restore_request(noise_image(), restore_faces=RESTOREFORMER))
    assert result.images == [] and result.hint == "no faces found to restore"


def test_without_a_detector_the_error_says_how_to_get_one(restoration_models_dir):
    engine = Engine(ModelRegistry([restoration_models_dir]))
    with pytest.raises(InvalidRequest, match="pull yunet") as caught:
        engine.run(restore_request(noise_image(), restore_faces=RESTOREFORMER))
    assert caught.value.field == "restore_faces"


def test_an_object_remover_as_the_face_restorer_names_the_field(engine, restoration_models_dir):
    remover = restoration_models_dir / "inpaint" / f"{LAMA}.safetensors"
    with pytest.raises(InvalidRequest, match="object remover") as caught:
        engine.run(restore_request(noise_image(), restore_faces=str(remover)))
    assert caught.value.field == "restore_faces"


def test_restore_needs_something_to_do():
    with pytest.raises(InvalidRequest, match="restore_faces, denoise or colorize"):
        restore_request(noise_image()).validate()


def test_faces_are_restored_after_a_generation(engine, tiny_models_dir):
    from tests.fixtures.models import TINY_SD15

    engine.registry.catalog.models_dirs.append(tiny_models_dir)
    fields = {"mode": Mode.TXT2IMG, "width": SIDE, "height": SIDE, "seed": 5, "steps": 2}
    fields |= {"model": TINY_SD15, "preset": "quality", "prompt": "two people"}
    plain = engine.run(EditRequest(**fields))
    restored = engine.run(EditRequest(**fields, restore_faces=RESTOREFORMER))
    assert "2 faces restored" in restored.hint
    before, after = result_pixels(plain), result_pixels(restored)
    inside = in_boxes(BOXES)
    np.testing.assert_array_equal(after[~inside], before[~inside])
    assert (after[inside] != before[inside]).any()


def test_gfpgan_restores_a_face_inside_its_box(gfpgan_models_dir, tmp_path_factory):
    box = (100, 90, 120, 140)
    registry = ModelRegistry([gfpgan_models_dir, detector_dir(tmp_path_factory, [box])])
    pixels = noise_image()
    result = Engine(registry).run(restore_request(pixels, restore_faces=GFPGAN))
    assert result.hint == f"1 face restored with {GFPGAN}"
    restored, inside = result_pixels(result), in_boxes([box])
    np.testing.assert_array_equal(restored[~inside], pixels[~inside])
    assert (restored[inside] != pixels[inside]).mean() > 0.5
