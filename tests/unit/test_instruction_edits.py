"""Mode `edit` on a tiny InstructPix2Pix-class model: the whole layer or a selection blended back,
image guidance, the models that can and cannot edit, the command line and the wire."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inlayer.core import cli
from inlayer.core.client.bounds import Bounds
from inlayer.core.client.protocol import EditRequest, InvalidRequest, Mask, Mode, RGBAImage
from inlayer.core.client.wire import decode_request, encode_request
from inlayer.core.engine import Engine, image_array
from inlayer.core.images import full_size_images
from inlayer.core.models import ModelRegistry
from tests.fixtures.guided_models import TINY_INSTRUCT
from tests.fixtures.models import TINY_SD15

WIDTH, HEIGHT = 64, 48
SELECTION = Bounds(20, 12, 24, 20)


def canvas(alpha: int = 255) -> RGBAImage:
    pixels = np.random.default_rng(4).integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
    pixels[..., 3] = alpha
    return RGBAImage(WIDTH, HEIGHT, pixels.tobytes())


def selection() -> Mask:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[SELECTION.slices] = 255
    return Mask(WIDTH, HEIGHT, mask.tobytes())


def edit(**fields) -> EditRequest:
    defaults = {
        "mode": Mode.EDIT,
        "image": canvas(),
        "prompt": "turn the car into a bicycle",
        "steps": 2,
        "seed": 8,
        "preset": "quality",
    }
    return EditRequest(**(defaults | fields))


@pytest.fixture(scope="module")
def engine(tiny_models_dir, tiny_guides_dir) -> Engine:
    return Engine(ModelRegistry([tiny_models_dir, tiny_guides_dir]))


def test_an_eight_channel_model_is_listed_as_an_edit_model(engine):
    models = {info.name: info for info in engine.registry.list()}
    assert models[TINY_INSTRUCT].modes == ("edit",)
    assert "edit" not in models[TINY_SD15].modes
    assert engine.registry.default_for(Mode.EDIT) == TINY_INSTRUCT


def test_an_edit_of_the_whole_layer_keeps_its_alpha_and_follows_the_instruction(engine):
    request = edit(image=canvas(alpha=200))
    result = engine.run(request)
    (image,) = result.images
    assert (image.x, image.y, image.image.width, image.image.height) == (0, 0, WIDTH, HEIGHT)
    assert (image_array(image.image)[..., 3] == 200).all()
    assert result.model == TINY_INSTRUCT and result.parameters["image_guidance"] == 1.5
    other_instruction = engine.run(edit(image=canvas(alpha=200), prompt="make it night"))
    assert other_instruction.images[0].image.data != image.image.data


def test_image_guidance_changes_the_result(engine):
    loose = engine.run(edit(image_guidance=1.0)).images[0].image.data
    assert engine.run(edit(image_guidance=3.0)).images[0].image.data != loose


def test_an_edit_of_a_selection_is_blended_back_like_an_inpaint(engine):
    request = edit(mask=selection(), grow=0, feather=2)
    result = engine.run(request)
    (image,) = result.images
    covered = Bounds(image.x, image.y, image.image.width, image.image.height)
    assert covered == SELECTION.pad(2).clamp(Bounds(0, 0, WIDTH, HEIGHT))
    (full,) = full_size_images(request, result)
    outside = np.ones((HEIGHT, WIDTH), dtype=bool)
    outside[covered.slices] = False
    np.testing.assert_array_equal(full[outside], image_array(request.image)[outside])
    assert not np.array_equal(full[SELECTION.slices], image_array(request.image)[SELECTION.slices])


def test_an_edit_to_a_model_that_cannot_edit_says_which_can(engine):
    with pytest.raises(InvalidRequest) as caught:
        engine.run(edit(model=TINY_SD15))
    assert caught.value.field == "model"
    assert "cannot follow instructions" in caught.value.message
    assert "instruct-pix2pix" in caught.value.message


def test_an_edit_model_refuses_other_modes(engine):
    request = EditRequest(
        mode=Mode.IMG2IMG, image=canvas(), strength=0.6, steps=2, model=TINY_INSTRUCT
    )
    with pytest.raises(InvalidRequest) as caught:
        engine.run(request)
    assert caught.value.field == "model" and "serves only edit" in caught.value.message


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"image": None}, "image"),
        ({"image_guidance": -1.0}, "image_guidance"),
        ({"image_guidance": 100.0}, "image_guidance"),
        ({"image_guidance": "high"}, "image_guidance"),
    ],
)
def test_bad_edit_requests_name_the_field(fields, field):
    with pytest.raises(InvalidRequest) as caught:
        edit(**fields).validate()
    assert caught.value.field == field


def test_an_edit_travels_on_the_wire():
    request = edit(mask=selection(), image_guidance=2.5)
    decoded = decode_request(encode_request(request))
    assert decoded.mode == Mode.EDIT and decoded.image_guidance == 2.5


def test_inlayer_run_edit(tmp_path, monkeypatch, tiny_models_dir, tiny_guides_dir, capsys):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    pixels = np.random.default_rng(5).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    models = ["--models-dir", str(tiny_models_dir), "--models-dir", str(tiny_guides_dir)]
    code = cli.main(
        ["run", "edit", "--image", str(tmp_path / "in.png"), "--out", str(tmp_path / "out.png"),
         "--prompt", "make it night", "--image-guidance", "1.5", "--steps", "2",
         "--preset", "quality", *models]
    )  # fmt: skip
    assert code == 0
    assert Image.open(tmp_path / "out.png").size == (WIDTH, HEIGHT)
    code = cli.main(
        ["run", "edit", "--image", str(tmp_path / "in.png"), "--out", str(tmp_path / "x.png"),
         "--prompt", "make it night", "--model", TINY_SD15, "--steps", "2", *models]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2 and "cannot follow instructions" in error
    assert not (tmp_path / "x.png").exists()


def test_an_edit_is_not_refined_in_tiles(engine):
    """An instruction-edit model has no img2img pipeline for the tiled refine: a large layer is
    edited at the model's size and scaled back, and a refine strength is refused."""
    big = np.random.default_rng(4).integers(0, 256, (256, 320, 4), dtype=np.uint8)
    big[..., 3] = 255
    result = engine.run(edit(image=RGBAImage(320, 256, big.tobytes())))
    assert result.images[0].image.width == 320
    with pytest.raises(InvalidRequest) as caught:
        edit(refine="0.3").validate()
    assert caught.value.field == "refine"
