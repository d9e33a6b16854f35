"""Every kind of bad input gets a 4xx naming the field (never a 500), and leaves the server
serving: malformed bodies, wrong types, out-of-range values, size mismatches, unknown models and
paths, missing or wrong tokens, foreign Host and Origin headers, oversized bodies and images."""

from __future__ import annotations

import http.client
import json
import socket
import struct

import numpy as np
import pytest

from inlayer.core.client import wire
from inlayer.core.client.protocol import EditRequest, Mode
from tests.fixtures.server import ServerProcess
from tests.server.helpers import (
    STRICT_MAX_BODY_MB,
    exchange,
    inpaint_request,
    pattern_image,
    png_base64,
    post_json,
)


def envelope(header: dict, *blobs: bytes) -> bytes:
    header = {**header, "blobs": [len(b) for b in blobs]}
    encoded = json.dumps(header).encode()
    return b"".join([wire.MAGIC, struct.pack("<I", len(encoded)), encoded, *blobs])


def submit(
    server: ServerProcess,
    body: bytes,
    headers: dict[str, str] | None = None,
    auth: str | None = "bearer",
) -> tuple[int, dict]:
    all_headers = {"Content-Type": wire.CONTENT_TYPE, **(headers or {})}
    answer = exchange(server, "POST", "/v1/jobs", body, all_headers, auth=auth)
    return answer.status, answer.json()


def parameters(**fields: object) -> dict:
    return {**inpaint_request().parameters(), **fields}


def request_header(params: dict, width: int = 64, height: int = 64) -> dict:
    return {
        "parameters": params,
        "image": {"width": width, "height": height, "blob": 0},
        "mask": {"width": width, "height": height, "blob": 1},
    }


def valid_blobs(width: int = 64, height: int = 64) -> tuple[bytes, bytes]:
    return bytes(width * height * 4), b"\xff" * (width * height)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"{not json", "body"),
        (json.dumps({"mode": "inpaint"}).encode(), "body"),  # JSON instead of an envelope
        (wire.MAGIC + struct.pack("<I", 10**6) + b"{}", "body"),  # header length lies
        (wire.MAGIC + struct.pack("<I", 3) + b"{x}", "body"),  # header is not JSON
        (envelope({"parameters": parameters()}, b"extra"), "body"),  # blob nobody names ...
    ],
)
def test_malformed_bodies_are_400(inlayer_server: ServerProcess, body: bytes, field: str) -> None:
    status, answer = submit(inlayer_server, body)
    if status == 422:  # ... is accepted as a request, then refused for the missing image
        assert answer["field"] in ("image", "mask")
        return
    assert status == 400, answer
    assert answer["field"] == field
    assert answer["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"steps": "ten"}, "steps"),
        ({"steps": 0}, "steps"),
        ({"steps": True}, "steps"),
        ({"strength": 2.5}, "strength"),
        ({"strength": "strong"}, "strength"),
        ({"guidance": "high"}, "guidance"),  # null is valid: the preset's guidance
        ({"preset": "turbo"}, "preset"),
        ({"loras": [{"name": "tiny-style", "scale": "strong"}]}, "loras"),
        ({"loras": [{"name": "/etc/passwd"}]}, "loras"),  # no paths from the network
        ({"loras": "tiny-style"}, "loras"),
        ({"vae": "/etc/passwd"}, "vae"),
        ({"seed": -5}, "seed"),
        ({"count": 100}, "count"),
        ({"prompt": ["a", "list"]}, "prompt"),
        ({"mode": "paint"}, "mode"),
        ({"fill": "glitter"}, "fill"),
        ({"scheduler": "magic"}, "scheduler"),
        ({"feather": -3}, "feather"),
        ({"colour": "red"}, "colour"),  # unknown field
        ({"model": "no-such-model"}, "model"),
        ({"model": "/etc/passwd"}, "model"),  # no paths from the network
        ({"model": "../models/tiny-sd15"}, "model"),
        ({"model": "stable-diffusion-v1-5/stable-diffusion-v1-5"}, "model"),  # no hub downloads
    ],
)
def test_wrong_fields_are_422_naming_the_field(
    inlayer_server: ServerProcess, fields: dict, field: str
) -> None:
    body = envelope(request_header(parameters(**fields)), *valid_blobs())
    status, answer = submit(inlayer_server, body)
    assert status == 422, answer
    assert answer["field"] == field, answer
    assert answer["detail"] == f"{field}: {answer['message']}"


