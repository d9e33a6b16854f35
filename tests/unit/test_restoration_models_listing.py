"""The restore modes' model folders: `inlayer models` lists them with what each does, and
`inlayer models pull` puts its short names where the modes look."""

from __future__ import annotations

from inlayer.core import cli as core_cli
from inlayer.core.client.protocol import AddOnKind
from inlayer.core.models import ModelRegistry
from inlayer.core.settings import Settings
from inlayer.packaging import cli
from tests.fixtures.image_models import DRUNET, LAMA, RESTOREFORMER


def test_models_lists_the_image_model_folders(
    restoration_models_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "facedetection").mkdir()
    (tmp_path / "facedetection" / "yunet.onnx").write_bytes(b"onnx")
    code = core_cli.main(
        ["models", "--models-dir", str(restoration_models_dir), "--models-dir", str(tmp_path)]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line for line in lines if line}
    assert "object remover" in listed[LAMA] and "inpaint/" in listed[LAMA]
    assert "face restorer" in listed[RESTOREFORMER]
    assert "repair model" in listed[DRUNET] and "upscale_models/" in listed[DRUNET]
    assert "face detector" in listed["yunet"]


def test_the_face_restorers_are_listed_with_the_add_ons(restoration_models_dir):
    """/v1/add-ons names them, so that a plug-in can offer them for `restore_faces`."""
    listed = {a.name: a for a in ModelRegistry([restoration_models_dir]).add_ons()}
    assert listed[RESTOREFORMER].kind == AddOnKind.FACE_RESTORER
    assert listed[RESTOREFORMER].source.endswith(f"{RESTOREFORMER}.safetensors")
    assert listed[DRUNET].kind == AddOnKind.UPSCALER  # a repair model lies with the upscalers
    assert LAMA not in listed


def test_pull_puts_the_remover_and_the_face_detector_where_they_are_found(tmp_path):
    settings = Settings(models_dirs=(tmp_path / "models",))
    _, lama = cli.pull_target("lama", settings)
    assert lama == tmp_path / "models" / "inpaint" / "lama.safetensors"
    _, yunet = cli.pull_target("yunet", settings)
    assert yunet == tmp_path / "models" / "facedetection" / "yunet.onnx"
    assert cli.existing_copy("yunet", yunet, settings) is None
    yunet.parent.mkdir(parents=True)
    yunet.write_bytes(b"onnx")
    assert cli.existing_copy("yunet", yunet, settings) == yunet
