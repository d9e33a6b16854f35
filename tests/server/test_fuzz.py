"""Property-based fuzzing of the whole HTTP API against a real server: never a 5xx, never a crash.

- Every JSON route, from the server's own OpenAPI schema (schemathesis): bodies, query strings
  and path parameters that fit the schema and that break it.
- The binary /v1 job envelope, which no schema tool can generate: valid envelopes of random
  requests (many out of range), and the same envelopes truncated, with bytes flipped, with a
  header of arbitrary JSON, or with a lying header length.

About 1200 requests in all: up to `EXAMPLES_PER_OPERATION` for each JSON operation with valid
inputs (a bare GET has only one) and for each of the 8 with invalid ones, and `ENVELOPE_EXAMPLES`
envelopes.
A failure prints the Hypothesis seed and the failing example; rerun it with
`tests/run.sh tests/server/test_fuzz.py --hypothesis-seed=SEED`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inlayer.core.client import wire
from inlayer.core.client.protocol import EditRequest, FillMode, Mask, Mode, RGBAImage
from tests.fixtures.server import ServerProcess, running_server
from tests.server.helpers import exchange

EXAMPLES_PER_OPERATION = 60
ENVELOPE_EXAMPLES = 500
FUZZ_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)


@pytest.fixture(scope="module")
def fuzz_server(
    tiny_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server of its own, with small images and a short queue, so fuzzed jobs stay cheap."""
    with running_server(
        tmp_path_factory.mktemp("fuzz-config"),
        tiny_models_dir,
        "--queue-size",
        "2",
        "--max-pixels",
        str(64 * 64),
    ) as server:
        yield server


# Every route of the OpenAPI schema but POST /v1/jobs, whose body is the binary envelope (fuzzed
# below with a strategy of its own). A route added to the server fails
# `test_every_json_route_is_fuzzed` until it is listed here.
JSON_OPERATIONS = [
    "GET /v1/health",
    "GET /v1/models",
    "GET /v1/add-ons",
    "GET /v1/image-models",
    "GET /v1/jobs/{job_id}",
    "POST /v1/jobs/{job_id}/cancel",
    "POST /sdapi/v1/txt2img",
    "POST /sdapi/v1/img2img",
    "GET /sdapi/v1/progress",
    "POST /sdapi/v1/interrupt",
    "GET /sdapi/v1/sd-models",
    "GET /sdapi/v1/loras",
    "GET /sdapi/v1/samplers",
    "GET /sdapi/v1/options",
    "POST /sdapi/v1/options",
    "POST /sdapi/v1/skip",
    "POST /sdapi/v1/refresh-checkpoints",
    "POST /sdapi/v1/refresh-loras",
    "POST /sdapi/v1/refresh-vae",
    "GET /sdapi/v1/sd-modules",
    "GET /sdapi/v1/sd-vae",
    "GET /sdapi/v1/schedulers",
    "GET /sdapi/v1/upscalers",
    "GET /sdapi/v1/latent-upscale-modes",
    "GET /sdapi/v1/hypernetworks",
    "GET /sdapi/v1/face-restorers",
    "GET /sdapi/v1/realesrgan-models",
    "GET /sdapi/v1/prompt-styles",
    "GET /sdapi/v1/embeddings",
    "GET /sdapi/v1/scripts",
    "GET /sdapi/v1/script-info",
    "GET /sdapi/v1/cmd-flags",
    "GET /sdapi/v1/memory",
    "POST /sdapi/v1/extra-single-image",
    "POST /sdapi/v1/extra-batch-images",
    "POST /sdapi/v1/png-info",
    "GET /controlnet/version",
    "GET /controlnet/model_list",
    "GET /controlnet/module_list",
]


# The operations with typed inputs (a JSON body or typed query), for which requests that break the
# schema exist; a bare GET or a free-text path parameter has none.
TYPED_INPUT_OPERATIONS = [
    "GET /v1/jobs/{job_id}",
    "POST /sdapi/v1/txt2img",
    "POST /sdapi/v1/img2img",
    "GET /sdapi/v1/progress",
    "POST /sdapi/v1/options",
    "POST /sdapi/v1/extra-single-image",
    "POST /sdapi/v1/extra-batch-images",
    "POST /sdapi/v1/png-info",
]
CASES = [(label, schemathesis.GenerationMode.POSITIVE) for label in JSON_OPERATIONS] + [
    (label, schemathesis.GenerationMode.NEGATIVE) for label in TYPED_INPUT_OPERATIONS
]


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ServerProcess):
    return schemathesis.openapi.from_url(
        f"{fuzz_server.url}/openapi.json",
        headers={"Authorization": f"Bearer {fuzz_server.token}"},
    )


def test_every_json_route_is_fuzzed(api_schema) -> None:
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels - {"POST /v1/jobs"} == set(JSON_OPERATIONS)


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{lb}-{m.value}" for lb, m in CASES])
def test_json_routes_never_answer_5xx(
    api_schema, fuzz_server: ServerProcess, label: str, mode: schemathesis.GenerationMode
) -> None:
    """Requests that fit the schema (positive) and that break it (negative)."""
    operation = api_schema.find_operation_by_label(label)
    auth = {"Authorization": f"Bearer {fuzz_server.token}"}

    @given(case=operation.as_strategy(mode))
    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES_PER_OPERATION)
    def check(case) -> None:
        response = case.call(headers=auth, timeout=60)
        assert response.status_code < 500, (response.status_code, response.text[:500])
        if label == "POST /sdapi/v1/options":
            # Keep the fuzzed options from changing what the next examples run.
            exchange(fuzz_server, "POST", "/sdapi/v1/options", b"{}", _JSON)

    check()


