"""Helpers for the server tests: raw HTTP exchanges (what a misbehaving or foreign client sends),
test images and requests."""

from __future__ import annotations

import base64
import http.client
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from inlayer.core.client.protocol import EditRequest, Mask, Mode, RGBAImage
from tests.fixtures.server import ServerProcess

# The limits of the `strict_server` fixture.
STRICT_MAX_PIXELS = 128 * 128
STRICT_MAX_BODY_MB = 1.0
STRICT_TOKEN = "strict-token"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def exchange(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    auth: str | None = "bearer",
) -> Answer:
    """One HTTP exchange; `auth` is "bearer", "basic" (A1111 style) or None."""
    all_headers = {}
    if auth == "bearer":
        all_headers["Authorization"] = f"Bearer {server.token}"
    elif auth == "basic":
        credentials = base64.b64encode(f"user:{server.token}".encode()).decode()
        all_headers["Authorization"] = f"Basic {credentials}"
    all_headers.update(headers or {})
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def post_json(server: ServerProcess, path: str, data: object, auth: str | None = "basic") -> Answer:
    body = json.dumps(data).encode()
    return exchange(server, "POST", path, body, {"Content-Type": "application/json"}, auth=auth)


def pattern_image(width: int, height: int, seed: int = 0) -> RGBAImage:
    """Opaque noise: every pixel distinct enough that a changed one shows."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    return RGBAImage(width, height, pixels.tobytes())


def box_mask(width: int, height: int, x: int, y: int, box_width: int, box_height: int) -> Mask:
    mask = np.zeros((height, width), np.uint8)
    mask[y : y + box_height, x : x + box_width] = 255
    return Mask(width, height, mask.tobytes())


def inpaint_request(size: int = 64, **fields: object) -> EditRequest:
    """An inpaint of the tiny model's size with few steps, a box in the middle masked."""
    defaults: dict[str, object] = {"prompt": "a red apple", "steps": 2, "seed": 1}
    return EditRequest(
        mode=Mode.INPAINT,
        image=pattern_image(size, size),
        mask=box_mask(size, size, size // 4, size // 4, size // 2, size // 2),
        **{**defaults, **fields},
    )


def long_request(**fields: object) -> EditRequest:
    """A job that runs long enough to be cancelled, killed or polled while it runs."""
    return inpaint_request(size=128, steps=150, count=16, preview_interval=1, **fields)


def png_base64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def decode_png(data: str) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(base64.b64decode(data))))


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll `condition` until it holds; fail the test when it does not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:g} s: {condition}")
        time.sleep(0.05)