def test_the_server_also_refuses_a_model_path_from_its_own_models_folder(
    inlayer_server: ServerProcess, tiny_models_dir
) -> None:
    body = envelope(
        request_header(parameters(model=str(tiny_models_dir / "tiny-sd15"))), *valid_blobs()
    )
    status, answer = submit(inlayer_server, body)
    assert (status, answer["field"]) == (422, "model")


@pytest.mark.parametrize(
    ("header", "blobs", "field"),
    [
        # The mask is another size than the image.
        (
            {
                "parameters": parameters(),
                "image": {"width": 64, "height": 64, "blob": 0},
                "mask": {"width": 32, "height": 32, "blob": 1},
            },
            (bytes(64 * 64 * 4), b"\xff" * 32 * 32),
            "mask",
        ),
        # The image blob is shorter than its size says.
        (request_header(parameters()), (bytes(100), b"\xff" * 64 * 64), "image"),
        # A blob index that does not exist.
        (
            {**request_header(parameters()), "mask": {"width": 64, "height": 64, "blob": 7}},
            valid_blobs(),
            "mask.blob",
        ),
        # Negative and non-integer sizes.
        (
            {**request_header(parameters()), "image": {"width": -1, "height": 64, "blob": 0}},
            valid_blobs(),
            "image.width",
        ),
        (
            {**request_header(parameters()), "image": {"width": "64", "height": 64, "blob": 0}},
            valid_blobs(),
            "image.width",
        ),
        # An empty mask for inpaint.
        (request_header(parameters()), (bytes(64 * 64 * 4), bytes(64 * 64)), "mask"),
        # No parameters object.
        ({"parameters": [1, 2]}, (), "parameters"),
        # A side beyond the protocol's maximum (checked before any allocation).
        (
            {
                "parameters": parameters(mode="txt2img"),
                "image": {"width": 100000, "height": 100000, "blob": 0},
                "mask": None,
            },
            (b"",),
            "image",
        ),
    ],
)
def test_bad_pixels_are_422_naming_the_field(
    inlayer_server: ServerProcess, header: dict, blobs: tuple[bytes, ...], field: str
) -> None:
    status, answer = submit(inlayer_server, envelope(header, *blobs))
    assert status == 422, answer
    assert answer["field"] == field, answer


def test_missing_and_wrong_tokens_are_401(inlayer_server: ServerProcess) -> None:
    body = wire.encode_request(inpaint_request())
    for auth_header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Token x"}):
        status, answer = submit(inlayer_server, body, auth=None, headers=auth_header)
        assert status == 401
        assert answer["code"] == "authentication_failed"
    assert exchange(inlayer_server, "GET", "/v1/models", auth=None).status == 401
    # Basic auth is for A1111 clients and browsers, not for the job API.
    assert exchange(inlayer_server, "GET", "/v1/models", auth="basic").status == 401
    assert exchange(inlayer_server, "GET", "/sdapi/v1/sd-models", auth="basic").status == 200
    # Health needs no token.
    assert exchange(inlayer_server, "GET", "/v1/health", auth=None).status == 200


