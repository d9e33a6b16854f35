"""`inlayer run remove|restore|select` on image files, in-process through `core.cli.main`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inlayer.core import cli
from tests.fixtures.image_models import DRUNET, LAMA

WIDTH, HEIGHT = 80, 64


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))  # no config.ini
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(
        tmp_path / "in.png"
    )
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[20:40, 30:50] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))


def test_remove_writes_the_image_with_the_selection_filled(files, restoration_models_dir, capsys):
    out = files / "out.png"
    code = cli.main(
        ["run", "remove", "--image", str(files / "in.png"), "--mask", str(files / "mask.png"),
         "--models-dir", str(restoration_models_dir), "--grow", "0", "--feather", "0",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    assert f"removed with {LAMA}" in capsys.readouterr().err
    original, removed = read(files / "in.png"), read(out)
    outside = np.ones((HEIGHT, WIDTH), dtype=bool)
    outside[20:40, 30:50] = False
    np.testing.assert_array_equal(removed[outside], original[outside])
    assert (removed[~outside] != original[~outside]).any()


def test_remove_needs_a_mask(files, capsys):
    code = cli.main(["run", "remove", "--image", str(files / "in.png"), "--out", "x.png"])
    assert code == 2 and "--mask" in capsys.readouterr().err


def test_restore_denoise_writes_the_repaired_image(files, restoration_models_dir, capsys):
    out = files / "out.png"
    code = cli.main(
        ["run", "restore", "--image", str(files / "in.png"), "--denoise", f"{DRUNET}:0.8",
         "--models-dir", str(restoration_models_dir), "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    assert f"denoise with {DRUNET}" in capsys.readouterr().err
    assert read(out).shape == read(files / "in.png").shape
    assert (read(out) != read(files / "in.png")).any()


def test_restore_without_anything_to_do_says_what_it_takes(files, capsys):
    code = cli.main(["run", "restore", "--image", str(files / "in.png"), "--out", "x.png"])
    assert code == 2 and "--faces, --denoise, --colorize" in capsys.readouterr().err
