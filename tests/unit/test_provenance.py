"""Every file `inlayer run` writes says it was made with AI; `inlayer inspect` reads it back;
Content Credentials, on request, are signed and catch a changed file."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from inlayer.core import cli, content_credentials
from inlayer.core.client.protocol import PROMPTLESS_MODES, Mode
from inlayer.core.provenance import (
    DIGITAL_SOURCE_TYPES,
    IPTC_TERMS,
    a1111_parameters,
    read_origin,
    xmp_packet,
)
from tests.fixtures.guided_models import TINY_INSTRUCT
from tests.fixtures.image_models import DRUNET
from tests.fixtures.models import TINY_SD15, TINY_SD15_INPAINTING

WIDTH, HEIGHT = 64, 48


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(
        tmp_path / "in.png"
    )
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path


def run(files, tiny_models_dir, mode: Mode, out: str, *extra: str, repair: str = "") -> None:
    arguments = ["run", mode.value, "--out", str(files / out), "--seed", "4", *extra]
    if mode != Mode.TXT2IMG:
        arguments += ["--image", str(files / "in.png")]
    if mode in (Mode.INPAINT, Mode.FILL, Mode.REMOVE):
        arguments += ["--mask", str(files / "mask.png")]
    if mode == Mode.REMOVE:
        arguments += ["--remover", "fill"]
    if mode == Mode.SELECT:  # noise has no subject: a red square on grey has one
        picture = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
        picture[12:36, 20:44] = (200, 30, 30)
        Image.fromarray(picture).save(files / "subject.png")
        arguments += ["--image", str(files / "subject.png")]
    if mode == Mode.RESTORE:
        arguments += ["--denoise", repair]
    if mode == Mode.OUTPAINT:
        arguments += ["--extend", "0,0,8,0"]
    if mode == Mode.UPSCALE:  # Lanczos: no upscaler model installed, no refine asked for
        arguments += ["--scale", "2"]
    elif mode not in PROMPTLESS_MODES:
        model = {Mode.INPAINT: TINY_SD15_INPAINTING, Mode.EDIT: TINY_INSTRUCT}.get(mode, TINY_SD15)
        arguments += ["--models-dir", str(tiny_models_dir), "--model", model, "--steps", "2"]
        arguments += ["--prompt", "a lighthouse <at> dusk & more"]
    if mode == Mode.TXT2IMG:
        arguments += ["--width", "40", "--height", "32"]
    assert cli.main(arguments) == 0


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_each_written_file_names_its_digital_source_type(
    files, tiny_models_dir, mode, suffix, request
):
    repair = ""
    if mode == Mode.RESTORE:  # a repair model's file
        models = request.getfixturevalue("restoration_models_dir")
        repair = str(models / "upscale_models" / f"{DRUNET}.safetensors")
    # The instruction-edit model lies in the guides' models folder.
    guides = ["--models-dir", str(request.getfixturevalue("tiny_guides_dir"))]
    extra = guides if mode == Mode.EDIT else ()
    run(files, tiny_models_dir, mode, f"out{suffix}", *extra, repair=repair)

    origin = read_origin(files / f"out{suffix}")
    assert origin.digital_source_type == DIGITAL_SOURCE_TYPES[mode]
    assert origin.synthetic
    assert origin.creator_tool.startswith("Inlayer ")
    assert origin.parameters["mode"] == mode.value
    assert origin.parameters["seed"] == 4
    if mode not in (*PROMPTLESS_MODES, Mode.UPSCALE):  # run() gives upscale no prompt
        assert origin.prompt == "a lighthouse <at> dusk & more"
        assert origin.ai_system == f"Inlayer ({origin.parameters['model']})"
    if suffix == ".png":  # AUTOMATIC1111's generation data, which image browsers show
        assert "Seed: 4" in origin.a1111_parameters
        assert "Version: Inlayer" in origin.a1111_parameters


def test_the_digital_source_type_follows_what_each_mode_makes():
    assert DIGITAL_SOURCE_TYPES == {
        Mode.TXT2IMG: IPTC_TERMS + "trainedAlgorithmicMedia",
        Mode.INPAINT: IPTC_TERMS + "compositeWithTrainedAlgorithmicMedia",
        Mode.IMG2IMG: IPTC_TERMS + "compositeWithTrainedAlgorithmicMedia",
        Mode.FILL: IPTC_TERMS + "compositeSynthetic",
        Mode.REMOVE: IPTC_TERMS + "compositeWithTrainedAlgorithmicMedia",
        Mode.RESTORE: IPTC_TERMS + "compositeWithTrainedAlgorithmicMedia",
        Mode.SELECT: IPTC_TERMS + "algorithmicallyEnhanced",
        Mode.OUTPAINT: IPTC_TERMS + "compositeWithTrainedAlgorithmicMedia",
        Mode.UPSCALE: IPTC_TERMS + "compositeWithTrainedAlgorithmicMedia",
        Mode.EDIT: IPTC_TERMS + "compositeWithTrainedAlgorithmicMedia",
    }


def test_xmp_escapes_what_a_prompt_may_hold(tmp_path):
    parameters = {"mode": "txt2img", "prompt": '</rdf:Description> & "quotes" <b>', "seed": 1}
    packet = xmp_packet(parameters)
    assert '</rdf:Description> & "quotes" <b>' not in packet
    Image.new("RGB", (4, 4)).save(tmp_path / "x.jpg", xmp=packet.encode())
    origin = read_origin(tmp_path / "x.jpg")
    assert origin.prompt == parameters["prompt"]
    assert origin.parameters == parameters


def test_a1111_text_is_the_layout_a1111_writes():
    text = a1111_parameters(
        {"mode": "img2img", "prompt": "a cat", "negative_prompt": "blur", "steps": 4,
         "guidance": 7.0, "seed": 11, "model": "m", "strength": 0.6, "scheduler": "euler_a"},
        512, 384,
    )  # fmt: skip
    lines = text.split("\n")
    assert lines[:2] == ["a cat", "Negative prompt: blur"]
    assert lines[2].startswith(
        "Steps: 4, Sampler: Euler a, CFG scale: 7.0, Seed: 11, Size: 512x384, Model: m, "
        "Denoising strength: 0.6, Version: Inlayer "
    )


def test_inspect_prints_the_origin(files, tiny_models_dir, capsys):
    run(files, tiny_models_dir, Mode.TXT2IMG, "out.png")
    capsys.readouterr()
    assert cli.main(["inspect", str(files / "out.png")]) == 0
    out = capsys.readouterr().out
    assert "Origin: made by an AI model (trained algorithmic media)" in out
    assert "Prompt: a lighthouse <at> dusk & more" in out
    assert "Content Credentials: none" in out
    parameters_line = next(line for line in out.splitlines() if line.startswith("Inlayer param"))
    assert json.loads(parameters_line.split(": ", 1)[1])["seed"] == 4


def test_inspect_says_when_a_file_states_nothing(files, capsys):
    assert cli.main(["inspect", str(files / "in.png")]) == 0
    assert "Origin: not stated" in capsys.readouterr().out
    assert cli.main(["inspect", str(files / "missing.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_content_credentials_are_signed_and_catch_a_changed_file(files, tiny_models_dir, capsys):
    run(files, tiny_models_dir, Mode.INPAINT, "signed.jpg", "--content-credentials")

    credentials = content_credentials.read_credentials(files / "signed.jpg")
    assert credentials is not None
    assert credentials.validation == "valid"
    assert credentials.claim_generator.startswith("Inlayer ")
    assert credentials.actions == ("c2pa.created", "c2pa.edited")
    assert set(credentials.digital_source_types) == {DIGITAL_SOURCE_TYPES[Mode.INPAINT]}
    # The XMP marks are still there beside the manifest.
    assert (
        read_origin(files / "signed.jpg").digital_source_type == DIGITAL_SOURCE_TYPES[Mode.INPAINT]
    )

    # The key was made on first use, for the owner only, and is reused.
    folder = files / "config" / content_credentials.FOLDER_NAME
    key = folder / content_credentials.KEY_FILE
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    before = key.read_bytes()
    run(files, tiny_models_dir, Mode.FILL, "second.png", "--content-credentials")
    assert key.read_bytes() == before

    # Changed pixels no longer match what was signed.
    data = bytearray((files / "signed.jpg").read_bytes())
    data[-200] ^= 0xFF
    (files / "signed.jpg").write_bytes(bytes(data))
    changed = content_credentials.read_credentials(files / "signed.jpg")
    assert changed is not None and changed.validation != "valid"


def test_content_credentials_refuse_a_format_they_cannot_sign(files, capsys):
    code = cli.main(
        ["run", "fill", "--image", str(files / "in.png"), "--mask", str(files / "mask.png"),
         "--out", str(files / "out.bmp"), "--content-credentials"]
    )  # fmt: skip
    assert code == 2
    assert "PNG, JPEG and WebP" in capsys.readouterr().err
    assert not (files / "out.bmp").exists()