def test_docs_ask_browsers_for_the_token(inlayer_server: ServerProcess) -> None:
    answer = exchange(inlayer_server, "GET", "/docs", auth=None)
    assert answer.status == 401
    assert answer.headers.get("www-authenticate", "").startswith("Basic")
    assert exchange(inlayer_server, "GET", "/docs", auth="basic").status == 200
    schema = exchange(inlayer_server, "GET", "/openapi.json", auth="basic").json()
    assert "/v1/jobs" in schema["paths"]
    assert "/sdapi/v1/img2img" in schema["paths"]


@pytest.mark.parametrize(
    "host", ["evil.example:80", "evil.example", "127.0.0.1:1", "localhost", "10.0.0.1:7878"]
)
def test_foreign_host_is_refused(inlayer_server: ServerProcess, host: str) -> None:
    # DNS rebinding: a web page's own domain, pointed at 127.0.0.1, arrives as its Host.
    answer = exchange(inlayer_server, "GET", "/v1/models", headers={"Host": host})
    assert answer.status == 421
    assert exchange(inlayer_server, "GET", "/v1/health", headers={"Host": host}).status == 421


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]"])
def test_own_host_names_are_accepted(inlayer_server: ServerProcess, name: str) -> None:
    host = f"{name}:{inlayer_server.port}"
    assert exchange(inlayer_server, "GET", "/v1/models", headers={"Host": host}).status == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:1"])
def test_cross_origin_browser_requests_are_refused(
    inlayer_server: ServerProcess, origin: str
) -> None:
    answer = exchange(inlayer_server, "GET", "/v1/models", headers={"Origin": origin})
    assert answer.status == 403
    same = f"http://127.0.0.1:{inlayer_server.port}"
    assert exchange(inlayer_server, "GET", "/v1/models", headers={"Origin": same}).status == 200


def test_oversized_body_is_413_before_it_is_read(strict_server: ServerProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", strict_server.port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/jobs")
        connection.putheader("Authorization", f"Bearer {strict_server.token}")
        connection.putheader("Content-Length", str(10 * 2**30))  # claims 10 GiB, sends none
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["code"] == "too_large"
    finally:
        connection.close()


