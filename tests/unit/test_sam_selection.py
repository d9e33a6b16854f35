"""Mode.SELECT by Segment Anything (core/sam_selection.py) with the tiny random-weight SAM of
tests/fixtures/image_models.py: random weights draw no real subject, so these tests assert the
geometry (the box SAM is asked about, where the mask may lie, its size and values) and which
segmenter a request gets, not the quality of the mask."""

from __future__ import annotations

import numpy as np
import pytest

from inlayer.core import cli
from inlayer.core.client.protocol import (
    EditRequest,
    EditResult,
    InvalidRequest,
    Mask,
    Mode,
    RGBAImage,
)
from inlayer.core.client.wire import decode_request, encode_request
from inlayer.core.engine import Engine
from inlayer.core.geometry import image_array
from inlayer.core.model_files import SEGMENTERS
from inlayer.core.models import ModelRegistry
from inlayer.core.sam_selection import BOX_SLACK_SHARE
from inlayer.core.settings import Settings
from inlayer.core.subject_selection import MARGIN_SHARE
from inlayer.packaging import cli as packaging_cli
from tests.fixtures.image_models import TINY_SAM
from tests.unit.test_subject_selection import HEIGHT, WIDTH, picture

YELLOW_BOX = (115, 35, 43, 55)  # x, y, width, height around the yellow disc


def select(models_dir, pixels: np.ndarray, near: np.ndarray | None = None, **fields) -> EditResult:
    request = EditRequest(
        mode=Mode.SELECT,
        image=RGBAImage(WIDTH, HEIGHT, pixels.tobytes()),
        mask=None if near is None else Mask(WIDTH, HEIGHT, near.tobytes()),
        **fields,
    )
    return Engine(ModelRegistry([models_dir])).run(request)


def grown(x: int, y: int, width: int, height: int) -> np.ndarray:
    """Where the subject may lie for a box prompt: the box grown by the slack, on the canvas."""
    slack = round(max(width, height) * BOX_SLACK_SHARE)
    allowed = np.zeros((HEIGHT, WIDTH), bool)
    allowed[max(0, y - slack) : y + height + slack, max(0, x - slack) : x + width + slack] = True
    return allowed


def test_the_selection_is_the_box_sam_is_asked_about(sam_models_dir):
    pixels, _, _ = picture()
    x, y, width, height = YELLOW_BOX
    near = np.zeros((HEIGHT, WIDTH), np.uint8)
    near[y : y + height, x : x + width] = 255
    near[y + 10 : y + 20, x + 10 : x + 20] = 0  # a hole: the box is the selection's bounds
    result = select(sam_models_dir, pixels, near)
    assert result.model == TINY_SAM
    assert f"in the box {x},{y} {width}x{height}" in result.hint
    assert f"Segment Anything ({TINY_SAM})" in result.hint
    [layer] = result.images
    assert (layer.x, layer.y, layer.image.width, layer.image.height) == (0, 0, WIDTH, HEIGHT)
    found = image_array(layer.image)
    np.testing.assert_array_equal(found[..., :3], pixels[..., :3])  # the source's own pixels
    alpha = found[..., 3]
    assert set(np.unique(alpha)) == {0, 255}
    assert not alpha[~grown(*YELLOW_BOX)].any()


def test_transparent_pixels_are_never_subject(sam_models_dir):
    pixels, _, _ = picture()
    pixels[:, :50, 3] = 0  # the left of the layer is transparent
    pixels[100:, :, 3] = 0  # and its bottom
    result = select(sam_models_dir, pixels)
    # Without a selection the box is the opaque part (110x100 at 50,0) less GrabCut's margin.
    margin_x, margin_y = round(110 * MARGIN_SHARE), round(100 * MARGIN_SHARE)
    box = (50 + margin_x, margin_y, 110 - 2 * margin_x, 100 - 2 * margin_y)
    assert f"in the box {box[0]},{box[1]} {box[2]}x{box[3]}" in result.hint
    [layer] = result.images
    alpha = image_array(layer.image)[..., 3]
    assert alpha.any() and set(np.unique(alpha)) == {0, 255}
    assert not alpha[pixels[..., 3] == 0].any()
    assert not alpha[~grown(*box)].any()


