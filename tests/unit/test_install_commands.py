"""The packaging commands end to end through `inlayer`: install-plugins, config, models pull, and
`inlayer models` over AUTOMATIC1111 / ComfyUI folders named in config.ini."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from inlayer.core.cli import main
from inlayer.core.settings import Settings
from inlayer.packaging import cli
from inlayer.packaging.plugins import CLIENT_PACKAGE, KRITA_PLUGIN_NAME


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty Linux home folder, with Inlayer's config and data folders inside it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "GIMP3_DIRECTORY", "INLAYER_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("INLAYER_MODELS_DIRS", "INLAYER_A1111_DIR", "INLAYER_COMFYUI_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(home / ".config" / "inlayer"))
    return home


def write_settings(home: Path, text: str) -> None:
    path = home / ".config" / "inlayer" / "config.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_install_plugins_finds_the_editors_in_the_home_folder(home, capsys):
    for version in ("3.0", "3.2"):
        (home / ".config" / "GIMP" / version).mkdir(parents=True)
    (home / ".local" / "share" / "krita").mkdir(parents=True)

    assert main(["install-plugins"]) == 0

    for version in ("3.0", "3.2"):
        plugin = home / ".config" / "GIMP" / version / "plug-ins" / "inlayer"
        assert (plugin / CLIENT_PACKAGE / "protocol.py").is_file()
    package = home / ".local" / "share" / "krita" / "pykrita" / KRITA_PLUGIN_NAME
    assert (package / CLIENT_PACKAGE / "http_client.py").is_file()
    assert "enable_inlayer_krita=true" in (home / ".config" / "kritarc").read_text()
    assert "GIMP/3.2/plug-ins/inlayer" in capsys.readouterr().out

    assert main(["install-plugins", "--uninstall"]) == 0
    assert not package.exists()
    assert not (home / ".config" / "GIMP" / "3.0" / "plug-ins" / "inlayer").exists()


def test_install_plugins_says_when_no_editor_was_found(home, capsys):
    assert main(["install-plugins"]) == 0
    out = capsys.readouterr().out
    assert "no GIMP 3 profile found" in out
    assert "no Krita resource folder found" in out


def test_profile_dir_installs_one_editor_there(home, tmp_path):
    profile = tmp_path / "gimp-profile"
    assert main(["install-plugins", "--gimp", "--profile-dir", str(profile), "--link"]) == 0
    assert (profile / "plug-ins" / "inlayer" / CLIENT_PACKAGE / "wire.py").is_symlink()

    resources, kritarc = tmp_path / "krita-resources", tmp_path / "kritarc"
    argv = [
        "install-plugins",
        "--krita",
        "--profile-dir",
        str(resources),
        "--kritarc",
        str(kritarc),
    ]
    assert main(argv) == 0
    assert (resources / "pykrita" / KRITA_PLUGIN_NAME / CLIENT_PACKAGE).is_dir()
    assert kritarc.read_text() == "[python]\nenable_inlayer_krita=true\n"
    # The user's real kritarc is not touched.
    assert not (home / ".config" / "kritarc").exists()


def test_profile_dir_needs_one_editor(home, tmp_path, capsys):
    assert main(["install-plugins", "--profile-dir", str(tmp_path)]) == 2
    assert "add --gimp or --krita" in capsys.readouterr().err


def test_krita_zip_command(home, tmp_path):
    output = tmp_path / "out" / "inlayer_krita.zip"
    assert main(["install-plugins", "--krita-zip", str(output)]) == 0
    with zipfile.ZipFile(output) as archive:
        assert f"{KRITA_PLUGIN_NAME}/{CLIENT_PACKAGE}/protocol.py" in archive.namelist()


def test_config_init_writes_the_template_once(home, capsys):
    assert main(["config", "--init"]) == 0
    path = home / ".config" / "inlayer" / "config.ini"
    assert "[models]" in path.read_text()
    assert main(["config", "--init"]) == 0
    out = capsys.readouterr().out
    assert f"{path} exists; left as it is" in out
    assert str(home / ".local" / "share" / "inlayer" / "models") in out


def test_config_shows_the_settings_that_change_what_runs(home, capsys, monkeypatch):
    monkeypatch.setenv("INLAYER_BACKEND", "openvino")
    monkeypatch.setenv("INLAYER_A1111_AUTH", "none")
    monkeypatch.setenv("INLAYER_CONTENT_CREDENTIALS", "true")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "backend: openvino" in out
    assert "A1111 routes need the token: False" in out
    assert "Content Credentials on written images: True" in out


def test_pull_targets_the_first_models_folder(tmp_path):
    settings = Settings(models_dirs=(tmp_path / "first", tmp_path / "second"))
    assert cli.pull_target("sd15-inpainting", settings) == (
        cli.KNOWN_MODELS["sd15-inpainting"].repo_id,
        tmp_path / "first" / "sd15-inpainting",
    )
    assert cli.pull_target("owner/some-model", settings) == (
        "owner/some-model",
        tmp_path / "first" / "some-model",
    )


@pytest.mark.parametrize("name", ["no-such-model", "a/b/c", "/models"])
def test_pull_refuses_what_is_neither_a_known_name_nor_a_repo(home, name, capsys):
    assert main(["models", "pull", name]) == 2
    assert "neither a recommended model" in capsys.readouterr().err


def test_pull_uses_a_checkpoint_already_in_an_a1111_folder(home, tmp_path, capsys):
    checkpoints = tmp_path / "stable-diffusion-webui" / "models" / "Stable-diffusion"
    checkpoints.mkdir(parents=True)
    (checkpoints / "sd-v1-5-inpainting.safetensors").write_bytes(b"weights")
    write_settings(home, f"[models]\na1111 = {checkpoints.parent.parent}\n")

    assert main(["models", "pull", "sd15-inpainting"]) == 0

    assert "sd-v1-5-inpainting.safetensors" in capsys.readouterr().out
    assert not (home / ".local" / "share" / "inlayer" / "models").exists()


def test_an_interrupted_download_is_not_a_copy(tmp_path):
    settings = Settings(models_dirs=(tmp_path,))
    target = tmp_path / "sd15"
    (target / "unet").mkdir(parents=True)
    (target / "model_index.json").write_text("{}")
    partial = target / ".cache" / "huggingface" / "download" / "unet"
    partial.mkdir(parents=True)
    (partial / "weights.incomplete").write_bytes(b"half")
    assert cli.existing_copy("sd15", target, settings) is None

    (partial / "weights.incomplete").unlink()
    assert cli.existing_copy("sd15", target, settings) == target


def test_a_folder_of_the_same_name_in_another_models_folder_is_a_copy(tmp_path):
    settings = Settings(models_dirs=(tmp_path / "first", tmp_path / "second"))
    elsewhere = tmp_path / "second" / "some-model"
    elsewhere.mkdir(parents=True)
    (elsewhere / "model_index.json").write_text("{}")
    _, target = cli.pull_target("owner/some-model", settings)
    assert cli.existing_copy("owner/some-model", target, settings) == elsewhere


def test_pull_failure_is_reported_without_a_traceback(home, capsys):
    """Offline in tests (HF_HUB_OFFLINE=1): the download cannot happen, and the user is told."""
    assert main(["models", "pull", "inlayer-tests/no-such-repo"]) == 1
    assert "cannot download inlayer-tests/no-such-repo" in capsys.readouterr().err


def test_models_lists_checkpoints_of_other_tools(home, tmp_path, tiny_models_dir, capsys):
    comfyui = tmp_path / "ComfyUI"
    checkpoints = comfyui / "models" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("tiny-sd15-single.safetensors", "tiny-sd15-single.config"):
        source = tiny_models_dir / name
        if source.is_dir():
            shutil.copytree(source, checkpoints / name)
        else:
            shutil.copy(source, checkpoints / name)
    write_settings(home, f"[models]\ncomfyui = {comfyui}\n")

    assert main(["models"]) == 0

    out = capsys.readouterr().out
    (row,) = [line.split() for line in out.splitlines() if line.startswith("tiny-sd15-single")]
    assert row[-1] == str(checkpoints / "tiny-sd15-single.safetensors")


def test_pull_puts_the_fast_pieces_where_inlayer_looks_for_them(tmp_path):
    settings = Settings(models_dirs=(tmp_path / "models",))
    repo, lora = cli.pull_target("lcm-lora-sd15", settings)
    assert repo == "latent-consistency/lcm-lora-sdv1-5"
    assert lora == tmp_path / "models" / "loras" / "lcm-lora-sd15.safetensors"
    _, taesd = cli.pull_target("taesd", settings)
    assert taesd == tmp_path / "models" / "vae_approx" / "taesd"
    assert cli.existing_copy("lcm-lora-sd15", lora, settings) is None
    lora.parent.mkdir(parents=True)
    lora.write_bytes(b"weights")
    assert cli.existing_copy("lcm-lora-sd15", lora, settings) == lora
    (taesd).mkdir(parents=True)
    (taesd / "config.json").write_text("{}")
    assert cli.existing_copy("taesd", taesd, settings) == taesd