def test_oversized_chunked_body_is_413(strict_server: ServerProcess) -> None:
    chunk = b"x" * 65536
    chunks = int(STRICT_MAX_BODY_MB * 2**20 // len(chunk)) + 2
    answer = exchange(
        strict_server,
        "POST",
        "/v1/jobs",
        iter([chunk] * chunks),  # no Content-Length: http.client sends it chunked
        {"Content-Type": wire.CONTENT_TYPE},
    )
    assert answer.status == 413


def test_too_many_pixels_is_413_naming_the_field(strict_server: ServerProcess) -> None:
    request = EditRequest(mode=Mode.IMG2IMG, image=pattern_image(256, 128), strength=0.5)
    status, answer = submit(strict_server, wire.encode_request(request))
    assert status == 413
    assert answer["field"] == "image"
    txt2img = EditRequest(mode=Mode.TXT2IMG, width=512, height=512)
    status, answer = submit(strict_server, wire.encode_request(txt2img))
    assert (status, answer["field"]) == (413, "width")


def test_a_status_wait_past_its_limit_is_422_naming_wait(inlayer_server: ServerProcess) -> None:
    job_id = inlayer_server.client().submit(inpaint_request())
    for wait in ("31", "-1", "soon"):
        answer = exchange(inlayer_server, "GET", f"/v1/jobs/{job_id}?revision=1&wait={wait}")
        assert answer.status == 422
        assert answer.json()["field"] == "wait"


def test_unknown_job_is_404(inlayer_server: ServerProcess) -> None:
    for method, path in (("GET", "/v1/jobs/nope"), ("POST", "/v1/jobs/nope/cancel")):
        answer = exchange(inlayer_server, method, path)
        assert answer.status == 404
        assert answer.json()["code"] == "job_not_found"


@pytest.mark.parametrize(
    ("path", "data", "field"),
    [
        ("/sdapi/v1/txt2img", {"steps": "many"}, "steps"),
        ("/sdapi/v1/txt2img", {"steps": 0}, "steps"),
        ("/sdapi/v1/txt2img", {"cfg_scale": 100}, "cfg_scale"),
        ("/sdapi/v1/txt2img", {"batch_size": 20}, "batch_size"),
        ("/sdapi/v1/txt2img", {"sampler_name": "Magic"}, "sampler_name"),
        ("/sdapi/v1/txt2img", {"width": 0}, "width"),
        (
            "/sdapi/v1/txt2img",
            {"override_settings": {"sd_model_checkpoint": "x"}},
            "override_settings.sd_model_checkpoint",
        ),
        ("/sdapi/v1/img2img", {}, "init_images"),
        ("/sdapi/v1/img2img", {"init_images": ["not base64!"]}, "init_images.0"),
        ("/sdapi/v1/img2img", {"init_images": ["aGVsbG8="]}, "init_images.0"),  # "hello"
        ("/sdapi/v1/img2img", {"init_images": "x"}, "init_images"),
        ("/sdapi/v1/options", {"sd_model_checkpoint": "/etc/passwd"}, "sd_model_checkpoint"),
    ],
)
def test_a1111_bad_fields_are_4xx_naming_the_field(
    inlayer_server: ServerProcess, path: str, data: dict, field: str
) -> None:
    answer = post_json(inlayer_server, path, {"width": 64, "height": 64, **data})
    assert 400 <= answer.status < 500, answer
    assert answer.json()["field"] == field, answer.json()


def test_a1111_a_failure_inside_the_engine_names_the_a1111_field(
    inlayer_server: ServerProcess,
) -> None:
    # Valid on its face, but int(steps × denoising_strength) = 0 steps: the engine refuses it.
    pixels = np.frombuffer(pattern_image(64, 64).data, np.uint8).reshape(64, 64, 4)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    answer = post_json(
        inlayer_server,
        "/sdapi/v1/img2img",
        {
            "init_images": [png_base64(pixels)],
            "mask": png_base64(mask),
            "denoising_strength": 0.1,
            "steps": 2,
            "width": 64,
            "height": 64,
        },
    )
    assert answer.status == 422, answer.body[:300]
    data = answer.json()
    assert data["field"] == "denoising_strength"
    assert data["detail"] == f"denoising_strength: {data['message']}"


def test_a1111_malformed_json_is_400(inlayer_server: ServerProcess) -> None:
    answer = exchange(
        inlayer_server,
        "POST",
        "/sdapi/v1/txt2img",
        b'{"prompt": ',
        {"Content-Type": "application/json"},
        auth="basic",
    )
    assert answer.status == 400
    assert answer.json()["field"] == "body"


def test_a_client_hanging_up_mid_body_does_not_disturb_the_server(
    inlayer_server: ServerProcess,
) -> None:
    body = wire.encode_request(inpaint_request())
    with socket.create_connection(("127.0.0.1", inlayer_server.port)) as raw:
        raw.sendall(
            f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{inlayer_server.port}\r\n"
            f"Authorization: Bearer {inlayer_server.token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
    client = inlayer_server.client()
    assert client.health().queue_length == 0
    assert client.run(inpaint_request()).images


def test_deeply_nested_json_is_400_not_a_crash(inlayer_server: ServerProcess) -> None:
    nested = b"[" * 200_000 + b"]" * 200_000
    header = wire.MAGIC + struct.pack("<I", len(nested)) + nested
    status, answer = submit(inlayer_server, header)
    assert (status, answer["field"]) == (400, "body")
    answer = exchange(
        inlayer_server,
        "POST",
        "/sdapi/v1/txt2img",
        b'{"prompt": ' + nested + b"}",
        {"Content-Type": "application/json"},
        auth="basic",
    )
    assert answer.status in (400, 422)
    assert inlayer_server.client().health().queue_length == 0
