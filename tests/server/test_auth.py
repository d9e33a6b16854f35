"""The token file and the Host names the server answers, without a server process."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from inlayer.core.client.protocol import RGBAImage
from inlayer.server.auth import allowed_hosts, load_or_create_token
from inlayer.server.jobs import downscale_preview


def test_token_is_created_owner_only_and_then_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INLAYER_TOKEN", raising=False)
    token_file = tmp_path / "config" / "token"
    token = load_or_create_token(token_file)
    assert len(token) >= 32
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert load_or_create_token(token_file) == token


def test_a_loosened_token_file_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INLAYER_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text("kept-token\n")
    token_file.chmod(0o644)
    assert load_or_create_token(token_file) == "kept-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_inlayer_token_wins_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INLAYER_TOKEN", "from-env")
    token_file = tmp_path / "token"
    assert load_or_create_token(token_file) == "from-env"
    assert not token_file.exists()


def test_loopback_servers_answer_their_loopback_names_only() -> None:
    assert allowed_hosts("127.0.0.1", 7878) == {
        "127.0.0.1:7878",
        "localhost:7878",
        "[::1]:7878",
    }
    assert allowed_hosts("::1", 80) == {"127.0.0.1:80", "localhost:80", "[::1]:80"}
    assert allowed_hosts("192.168.1.5", 7878) == {"192.168.1.5:7878"}
    # Bound to every interface, the token is the only guard (the server warns loudly).
    assert allowed_hosts("0.0.0.0", 7878) is None


def test_previews_are_shrunk_to_256_px() -> None:
    width, height = 600, 300
    data = bytes(range(256)) * (width * height * 4 // 256)
    preview = downscale_preview(RGBAImage(width, height, data))
    assert (preview.width, preview.height) == (200, 100)
    preview.validate()
    # Nearest neighbour: the first pixel of every third row and column.
    assert preview.data[:8] == data[:4] + data[12:16]
    small = RGBAImage(64, 64, bytes(64 * 64 * 4))
    assert downscale_preview(small) is small
