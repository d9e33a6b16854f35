"""A style reference through a tiny IP-Adapter and a tiny CLIP vision encoder: it changes the
picture, scale 0 and a run without it change nothing, it combines with a ControlNet and an
instruction edit, and a missing adapter or image encoder is a clear error."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from inlayer.core import cli
from inlayer.core.client.protocol import (
    AddOnKind,
    ControlChoice,
    EditRequest,
    InvalidRequest,
    Mask,
    Mode,
    RGBAImage,
    StyleChoice,
)
from inlayer.core.client.wire import decode_request, encode_request
from inlayer.core.engine import Engine
from inlayer.core.models import ModelRegistry
from tests.fixtures.guided_models import TINY_CONTROLNET, TINY_INSTRUCT, TINY_IP_ADAPTER
from tests.fixtures.models import TINY_SD15

WIDTH, HEIGHT = 64, 48


def noise(width: int, height: int, seed: int) -> RGBAImage:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return RGBAImage(width, height, pixels.tobytes())


REFERENCE = noise(40, 30, seed=21)


def request_of(mode: Mode = Mode.TXT2IMG, **fields) -> EditRequest:
    defaults = {
        "mode": mode,
        "image": noise(WIDTH, HEIGHT, seed=2),
        "prompt": "a portrait",
        "steps": 2,
        "seed": 6,
        "model": TINY_SD15,
        "preset": "quality",
        "strength": 0.8 if mode == Mode.IMG2IMG else 1.0,
    }
    return EditRequest(**(defaults | fields))


@pytest.fixture(scope="module")
def engine(tiny_models_dir, tiny_guides_dir) -> Engine:
    return Engine(ModelRegistry([tiny_models_dir, tiny_guides_dir]))


def pixels(engine: Engine, request: EditRequest) -> bytes:
    return engine.run(request).images[0].image.data


@pytest.mark.parametrize("mode", [Mode.TXT2IMG, Mode.IMG2IMG])
def test_a_style_changes_the_picture_and_leaves_later_runs_as_they_were(engine, mode):
    plain = pixels(engine, request_of(mode))
    styled = engine.run(request_of(mode, style=StyleChoice(REFERENCE, 0.8)))
    assert styled.images[0].image.data != plain
    assert styled.parameters["style"] == {
        "image": {"width": 40, "height": 30},
        "scale": 0.8,
        "model": "",
    }
    assert pixels(engine, request_of(mode)) == plain  # the adapter was taken out again
    assert pixels(engine, request_of(mode, style=StyleChoice(REFERENCE, 0.0))) == plain


def test_another_reference_gives_another_picture(engine):
    one = pixels(engine, request_of(style=StyleChoice(REFERENCE, 1.0)))
    other = pixels(engine, request_of(style=StyleChoice(noise(40, 30, seed=22), 1.0)))
    assert one != other


def test_a_style_combines_with_a_controlnet_on_an_inpaint(engine):
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[10:40, 20:50] = 255
    sketch = np.full((HEIGHT, WIDTH, 4), 255, dtype=np.uint8)
    sketch[10:40, 34:36, :3] = 0
    control = ControlChoice(TINY_CONTROLNET, RGBAImage(WIDTH, HEIGHT, sketch.tobytes()), "scribble")
    fields = {"mask": Mask(WIDTH, HEIGHT, mask.tobytes()), "controls": (control,)}
    controlled = pixels(engine, request_of(Mode.INPAINT, **fields))
    both = pixels(engine, request_of(Mode.INPAINT, **fields, style=StyleChoice(REFERENCE)))
    assert both != controlled


def test_a_style_combines_with_an_instruction_edit(engine):
    request = request_of(Mode.EDIT, model=TINY_INSTRUCT)
    plain = pixels(engine, request)
    styled = pixels(
        engine, request_of(Mode.EDIT, model=TINY_INSTRUCT, style=StyleChoice(REFERENCE))
    )
    assert styled != plain


def test_ip_adapters_are_listed(engine):
    listed = [a.name for a in engine.registry.add_ons() if a.kind == AddOnKind.IP_ADAPTER]
    assert listed == [TINY_IP_ADAPTER]


def test_a_missing_image_encoder_is_a_clear_error(tiny_models_dir, tiny_guides_dir, tmp_path):
    (tmp_path / "ipadapter").mkdir()
    shutil.copy(
        tiny_guides_dir / "ipadapter" / f"{TINY_IP_ADAPTER}.safetensors", tmp_path / "ipadapter"
    )
    engine = Engine(ModelRegistry([tiny_models_dir, tmp_path]))
    with pytest.raises(InvalidRequest) as caught:
        engine.run(request_of(style=StyleChoice(REFERENCE)))
    assert caught.value.field == "style"
    assert "needs its image encoder" in caught.value.message
    assert "clip_vision/" in caught.value.message


def test_no_ip_adapter_installed_says_where_to_put_one(tiny_models_dir):
    engine = Engine(ModelRegistry([tiny_models_dir]))
    with pytest.raises(InvalidRequest) as caught:
        engine.run(request_of(style=StyleChoice(REFERENCE)))
    assert caught.value.field == "style" and "ipadapter/" in caught.value.message


def test_an_unknown_named_ip_adapter(engine):
    with pytest.raises(InvalidRequest) as caught:
        engine.run(request_of(style=StyleChoice(REFERENCE, model="nope")))
    assert caught.value.field == "style.model" and TINY_IP_ADAPTER in caught.value.message


@pytest.mark.parametrize(
    ("style", "field"),
    [
        (StyleChoice(REFERENCE, 3.0), "style.scale"),
        (StyleChoice(REFERENCE, "strong"), "style.scale"),
        (StyleChoice(RGBAImage(4, 4, bytes(64))), "style.image"),
    ],
)
def test_bad_styles_name_the_field(style, field):
    with pytest.raises(InvalidRequest) as caught:
        request_of(style=style).validate()
    assert caught.value.field == field


def test_fill_takes_no_style():
    mask = Mask(WIDTH, HEIGHT, b"\xff" * (WIDTH * HEIGHT))
    with pytest.raises(InvalidRequest) as caught:
        request_of(Mode.FILL, mask=mask, style=StyleChoice(REFERENCE)).validate()
    assert caught.value.field == "style"


@pytest.mark.parametrize("mode", [Mode.RESTORE, Mode.SELECT])
def test_modes_that_paint_nothing_take_no_style(mode):
    with pytest.raises(InvalidRequest) as caught:
        request_of(mode, denoise="a-model", style=StyleChoice(REFERENCE)).validate()
    assert caught.value.field == "style"


def test_a_style_carries_into_the_tiled_refine(engine):
    """The IP-Adapter sits in the UNet the refine's img2img pipeline shares: its tiles take the
    reference too (a call without it would fail)."""
    big = noise(320, 256, seed=3)
    style = StyleChoice(REFERENCE, 0.8)
    result = engine.run(request_of(Mode.IMG2IMG, image=big, style=style, refine="0.3"))
    assert result.images[0].image.width == 320
    upscaled = engine.run(request_of(Mode.UPSCALE, prompt="", style=style, refine="0.3"))
    assert upscaled.images[0].image.width == 2 * WIDTH


def test_a_style_travels_on_the_wire():
    request = request_of(style=StyleChoice(REFERENCE, 0.7, TINY_IP_ADAPTER))
    assert decode_request(encode_request(request)).style == request.style


def test_inlayer_run_with_a_style_image(tmp_path, monkeypatch, tiny_models_dir, tiny_guides_dir):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    reference = np.random.default_rng(9).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(reference).save(tmp_path / "style.png")
    models = ["--models-dir", str(tiny_models_dir), "--models-dir", str(tiny_guides_dir)]

    def run(*extra: str) -> np.ndarray:
        out = tmp_path / "out.png"
        code = cli.main(
            ["run", "txt2img", "--width", "48", "--height", "32", "--out", str(out),
             "--model", TINY_SD15, "--steps", "2", "--seed", "3", "--preset", "quality",
             *models, *extra]
        )  # fmt: skip
        assert code == 0
        return np.asarray(Image.open(out))

    plain = run()
    assert not np.array_equal(run("--style-image", f"{tmp_path / 'style.png'}:0.9"), plain)
    assert np.array_equal(run("--style-image", f"{tmp_path / 'style.png'}:0"), plain)
