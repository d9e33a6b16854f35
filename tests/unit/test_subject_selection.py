"""Mode.SELECT (core/subject_selection.py): GrabCut finds the subject on a synthetic picture
whose subject is known exactly (a disc on a noisy background of other colours)."""

from __future__ import annotations

import cv2
import numpy as np

from inlayer.core import cli
from inlayer.core.client.protocol import EditRequest, Mask, Mode, RGBAImage
from inlayer.core.engine import Engine
from inlayer.core.geometry import image_array
from inlayer.core.models import ModelRegistry

HEIGHT, WIDTH = 120, 160


def picture() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A picture with a red disc in the middle and a yellow one at the right edge, and the
    masks of both discs."""
    rng = np.random.default_rng(2)
    pixels = np.empty((HEIGHT, WIDTH, 4), np.uint8)
    pixels[..., :3] = rng.integers(0, 60, (HEIGHT, WIDTH, 3)) + np.array([20, 110, 60])
    pixels[..., 3] = 255
    red, yellow = np.zeros((HEIGHT, WIDTH), np.uint8), np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.circle(red, (70, 60), 30, 255, -1)
    cv2.circle(yellow, (135, 60), 14, 255, -1)
    pixels[red > 0, :3] = (210, 40, 30)
    pixels[yellow > 0, :3] = (230, 210, 40)
    return pixels, red > 0, yellow > 0


def select(pixels: np.ndarray, near: np.ndarray | None = None):
    request = EditRequest(
        mode=Mode.SELECT,
        image=RGBAImage(WIDTH, HEIGHT, pixels.tobytes()),
        mask=None if near is None else Mask(WIDTH, HEIGHT, near.tobytes()),
    )
    return Engine(ModelRegistry([])).run(request)


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    return (found & truth).sum() / (found | truth).sum()


def test_the_subject_in_the_middle_of_the_layer():
    pixels, red, _ = picture()
    result = select(pixels)
    [layer] = result.images
    assert (layer.x, layer.y, layer.image.width, layer.image.height) == (0, 0, WIDTH, HEIGHT)
    found = image_array(layer.image)
    np.testing.assert_array_equal(found[..., :3], pixels[..., :3])  # the source's own pixels
    assert overlap(found[..., 3] > 0, red) > 0.9
    assert "GrabCut" in result.hint and "in the layer" in result.hint


def test_the_subject_under_the_selection():
    pixels, red, yellow = picture()
    near = np.zeros((HEIGHT, WIDTH), np.uint8)
    near[35:90, 115:158] = 255  # around the yellow disc only
    found = image_array(select(pixels, near).images[0].image)[..., 3] > 0
    assert overlap(found, yellow) > 0.8 and not (found & red).any()


def test_a_transparent_layer_has_no_subject():
    pixels = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    result = select(pixels)
    assert result.images == [] and "no subject" in result.hint


def test_select_writes_the_mask_file(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    pixels, red, _ = picture()
    Image.fromarray(pixels).save(tmp_path / "in.png")
    code = cli.main(
        ["run", "select", "--image", str(tmp_path / "in.png"), "--out", str(tmp_path / "m.png"),
         "--models-dir", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    mask = np.asarray(Image.open(tmp_path / "m.png").convert("L"))
    assert mask.shape == (HEIGHT, WIDTH) and set(np.unique(mask)) == {0, 255}
    assert overlap(mask > 0, red) > 0.9
