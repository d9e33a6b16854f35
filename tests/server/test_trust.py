"""What the server promises about trust: images it returns say they were made with AI (and are
signed when the user asks), and AUTOMATIC1111 clients that cannot send a token are served only
when the user opts in, only on loopback, with the Host and Origin checks kept."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inlayer.core import content_credentials
from inlayer.core.client.protocol import Mode
from inlayer.core.provenance import DIGITAL_SOURCE_TYPES, read_origin
from tests.fixtures.models import TINY_SD15
from tests.fixtures.server import REPO_ROOT, ServerProcess, running_server
from tests.server.helpers import exchange, post_json

TXT2IMG = {
    "prompt": "a quiet harbour",
    "width": 64,
    "height": 64,
    "steps": 2,
    "seed": 8,
    "override_settings": {"sd_model_checkpoint": TINY_SD15},
}


def saved(data: str, path: Path) -> Path:
    path.write_bytes(base64.b64decode(data))
    return path


def test_a1111_images_say_they_were_made_with_ai(
    inlayer_server: ServerProcess, tmp_path: Path
) -> None:
    answer = post_json(inlayer_server, "/sdapi/v1/txt2img", TXT2IMG)
    assert answer.status == 200, answer.body[:300]
    origin = read_origin(saved(answer.json()["images"][0], tmp_path / "image.png"))
    assert origin.digital_source_type == DIGITAL_SOURCE_TYPES[Mode.TXT2IMG]
    assert origin.prompt == "a quiet harbour"
    assert origin.parameters["seed"] == 8
    assert "Seed: 8" in origin.a1111_parameters  # what A1111's own PNG info shows
    # Not signed unless the user asked for it.
    assert content_credentials.read_credentials(tmp_path / "image.png") is None


@pytest.fixture(scope="module")
def trusting_server(
    tiny_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server started with a1111_auth = none and content_credentials = true."""
    with running_server(
        tmp_path_factory.mktemp("trusting-config"),
        tiny_models_dir,
        env={"INLAYER_A1111_AUTH": "none", "INLAYER_CONTENT_CREDENTIALS": "true"},
    ) as server:
        yield server


def test_opted_in_a1111_routes_answer_without_a_token(trusting_server: ServerProcess) -> None:
    assert exchange(trusting_server, "GET", "/sdapi/v1/sd-models", auth=None).status == 200
    answer = post_json(trusting_server, "/sdapi/v1/txt2img", TXT2IMG, auth=None)
    assert answer.status == 200, answer.body[:300]
    assert "without the token" in trusting_server.log()


def test_the_rest_still_needs_the_token(trusting_server: ServerProcess) -> None:
    assert exchange(trusting_server, "GET", "/v1/models", auth=None).status == 401
    assert exchange(trusting_server, "GET", "/openapi.json", auth=None).status == 401


def test_host_and_origin_checks_stay_without_a_token(trusting_server: ServerProcess) -> None:
    rebound = {"Host": f"evil.example:{trusting_server.port}"}
    assert (
        exchange(trusting_server, "GET", "/sdapi/v1/sd-models", None, rebound, auth=None).status
        == 421
    )
    page = {"Origin": "http://evil.example"}
    assert (
        exchange(trusting_server, "GET", "/sdapi/v1/sd-models", None, page, auth=None).status == 403
    )


def test_images_are_signed_when_the_user_asks(
    trusting_server: ServerProcess, tmp_path: Path
) -> None:
    answer = post_json(trusting_server, "/sdapi/v1/txt2img", TXT2IMG, auth=None)
    credentials = content_credentials.read_credentials(
        saved(answer.json()["images"][0], tmp_path / "signed.png")
    )
    assert credentials is not None
    assert credentials.validation == "valid"
    assert credentials.digital_source_types == (DIGITAL_SOURCE_TYPES[Mode.TXT2IMG],)
    # The key is the server's own, in its configuration folder, owner-only.
    key = (
        trusting_server.config_dir / content_credentials.FOLDER_NAME / content_credentials.KEY_FILE
    )
    assert key.stat().st_mode & 0o077 == 0


def start_refused(config: Path, models: Path, a1111_auth: str, *args: str):
    """`inlayer serve` with this a1111_auth, expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "inlayer.server", "--port", "0", "--models-dir", str(models), *args],
        cwd=REPO_ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "INLAYER_TOKEN"},
            "INLAYER_A1111_AUTH": a1111_auth,
            "INLAYER_CONFIG_DIR": str(config),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_token_is_refused_beyond_loopback(tmp_path: Path, tiny_models_dir: Path) -> None:
    """The server does not even start listening on the network with a1111_auth = none."""
    result = start_refused(tmp_path, tiny_models_dir, "none", "--host", "0.0.0.0")
    assert result.returncode != 0
    assert "works only while the server listens on 127.0.0.1" in result.stderr
    assert not (tmp_path / "server.json").exists()


def test_a_wrong_a1111_auth_value_names_the_setting(tmp_path: Path, tiny_models_dir: Path) -> None:
    result = start_refused(tmp_path, tiny_models_dir, "nobody")
    assert result.returncode != 0
    assert "INLAYER_A1111_AUTH: 'nobody' is not one of token, none" in result.stderr
