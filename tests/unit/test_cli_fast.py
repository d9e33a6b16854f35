"""The `inlayer` command's fast-edit options: --preset, --lora, --vae, --timings, and the LoRAs
and tiny autoencoders `inlayer models` lists."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from inlayer.core import cli
from tests.fixtures.models import TINY_LORA, TINY_SD15, TINY_SPEED_LORA, TINY_TAESD

SIDE = 32


@pytest.fixture
def folders(tmp_path, monkeypatch, tiny_models_dir, tiny_add_ons_dir):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))  # no config.ini
    Image.fromarray(np.full((SIDE, SIDE, 3), 90, dtype=np.uint8)).save(tmp_path / "in.png")
    mask = np.zeros((SIDE, SIDE), dtype=np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    models = ["--models-dir", str(tiny_models_dir), "--models-dir", str(tiny_add_ons_dir)]
    return tmp_path, models


def inpaint(tmp_path, models, *options: str) -> list[str]:
    return [
        "run", "inpaint", "--image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
        "--out", str(tmp_path / "out.png"), "--model", TINY_SD15, "--seed", "1", *models, *options,
    ]  # fmt: skip


def test_timings_are_one_json_object_on_the_last_line(folders, capsys):
    tmp_path, models = folders
    assert cli.main(inpaint(tmp_path, models, "--preset", "fast", "--timings")) == 0
    timings = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert set(timings) == {"load", "prepare", "diffusion", "finish", "total"}
    assert timings["total"] >= timings["diffusion"] > 0


def test_loras_vae_and_scheduler_options_reach_the_run(folders, capsys):
    tmp_path, models = folders
    options = ("--lora", f"{TINY_LORA}:0.5", "--vae", TINY_TAESD, "--steps", "2",
               "--scheduler", "euler_trailing", "--preset", "quality")  # fmt: skip
    assert cli.main(inpaint(tmp_path, models, *options)) == 0
    first = np.asarray(Image.open(tmp_path / "out.png"))
    assert cli.main(inpaint(tmp_path, models, *options[2:])) == 0  # without the LoRA
    assert not np.array_equal(first, np.asarray(Image.open(tmp_path / "out.png")))


def test_a_missing_lora_is_one_line_and_exit_2(folders, capsys):
    tmp_path, models = folders
    assert cli.main(inpaint(tmp_path, models, "--lora", "nowhere:0.7")) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "nowhere" in error
    assert not (tmp_path / "out.png").exists()


def test_without_the_fast_pieces_a_cpu_run_prints_how_to_get_them(
    tmp_path, monkeypatch, tiny_models_dir, capsys
):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    arguments = ["run", "txt2img", "--width", "32", "--height", "32", "--steps", "1",
                 "--out", str(tmp_path / "out.png"), "--models-dir", str(tiny_models_dir),
                 "--model", TINY_SD15, "--device", "cpu"]  # fmt: skip
    assert cli.main(arguments) == 0
    assert "inlayer models pull lcm-lora-sd15" in capsys.readouterr().err


def test_models_lists_the_loras_and_tiny_autoencoders_with_their_family(folders, capsys):
    _, models = folders
    assert cli.main(["models", *models]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines.index(next(line for line in lines if line.split()[:2] == ["NAME", "KIND"]))
    rows = {line.split()[0]: line.split() for line in lines[header + 1 :]}
    assert rows[TINY_SPEED_LORA][1:4] == ["lora", "?", "lcm"]  # 32 wide: no known family
    assert rows[TINY_TAESD][1:4] == ["vae", "sd15", "-"]