def test_grabcut_by_name_even_with_a_model_installed(sam_models_dir):
    pixels, red, _ = picture()
    result = select(sam_models_dir, pixels, segmenter="grabcut")
    assert result.model == "" and "GrabCut" in result.hint and "pull" not in result.hint
    found = image_array(result.images[0].image)[..., 3] > 0
    assert (found & red).sum() / (found | red).sum() > 0.9  # GrabCut finds the red disc


def test_without_a_segmentation_model_grabcut_says_so(tmp_path):
    pixels, _, _ = picture()
    result = select(tmp_path, pixels)
    assert result.model == "" and "by GrabCut (no model)" in result.hint
    assert "`inlayer models pull isnet`" in result.hint


def test_an_unknown_segmenter_names_the_field_and_what_is_installed(sam_models_dir):
    pixels, _, _ = picture()
    with pytest.raises(InvalidRequest) as raised:
        select(sam_models_dir, pixels, segmenter="sam-vit-huge")
    assert raised.value.field == "segmenter"
    assert TINY_SAM in str(raised.value) and "sams/" in str(raised.value)


def test_a_folder_of_another_model_is_not_a_segmenter(tmp_path):
    folder = tmp_path / "sams" / "depth"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "depth_anything"}')
    pixels, _, _ = picture()
    with pytest.raises(InvalidRequest) as raised:
        select(tmp_path, pixels)
    assert raised.value.field == "segmenter" and "depth_anything" in str(raised.value)


def test_a_segmenter_travels_on_the_wire():
    """An empty segmenter reads back empty (the server's choice), a named one by its name."""
    image = RGBAImage(4, 4, bytes(64))
    plain = EditRequest(mode=Mode.SELECT, image=image)
    assert decode_request(encode_request(plain)).segmenter == ""
    named = EditRequest(mode=Mode.SELECT, image=image, segmenter=TINY_SAM)
    assert named.parameters()["segmenter"] == TINY_SAM
    assert decode_request(encode_request(named)) == named
    with pytest.raises(InvalidRequest) as raised:
        EditRequest(mode=Mode.SELECT, image=image, segmenter="x" * 5000).validate()
    assert raised.value.field == "segmenter"


def test_run_select_with_a_segmenter_writes_the_mask(sam_models_dir, tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    pixels, _, _ = picture()
    Image.fromarray(pixels).save(tmp_path / "in.png")
    run = [
        "run",
        "select",
        "--image",
        str(tmp_path / "in.png"),
        "--models-dir",
        str(sam_models_dir),
    ]
    assert cli.main([*run, "--out", str(tmp_path / "m.png"), "--segmenter", TINY_SAM]) == 0
    mask = np.asarray(Image.open(tmp_path / "m.png").convert("L"))
    assert mask.shape == (HEIGHT, WIDTH) and set(np.unique(mask)) == {0, 255}
    assert f"Segment Anything ({TINY_SAM})" in capsys.readouterr().err  # the hint
    assert cli.main([*run, "--out", str(tmp_path / "n.png"), "--segmenter", "nope"]) != 0
    assert "segmenter" in capsys.readouterr().err and not (tmp_path / "n.png").exists()


def test_models_lists_the_sam_folder(sam_models_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    assert cli.main(["models", "--models-dir", str(sam_models_dir)]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert "sams/" in listed[TINY_SAM] and "Segment Anything" in listed[TINY_SAM]


def test_pull_puts_sam_where_select_finds_it(tmp_path):
    settings = Settings(models_dirs=(tmp_path / "models",))
    repo, target = packaging_cli.pull_target("sam-vit-base", settings)
    assert repo == "facebook/sam-vit-base"
    assert target == tmp_path / "models" / "sams" / "sam-vit-base"
    assert not any(p.endswith((".bin", ".pth", ".pt", ".h5")) for p in _patterns("sam-vit-base"))
    assert packaging_cli.existing_copy("sam-vit-base", target, settings) is None
    target.mkdir(parents=True)
    (target / "config.json").write_text('{"model_type": "sam"}')
    assert packaging_cli.existing_copy("sam-vit-base", target, settings) == target
    found = ModelRegistry([tmp_path / "models"]).catalog.find(SEGMENTERS)
    assert [model.name for model in found] == ["sam-vit-base"]


def _patterns(name: str) -> tuple[str, ...]:
    patterns = packaging_cli.KNOWN_MODELS[name].patterns
    assert patterns is not None
    return patterns
