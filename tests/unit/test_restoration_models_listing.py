"""The restore modes' model folders: `inlayer models` lists them with what each does, and
`inlayer models pull` puts its short names where the modes look."""

from __future__ import annotations

from inlayer.core import cli as core_cli
from inlayer.core.models import ModelRegistry
from inlayer.core.restoration_models import ModelSource
from inlayer.core.settings import Settings
from inlayer.packaging import cli
from tests.fixtures.image_models import DRUNET, LAMA, RESTOREFORMER


def test_models_lists_the_image_model_folders(
    restoration_models_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "facedetection").mkdir()
    (tmp_path / "facedetection" / "yunet.onnx").write_bytes(b"onnx")
    (tmp_path / "rembg").mkdir()
    (tmp_path / "rembg" / "isnet.onnx").write_bytes(b"onnx")
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
    assert "subject segmenter" in listed["isnet"] and "rembg/" in listed["isnet"]


def test_each_image_model_field_lists_what_it_may_name(restoration_models_dir):
    """/v1/image-models, which the plug-ins' restore lists show: a face restorer for
    `restore_faces`, a repair model (it lies with the upscalers) for `denoise`, the remover for
    `remover`."""
    listed = ModelSource(ModelRegistry([restoration_models_dir])).names_by_field()
    assert listed["restore_faces"] == [RESTOREFORMER]
    assert DRUNET in listed["denoise"] and DRUNET in listed["colorize"]
    assert listed["remover"] == [LAMA]


def test_pull_puts_the_remover_face_detector_and_face_restorer_where_they_are_found(tmp_path):
    settings = Settings(models_dirs=(tmp_path / "models",))
    _, lama = cli.pull_target("lama", settings)
    assert lama == tmp_path / "models" / "inpaint" / "lama.safetensors"
    _, mat = cli.pull_target("mat", settings)
    assert mat == tmp_path / "models" / "inpaint" / "mat.safetensors"
    _, yunet = cli.pull_target("yunet", settings)
    assert yunet == tmp_path / "models" / "facedetection" / "yunet.onnx"
    assert cli.existing_copy("yunet", yunet, settings) is None
    yunet.parent.mkdir(parents=True)
    yunet.write_bytes(b"onnx")
    assert cli.existing_copy("yunet", yunet, settings) == yunet
    _, gfpgan = cli.pull_target("gfpgan", settings)
    assert gfpgan == tmp_path / "models" / "facerestore_models" / "gfpgan.safetensors"
    # A safetensors copy under the published name (GFPGANv1.4) counts; the pickled one does not.
    gfpgan.parent.mkdir()
    (gfpgan.parent / "GFPGANv1.4.pth").write_bytes(b"pickle")
    assert cli.existing_copy("gfpgan", gfpgan, settings) is None
    (gfpgan.parent / "GFPGANv1.4.safetensors").write_bytes(b"tensors")
    assert cli.existing_copy("gfpgan", gfpgan, settings) == gfpgan.parent / "GFPGANv1.4.safetensors"
    _, isnet = cli.pull_target("isnet", settings)
    assert isnet == tmp_path / "models" / "rembg" / "isnet.onnx"


def test_a_model_in_the_wrong_folder_is_left_out_of_that_folder_s_list(
    restoration_models_dir, tmp_path
):
    """A face restorer put into inpaint/ is no remover: the remover list (and so the default
    remover) leaves it out, told from its tensors without loading it."""
    import shutil

    misplaced = tmp_path / "inpaint" / f"{RESTOREFORMER}.safetensors"
    misplaced.parent.mkdir()
    shutil.copy(restoration_models_dir / "facerestore_models" / misplaced.name, misplaced)
    listed = ModelSource(ModelRegistry([tmp_path, restoration_models_dir])).names_by_field()
    assert listed["remover"] == [LAMA]
