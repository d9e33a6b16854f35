"""`inlayer run … --control` and `inlayer models` listing ControlNets, in-process."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inlayer.core import cli
from tests.fixtures.guided_models import TINY_CONTROLNET, TINY_CONTROLNET_SDXL
from tests.fixtures.models import TINY_SD15

WIDTH, HEIGHT = 64, 48


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))  # no config.ini
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(
        tmp_path / "in.png"
    )
    drawing = np.full((HEIGHT, WIDTH), 255, dtype=np.uint8)
    drawing[10:40, 30:32] = 0
    drawing[24:26, 10:50] = 0
    Image.fromarray(drawing).save(tmp_path / "sketch.png")
    Image.fromarray(np.full((HEIGHT, WIDTH), 255, dtype=np.uint8)).save(tmp_path / "blank.png")
    return tmp_path


@pytest.fixture
def models(tiny_models_dir, tiny_guides_dir) -> list[str]:
    return ["--models-dir", str(tiny_models_dir), "--models-dir", str(tiny_guides_dir)]


def run(files, models, *extra: str) -> tuple[int, np.ndarray | None]:
    out = files / "out.png"
    out.unlink(missing_ok=True)
    code = cli.main(
        ["run", "txt2img", "--image", str(files / "in.png"), "--out", str(out), *models,
         "--model", TINY_SD15, "--prompt", "a portrait", "--steps", "2", "--seed", "4",
         "--preset", "quality", *extra]
    )  # fmt: skip
    return code, np.asarray(Image.open(out)) if out.exists() else None


def test_a_control_guides_txt2img(files, models):
    code, plain = run(files, models)
    assert code == 0
    control = f"{TINY_CONTROLNET}={files / 'sketch.png'}:0.8"
    code, guided = run(files, models, "--control", control, "--control-preprocess", "scribble")
    assert code == 0
    assert guided.shape == plain.shape and not np.array_equal(guided, plain)
    code, zero = run(files, models, "--control", f"{TINY_CONTROLNET}={files / 'sketch.png'}:0")
    assert code == 0 and np.array_equal(zero, plain)


def test_models_lists_controlnets(files, models, capsys):
    assert cli.main(["models", *models]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line}
    assert rows[TINY_CONTROLNET][1:3] == ["controlnet", "sd15"]
    assert rows[TINY_CONTROLNET_SDXL][1:3] == ["controlnet", "sdxl"]


@pytest.mark.parametrize(
    ("control", "message"),
    [
        (f"{TINY_CONTROLNET_SDXL}={{d}}/sketch.png", "controls[0].model"),
        (f"{TINY_CONTROLNET}={{d}}/blank.png", "controls[0].image: is empty"),
        (f"{TINY_CONTROLNET}={{d}}/nope.png", "--control: "),
        ("nope={d}/sketch.png", "ControlNet 'nope' not found"),
    ],
)
def test_bad_controls_are_one_line_exit_2(files, models, capsys, control, message):
    code, written = run(files, models, "--control", control.replace("{d}", str(files)))
    error = capsys.readouterr().err.strip()
    assert code == 2 and written is None
    assert error.startswith("inlayer: error:") and "\n" not in error and message in error


@pytest.mark.parametrize(
    "arguments",
    [
        ["--control-preprocess", "canny"],  # no --control before it
        ["--control", "just-a-name"],  # not MODEL=IMAGE
        ["--control", "a=b.png", "--control-preprocess", "hed"],  # unknown preprocessor
    ],
)
def test_malformed_control_options_are_usage_errors(files, models, arguments):
    with pytest.raises(SystemExit) as exited:
        run(files, models, *arguments)
    assert exited.value.code == 2
