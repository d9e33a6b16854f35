"""Mode.SELECT by a subject segmenter (core/salient_selection.py): ONNX files in a rembg/ folder
run by the real onnxruntime. The models here are stand-ins that call bright pixels the subject
(tests/fixtures/image_models.py), so that a test knows where the subject is and can check the
whole way from the layer to the selection: scaling to the model's input and back, the
normalisation each family takes, the part of the layer looked at, transparency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inlayer.core.client.protocol import (
    EditRequest,
    EditResult,
    InvalidRequest,
    Mask,
    Mode,
    ModelLoadError,
    RGBAImage,
)
from inlayer.core.engine import Engine
from inlayer.core.geometry import image_array
from inlayer.core.models import ModelRegistry
from inlayer.core.restoration_models import ModelSource
from inlayer.core.salient_selection import CONTEXT_SHARE
from tests.fixtures.image_models import (
    TINY_SAM,
    save_tiny_sam,
    write_stand_in_face_detector,
    write_stand_in_subject_segmenter,
)

HEIGHT, WIDTH = 90, 150
SIDE = 64  # the stand-ins' input: the layer is scaled to it and the answer back
LEFT = (15, 20, 40, 50)  # x, y, width, height of the bright rectangles
RIGHT = (100, 30, 35, 35)
ISNET = "isnet-general-use"
BIREFNET = "birefnet-general-lite"


def picture() -> np.ndarray:
    """A dark, slightly noisy layer with two bright rectangles."""
    rng = np.random.default_rng(5)
    pixels = np.empty((HEIGHT, WIDTH, 4), np.uint8)
    pixels[..., :3] = rng.integers(10, 50, (HEIGHT, WIDTH, 3))
    pixels[..., 3] = 255
    for x, y, width, height in (LEFT, RIGHT):
        pixels[y : y + height, x : x + width, :3] = 235
    return pixels


def region(x: int, y: int, width: int, height: int) -> np.ndarray:
    inside = np.zeros((HEIGHT, WIDTH), bool)
    inside[y : y + height, x : x + width] = True
    return inside


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    return (found & truth).sum() / (found | truth).sum()


@pytest.fixture(scope="module")
def segmenter_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("subject-segmenters")
    write_stand_in_subject_segmenter(folder / "rembg" / f"{ISNET}.onnx", SIDE)
    write_stand_in_subject_segmenter(folder / "rembg" / f"{BIREFNET}.onnx", SIDE, logits=True)
    return folder


def select(models_dir: Path, pixels: np.ndarray, near=None, **fields) -> EditResult:
    request = EditRequest(
        mode=Mode.SELECT,
        image=RGBAImage(WIDTH, HEIGHT, pixels.tobytes()),
        mask=None if near is None else Mask(WIDTH, HEIGHT, near.tobytes()),
        **fields,
    )
    return Engine(ModelRegistry([models_dir])).run(request)


@pytest.mark.parametrize("segmenter", [ISNET, BIREFNET])
def test_the_subject_of_the_whole_layer(segmenter_models: Path, segmenter: str) -> None:
    pixels = picture()
    result = select(segmenter_models, pixels, segmenter=segmenter)
    assert result.model == segmenter
    assert f"by the subject segmenter {segmenter}" in result.hint and "in the layer" in result.hint
    [layer] = result.images
    assert (layer.x, layer.y, layer.image.width, layer.image.height) == (0, 0, WIDTH, HEIGHT)
    found = image_array(layer.image)
    np.testing.assert_array_equal(found[..., :3], pixels[..., :3])  # the source's own pixels
    subject = found[..., 3] >= 128
    assert overlap(subject, region(*LEFT) | region(*RIGHT)) > 0.9
    # Far from the rectangles' edges there is no feather: background is not selected at all.
    assert found[75:, 60:90, 3].max() == 0


def test_under_a_selection_only_its_surroundings_are_looked_at(segmenter_models: Path) -> None:
    pixels = picture()
    x, y, width, height = LEFT
    near = np.zeros((HEIGHT, WIDTH), np.uint8)
    near[y - 3 : y + height + 3, x - 3 : x + width + 3] = 255  # drawn loosely around the left one
    result = select(segmenter_models, pixels, near, segmenter=ISNET)
    alpha = image_array(result.images[0].image)[..., 3]
    context = round((max(width, height) + 6) * CONTEXT_SHARE)
    looked_at = np.zeros((HEIGHT, WIDTH), bool)
    looked_at[
        y - 3 - context : y + height + 3 + context, x - 3 - context : x + width + 3 + context
    ] = True
    assert alpha[~looked_at].max() == 0  # the right rectangle is not selected
    assert overlap(alpha >= 128, region(*LEFT)) > 0.9
    assert "under the selection" in result.hint


def test_transparent_pixels_are_never_subject(segmenter_models: Path) -> None:
    pixels = picture()
    pixels[20:45, 15:30, 3] = 0  # the top left corner of the left rectangle is cut out
    alpha = image_array(select(segmenter_models, pixels).images[0].image)[..., 3]
    assert alpha[20:45, 15:30].max() == 0
    assert alpha[50:65, 32:50].min() == 255


def test_a_layer_without_a_subject_gets_an_answer_not_a_layer(segmenter_models: Path) -> None:
    pixels = picture()
    pixels[..., 3] = 0
    result = select(segmenter_models, pixels)
    assert result.images == []
    assert "no subject found" in result.hint


def test_a_subject_segmenter_comes_before_segment_anything_by_default(tmp_path: Path) -> None:
    write_stand_in_subject_segmenter(tmp_path / "rembg" / f"{ISNET}.onnx", SIDE)
    save_tiny_sam(tmp_path / "sams" / TINY_SAM)
    listed = ModelSource(ModelRegistry([tmp_path])).names_by_field()["segmenter"]
    assert listed == [ISNET, TINY_SAM]
    assert select(tmp_path, picture()).model == ISNET
    assert select(tmp_path, picture(), segmenter=TINY_SAM).model == TINY_SAM


def test_a_file_that_is_not_a_subject_segmenter_is_named(tmp_path: Path) -> None:
    # The face detector's stand-in has a picture's input, but answers boxes and scores.
    write_stand_in_face_detector(tmp_path / "rembg" / "faces.onnx", SIDE, [(10, 10, 20, 20)])
    with pytest.raises(InvalidRequest, match="faces is not a subject segmenter") as error:
        select(tmp_path, picture(), segmenter="faces")
    assert error.value.field == "segmenter"
    (tmp_path / "rembg" / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=r"cannot load broken\.onnx"):
        select(tmp_path, picture(), segmenter="broken")
    with pytest.raises(InvalidRequest, match="`inlayer models pull isnet`"):
        select(tmp_path, picture(), segmenter="missing")


def test_a_selection_inside_the_subject_selects_all_of_it(segmenter_models: Path) -> None:
    """The model sees only subject: an even answer, kept as it is, not stretched to nothing."""
    pixels = picture()
    x, y = LEFT[:2]
    near = np.zeros((HEIGHT, WIDTH), np.uint8)
    near[y + 15 : y + 30, x + 15 : x + 25] = 255
    alpha = image_array(select(segmenter_models, pixels, near).images[0].image)[..., 3]
    assert alpha[y + 15 : y + 30, x + 15 : x + 25].min() == 255
