"""A second server with tight limits: a queue of one, small bodies and images, INLAYER_TOKEN set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.server import ServerProcess, running_server
from tests.server.helpers import STRICT_MAX_BODY_MB, STRICT_MAX_PIXELS, STRICT_TOKEN


@pytest.fixture(scope="session")
def strict_server(
    tiny_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running_server(
        tmp_path_factory.mktemp("strict-config"),
        tiny_models_dir,
        "--queue-size",
        "1",
        "--max-pixels",
        str(STRICT_MAX_PIXELS),
        "--max-body-mb",
        str(STRICT_MAX_BODY_MB),
        token=STRICT_TOKEN,
    ) as server:
        yield server
