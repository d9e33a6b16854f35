"""The AUTOMATIC1111 field table, its docs page, and the stored options."""

from __future__ import annotations

from pathlib import Path

import pytest

from inlayer.core.client.protocol import InvalidRequest
from inlayer.server.a1111_fields import TABLES, TXT2IMG_FIELDS, check_fields, markdown
from inlayer.server.a1111_options import A1111Options

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "a1111.md"


def test_docs_page_is_written_from_the_table() -> None:
    assert DOCS_PAGE.read_text(encoding="utf-8") == markdown(), (
        "docs/a1111.md is stale: python -m inlayer.server.a1111_fields > docs/a1111.md"
    )


def test_each_table_names_a_field_once() -> None:
    for table in TABLES.values():
        names = [rule.name for rule in table]
        assert len(names) == len(set(names))


def test_a_feature_switched_off_passes_and_switched_on_is_refused() -> None:
    check_fields({"refiner_checkpoint": None, "enable_hr": True, "hr_scale": 4}, TXT2IMG_FIELDS)
    with pytest.raises(InvalidRequest) as refused:
        check_fields({"refiner_checkpoint": "sdxl-refiner"}, TXT2IMG_FIELDS)
    assert refused.value.field == "refiner_checkpoint"
    assert "not available" in refused.value.message


def test_the_hires_fix_refuses_what_it_would_drop() -> None:
    check_fields({"enable_hr": True, "hr_prompt": "", "hr_sampler_name": None}, TXT2IMG_FIELDS)
    with pytest.raises(InvalidRequest) as refused:
        check_fields({"enable_hr": True, "hr_prompt": "sharper"}, TXT2IMG_FIELDS)
    assert refused.value.field == "hr_prompt"


def test_an_always_on_script_without_arguments_asks_for_nothing() -> None:
    check_fields({"alwayson_scripts": {"controlnet": {"args": []}}}, TXT2IMG_FIELDS)
    with pytest.raises(InvalidRequest, match="always on script ADetailer not found"):
        check_fields({"alwayson_scripts": {"ADetailer": {"args": [True]}}}, TXT2IMG_FIELDS)


def test_options_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "a1111-options.json"
    A1111Options(path).update({"send_seed": False, "sd_model_checkpoint": "tiny"})
    reread = A1111Options(path)
    assert reread.all()["send_seed"] is False
    assert reread.checkpoint() == "tiny"
    assert reread.all()["samples_format"] == "png"  # A1111's default, never written
    with pytest.raises(InvalidRequest):
        reread.update({"samples_format": "bmp"})