_JSON = {"Content-Type": "application/json"}
_ENVELOPE = {"Content-Type": wire.CONTENT_TYPE}

sizes = st.integers(min_value=1, max_value=48)
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def edit_requests(draw: st.DrawFn) -> EditRequest:
    """Requests of every mode: half of them valid throughout (they reach the queue and run),
    the others with each parameter in or out of its range."""
    all_valid = draw(st.booleans())

    def in_or_out(valid: st.SearchStrategy, invalid: st.SearchStrategy) -> st.SearchStrategy:
        return valid if all_valid else valid | invalid

    width, height = draw(sizes), draw(sizes)
    pixels = width * height
    image = RGBAImage(width, height, draw(st.binary(min_size=pixels * 4, max_size=pixels * 4)))
    # A selected rectangle (never empty), with random bytes on top: soft and hard edges alike.
    x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
    selected = bytearray(draw(st.binary(min_size=pixels, max_size=pixels)))
    for row in range(y, height):
        selected[row * width + x : (row + 1) * width] = b"\xff" * (width - x)
    mask = Mask(width, height, bytes(selected))
    mode = draw(st.sampled_from(Mode))
    needs_image = mode != Mode.TXT2IMG
    return EditRequest(
        mode=mode,
        image=draw(in_or_out(st.just(image), st.none()) if needs_image else st.none()),
        mask=draw(in_or_out(st.just(mask), st.none()) if needs_image else st.none()),
        prompt=draw(in_or_out(st.text(max_size=30), st.text(min_size=4001, max_size=4001))),
        strength=draw(in_or_out(st.floats(0.1, 1), st.sampled_from([-1.0, 2.0, float("nan")]))),
        steps=draw(in_or_out(st.integers(1, 3), st.integers(-2, 0))),
        guidance=draw(in_or_out(st.floats(0, 10), st.sampled_from([-5.0, float("inf")]))),
        seed=draw(in_or_out(st.integers(-1, 2**32 - 1), st.integers(2**32, 2**40))),
        count=draw(in_or_out(st.integers(1, 2), st.integers(-1, 0))),
        scheduler=draw(in_or_out(st.sampled_from(["", "euler", "ddim"]), st.just("no-such"))),
        model=draw(in_or_out(st.just(""), st.sampled_from(["../../etc/passwd", "x" * 300]))),
        fill=draw(st.sampled_from(FillMode)),
        grow=draw(in_or_out(st.integers(-8, 8), st.integers(513, 600))),
        feather=draw(in_or_out(st.integers(0, 8), st.integers(-5, -1))),
        width=draw(st.just(width) if not needs_image else in_or_out(st.none(), st.just(0))),
        height=draw(st.just(height) if not needs_image else in_or_out(st.none(), st.just(-1))),
        preview_interval=draw(in_or_out(st.integers(0, 2), st.just(-1))),
    )


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    request = draw(edit_requests())
    # Encoding does not validate: the server must refuse what the client would never send.
    envelope = wire.encode_request(request)
    mutation = draw(
        st.sampled_from(["none", "none", "truncate", "flip", "header", "length", "append"])
    )
    if mutation == "truncate":
        return envelope[: draw(st.integers(0, len(envelope) - 1))]
    if mutation == "flip":
        data = bytearray(envelope)
        for index in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[index] ^= draw(st.integers(1, 255))
        return bytes(data)
    if mutation == "header":
        parameters = draw(st.dictionaries(st.sampled_from(list(request.parameters())), any_json))
        header = {"parameters": parameters}
        header |= draw(st.dictionaries(st.sampled_from(["image", "mask", "blobs"]), any_json))
        header_bytes = json.dumps(header).encode()
        return wire.MAGIC + struct.pack("<I", len(header_bytes)) + header_bytes
    if mutation == "length":
        declared = draw(st.integers(0, 2**32 - 1))
        return wire.MAGIC + struct.pack("<I", declared) + envelope[len(wire.MAGIC) + 4 :]
    if mutation == "append":
        return envelope + draw(st.binary(min_size=1, max_size=64))
    return envelope


@given(body=envelopes())
@settings(FUZZ_SETTINGS, max_examples=ENVELOPE_EXAMPLES)
def test_job_envelopes_never_answer_5xx(fuzz_server: ServerProcess, body: bytes) -> None:
    answer = exchange(fuzz_server, "POST", "/v1/jobs", body, _ENVELOPE)
    assert answer.status < 500, (answer.status, answer.body[:500])
    if answer.status == 202:  # a valid job: cancel it so the queue stays open for the next
        job_id = answer.json()["job_id"]
        assert exchange(fuzz_server, "POST", f"/v1/jobs/{job_id}/cancel").status == 200
    else:
        assert answer.status in (400, 413, 422, 429), (answer.status, answer.body[:300])
        assert answer.json()["detail"]  # every refusal says why


def test_the_server_is_still_whole_after_the_fuzzing(fuzz_server: ServerProcess) -> None:
    """Runs after the fuzz tests in this module: the server answers, and runs a real job."""
    assert fuzz_server.process.poll() is None
    client = fuzz_server.client(timeout=60)
    assert client.health().version
    image = RGBAImage(16, 16, bytes(16 * 16 * 4))
    mask = Mask(16, 16, b"\xff" * 256)
    result = client.run(EditRequest(Mode.FILL, image=image, mask=mask))
    assert len(result.images) == 1
