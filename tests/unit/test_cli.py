"""`inlayer run` and `inlayer models` on image files, run in-process through `core.cli.main`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inlayer.core import cli
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING

WIDTH, HEIGHT = 96, 64


@pytest.fixture
def files(tmp_path, monkeypatch):
    """An input image, a mask (a white rectangle) and a few broken inputs, in tmp_path."""
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))  # no config.ini
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(
        tmp_path / "in.png"
    )
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[20:40, 30:60] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(tmp_path / "small-mask.png")
    Image.fromarray(np.zeros((HEIGHT, WIDTH), dtype=np.uint8)).save(tmp_path / "empty-mask.png")
    (tmp_path / "broken.png").write_bytes(b"this is not a png")
    return tmp_path


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))


def test_inpaint_writes_full_size_images_untouched_outside_the_mask(files, tiny_models_dir, capsys):
    code = cli.main(
        ["run", "inpaint", "--image", str(files / "in.png"), "--mask", str(files / "mask.png"),
         "--models-dir", str(tiny_models_dir), "--model", TINY_SD15, "--prompt", "a cat",
         "--steps", "2", "--seed", "9", "--count", "2", "--grow", "0", "--feather", "2",
         "--out", str(files / "out.png")]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"{files / 'out-1.png'} (seed 9)", f"{files / 'out-2.png'} (seed 10)"]
    original = read(files / "in.png")
    first, second = read(files / "out-1.png"), read(files / "out-2.png")
    assert first.shape == second.shape == original.shape
    outside = np.ones((HEIGHT, WIDTH), dtype=bool)
    outside[18:42, 28:62] = False  # the mask grown by the 2 px feather
    assert np.array_equal(first[outside], original[outside])
    assert not np.array_equal(first[20:40, 30:60], original[20:40, 30:60])
    assert not np.array_equal(first, second)


def test_txt2img_without_image(files, tiny_models_dir):
    out = files / "new.jpg"
    code = cli.main(
        ["run", "txt2img", "--width", "48", "--height", "40", "--prompt", "a boat",
         "--models-dir", str(tiny_models_dir), "--steps", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    assert Image.open(out).size == (48, 40)


def test_clip_skip_and_noise_seed_delta_change_the_picture(files, tiny_models_dir):
    def run(name: str, *extra: str) -> np.ndarray:
        code = cli.main(
            ["run", "txt2img", "--width", "32", "--height", "32", "--prompt", "a boat",
             "--models-dir", str(tiny_models_dir), "--steps", "3", "--seed", "4",
             "--scheduler", "euler_a", "--out", str(files / name), *extra]
        )  # fmt: skip
        assert code == 0
        return read(files / name)

    plain = run("plain.png")
    assert not np.array_equal(run("skip.png", "--clip-skip", "2"), plain)
    assert not np.array_equal(run("delta.png", "--noise-seed-delta", "31337"), plain)


def test_img2img_with_the_default_model(files, tiny_models_dir):
    code = cli.main(
        ["run", "img2img", "--image", str(files / "in.png"), "--prompt", "a boat",
         "--models-dir", str(tiny_models_dir), "--steps", "2", "--out", str(files / "i.png")]
    )  # fmt: skip
    assert code == 0
    assert read(files / "i.png").shape == (HEIGHT, WIDTH, 4)


def test_outpaint_to_an_aspect_ratio_writes_the_grown_canvas(files, tiny_models_dir):
    out = files / "wide.png"
    arguments = ["run", "outpaint", *IMAGE, "--aspect", "16:9", "--steps", "2", "--seed", "4"]
    arguments = [argument.replace("{d}", str(files)) for argument in arguments]
    code = cli.main([*arguments, "--out", str(out), "--models-dir", str(tiny_models_dir)])
    assert code == 0
    written = read(out)
    assert written.shape == (HEIGHT, 114, 4)  # 96x64 grown to 16:9: 9 px left, 9 right
    assert np.array_equal(written[:, 9 : 9 + WIDTH, :3], read(files / "in.png")[..., :3])


def test_upscale_with_lanczos_when_no_upscaler_is_installed(files, tiny_models_dir):
    out = files / "big.png"
    arguments = ["run", "upscale", "--image", str(files / "in.png"), "--scale", "4"]
    code = cli.main([*arguments, "--out", str(out), "--models-dir", str(tiny_models_dir)])
    assert code == 0 and read(out).shape == (4 * HEIGHT, 4 * WIDTH, 4)


def test_fill_works_without_any_model(files, tmp_path):
    code = cli.main(
        ["run", "fill", "--image", str(files / "in.png"), "--mask", str(files / "mask.png"),
         "--models-dir", str(tmp_path / "empty"), "--out", str(files / "filled.png")]
    )  # fmt: skip
    assert code == 0
    filled, original = read(files / "filled.png"), read(files / "in.png")
    assert not np.array_equal(filled[25:35, 35:55], original[25:35, 35:55])
    assert np.array_equal(filled[:5], original[:5])


def test_models_lists_name_family_and_modes(files, tiny_models_dir, capsys):
    assert cli.main(["models", "--models-dir", str(tiny_models_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "FAMILY", "MODES"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows[TINY_SD15][1:3] == ["sd15", "inpaint,img2img,txt2img"]
    assert rows[TINY_SD15_INPAINTING][1:3] == ["sd15", "inpaint"]


def test_models_with_none_installed(files, tmp_path, capsys):
    assert cli.main(["models", "--models-dir", str(tmp_path / "none")]) == 0
    assert "No models found" in capsys.readouterr().err


IMAGE = ["--image", "{d}/in.png"]
BAD_INPUTS = {
    "missing image": (["inpaint", "--image", "{d}/nope.png", "--mask", "{d}/mask.png"], "exist"),
    "undecodable image": (
        ["inpaint", "--image", "{d}/broken.png", "--mask", "{d}/mask.png"],
        "read",
    ),
    "mask of another size": (["inpaint", *IMAGE, "--mask", "{d}/small-mask.png"], "must match"),
    "empty mask": (["inpaint", *IMAGE, "--mask", "{d}/empty-mask.png"], "mask is empty"),
    "no mask for inpaint": (["inpaint", *IMAGE], "needs --mask"),
    "strength above 1": (["img2img", *IMAGE, "--strength", "1.5"], "strength"),
    "strength below 0": (["img2img", *IMAGE, "--strength", "-1"], "strength"),
    "no steps": (["img2img", *IMAGE, "--steps", "0"], "steps"),
    "absurd steps": (["img2img", *IMAGE, "--steps", "5000"], "steps"),
    "zero size": (["txt2img", "--width", "0", "--height", "64"], "empty"),
    "gigantic size": (["txt2img", "--width", "90000", "--height", "90000"], "too large"),
    "unknown model": (["img2img", *IMAGE, "--model", "nope"], "not found"),
    "clip skip 0": (["img2img", *IMAGE, "--clip-skip", "0"], "clip_skip"),
    "clip skip past the text encoder": (["img2img", *IMAGE, "--clip-skip", "3"], "2 layers"),
    "negative noise seed delta": (["img2img", *IMAGE, "--noise-seed-delta", "-1"], "delta"),
    "unknown output format": (["img2img", *IMAGE, "--out", "{d}/x.nope"], "format"),
    "output folder missing": (["img2img", *IMAGE, "--out", "{d}/no/x.png"], "folder"),
    "aspect 0:1": (["outpaint", *IMAGE, "--aspect", "0:1"], "aspect: '0:1' is not"),
    "aspect wide": (["outpaint", *IMAGE, "--aspect", "wide"], "W:H"),
    "extend by nothing": (["outpaint", *IMAGE, "--extend", "0,0,0,0"], "extends by nothing"),
    "extend of 3 sides": (["outpaint", *IMAGE, "--extend", "1,2,3"], "LEFT,TOP,RIGHT,BOTTOM"),
    "upscale by 3": (["upscale", *IMAGE, "--scale", "3"], "scale"),
    "tiling an inpaint": (
        ["inpaint", *IMAGE, "--mask", "{d}/mask.png", "--tiling"],
        "edges are not the picture's edges",
    ),
    "unknown refine": (["img2img", *IMAGE, "--refine", "always"], "refine"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, files, tiny_models_dir, capsys):
    arguments, message = BAD_INPUTS[case]
    arguments = [argument.replace("{d}", str(files)) for argument in arguments]
    if "--out" not in arguments:
        arguments += ["--out", str(files / "out.png")]
    before = sorted(files.rglob("*"))
    code = cli.main(["run", "--steps", "2", "--models-dir", str(tiny_models_dir), *arguments])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert error.startswith("inlayer: error:") and "\n" not in error and message in error
    assert sorted(files.rglob("*")) == before


def test_decompression_bomb_is_refused(files, monkeypatch, capsys):
    monkeypatch.setattr(cli, "MAX_PIXELS", 1000)  # the 96x64 input is then far too big
    code = cli.main(
        ["run", "fill", "--image", str(files / "in.png"), "--mask", str(files / "mask.png"),
         "--out", str(files / "out.png")]
    )  # fmt: skip
    assert code == 2
    assert "96x64, larger than 1000 pixels" in capsys.readouterr().err
    assert not (files / "out.png").exists()


def test_pickled_checkpoint_without_opt_in(files, tmp_path, capsys):
    models = tmp_path / "pickles"
    models.mkdir()
    (models / "old.ckpt").write_bytes(b"\x80\x04")
    code = cli.main(
        ["run", "txt2img", "--width", "32", "--height", "32", "--model", "old",
         "--models-dir", str(models), "--out", str(files / "out.png")]
    )  # fmt: skip
    assert code == 2
    assert "--allow-pickle" in capsys.readouterr().err


def test_output_names_for_variations(tmp_path):
    assert cli.output_paths(tmp_path / "a.png", 1) == [tmp_path / "a.png"]
    assert cli.output_paths(tmp_path / "a.png", 2) == [tmp_path / "a-1.png", tmp_path / "a-2.png"]
