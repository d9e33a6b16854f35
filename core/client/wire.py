"""How requests, job states and results travel between the client and the server.

Standard library only: the plug-ins carry this module.

An *envelope* is one binary message: a JSON header with every parameter, followed by the raw
pixel blobs (RGBA images, 8-bit masks) it refers to. Raw pixels cost nothing to encode or decode,
unlike PNG (compression) or base64 in JSON (a third larger, and a slow pass over every byte);
bench/bench_transport.py measures the three.

    envelope = MAGIC | header length (uint32, little-endian) | header (UTF-8 JSON) | blob 0 | ...

The header's ``"blobs"`` lists the byte length of each blob; an image in the header is
``{"width": W, "height": H, "blob": i}``. A request's control images are the header's
``"control_images"``, in the order of its parameters' ``"controls"``; its style's image is
``"style_image"``.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any

from .protocol import (
    MAX_PIXELS,
    AddOnInfo,
    AddOnKind,
    EditRequest,
    EditResult,
    GeneratedImage,
    InvalidRequest,
    JobState,
    JobStatus,
    Mask,
    ModelInfo,
    RGBAImage,
    ServerHealth,
)

CONTENT_TYPE = "application/vnd.inlayer.envelope"
MAGIC = b"INL1"
_LENGTH = struct.Struct("<I")
# A header holds parameters only; pixels are blobs. This bounds what a decoder reads as JSON.
MAX_HEADER_BYTES = 1 << 20


class _EnvelopeWriter:
    def __init__(self) -> None:
        self.blobs: list[bytes | memoryview] = []

    def image(self, image: RGBAImage | Mask | None) -> dict[str, int] | None:
        if image is None:
            return None
        self.blobs.append(image.data)
        return {"width": image.width, "height": image.height, "blob": len(self.blobs) - 1}

    def finish(self, header: dict[str, Any]) -> bytes:
        header["blobs"] = [len(blob) for blob in self.blobs]
        header_bytes = json.dumps(header, separators=(",", ":")).encode()
        return b"".join([MAGIC, _LENGTH.pack(len(header_bytes)), header_bytes, *self.blobs])


class _EnvelopeReader:
    """Splits an envelope; every malformation is an `InvalidRequest` naming `field`."""

    def __init__(self, envelope: bytes, field: str = "body") -> None:
        self.field = field
        view = memoryview(envelope)
        start = len(MAGIC) + _LENGTH.size
        if len(view) < start or view[: len(MAGIC)] != MAGIC:
            raise InvalidRequest(field, "is not an Inlayer envelope (wrong magic bytes)")
        (header_length,) = _LENGTH.unpack_from(view, len(MAGIC))
        if header_length > MAX_HEADER_BYTES or start + header_length > len(view):
            raise InvalidRequest(field, f"declares a header of {header_length} bytes it lacks")
        try:
            header = json.loads(bytes(view[start : start + header_length]))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise InvalidRequest(field, f"header is not valid JSON: {error}") from None
        if not isinstance(header, dict):
            raise InvalidRequest(field, "header must be a JSON object")
        lengths = header.pop("blobs", [])
        if not isinstance(lengths, list) or not all(isinstance(n, int) and n >= 0 for n in lengths):
            raise InvalidRequest(field, "header's 'blobs' must list byte lengths")
        offset = start + header_length
        if offset + sum(lengths) != len(view):
            raise InvalidRequest(
                field,
                f"blobs declare {sum(lengths)} bytes but {len(view) - offset} follow the header",
            )
        self.header: dict[str, Any] = header
        self.blobs: list[memoryview] = []
        for length in lengths:
            self.blobs.append(view[offset : offset + length])
            offset += length

    def _blob(self, spec: Any, name: str) -> tuple[int, int, bytes]:
        if not isinstance(spec, dict):
            raise InvalidRequest(name, "must be {width, height, blob}")
        width, height, index = spec.get("width"), spec.get("height"), spec.get("blob")
        for key, value in (("width", width), ("height", height), ("blob", index)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidRequest(f"{name}.{key}", f"is {value!r}; it must be an integer ≥ 0")
        if index >= len(self.blobs):
            raise InvalidRequest(f"{name}.blob", f"refers to blob {index}, which is missing")
        if width * height > MAX_PIXELS:
            raise InvalidRequest(name, f"{width}x{height} is more than {MAX_PIXELS} pixels")
        return width, height, bytes(self.blobs[index])

    def image(self, spec: Any, name: str) -> RGBAImage | None:
        if spec is None:
            return None
        image = RGBAImage(*self._blob(spec, name))
        image.validate(name)
        return image

    def mask(self, spec: Any, name: str) -> Mask | None:
        if spec is None:
            return None
        mask = Mask(*self._blob(spec, name))
        mask.validate(name)
        return mask


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def encode_request(request: EditRequest) -> bytes:
    writer = _EnvelopeWriter()
    header = {
        "parameters": request.parameters(),
        "image": writer.image(request.image),
        "mask": writer.image(request.mask),
        "control_images": [writer.image(control.image) for control in request.controls],
        "style_image": writer.image(request.style.image if request.style else None),
    }
    return writer.finish(header)


def decode_request(envelope: bytes) -> EditRequest:
    """The request in `envelope`, validated; raises `InvalidRequest` naming the wrong field."""
    reader = _EnvelopeReader(envelope)
    parameters = reader.header.get("parameters")
    if not isinstance(parameters, dict):
        raise InvalidRequest("parameters", "must be a JSON object of request fields")
    control_specs = reader.header.get("control_images", [])
    if not isinstance(control_specs, list):
        raise InvalidRequest("control_images", "must list the control images")
    try:
        request = EditRequest.from_parameters(
            parameters,
            image=reader.image(reader.header.get("image"), "image"),
            mask=reader.mask(reader.header.get("mask"), "mask"),
            control_images=[
                reader.image(spec, f"controls[{index}].image")
                for index, spec in enumerate(control_specs)
            ],
            style_image=reader.image(reader.header.get("style_image"), "style.image"),
        )
    except TypeError as error:  # e.g. a field given as a list the dataclass cannot take
        raise InvalidRequest("parameters", str(error)) from None
    _check_types(request)
    request.validate()
    return request


def _check_types(request: EditRequest) -> None:
    """JSON gives bools for ints and ints for floats; `validate` checks ranges, this the kinds."""
    for f in dataclasses.fields(EditRequest):
        value = getattr(request, f.name)
        if f.type in ("int", "int | None") and isinstance(value, bool):
            raise InvalidRequest(f.name, f"is {value!r}; it must be an integer")
        if f.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InvalidRequest(f.name, f"is {value!r}; it must be a number")
        if f.type == "float | None" and (
            isinstance(value, bool) or not isinstance(value, (int, float, type(None)))
        ):
            raise InvalidRequest(f.name, f"is {value!r}; it must be a number (or null)")
        if f.type == "str" and not isinstance(value, str):
            raise InvalidRequest(f.name, f"is {value!r}; it must be text")


# --------------------------------------------------------------------------------------------
# Job states (with previews and results)
# --------------------------------------------------------------------------------------------


def encode_status(status: JobStatus) -> bytes:
    writer = _EnvelopeWriter()
    header: dict[str, Any] = {
        "job_id": status.job_id,
        "state": status.state.value,
        "step": status.step,
        "total": status.total,
        "variation": status.variation,
        "queue_position": status.queue_position,
        "preview": writer.image(status.preview),
        "error": status.error,
        "error_code": status.error_code,
        "error_field": status.error_field,
        "revision": status.revision,
        "result": None,
    }
    result = status.result
    if result is not None:
        header["result"] = {
            "images": [
                {"image": writer.image(g.image), "x": g.x, "y": g.y, "seed": g.seed}
                for g in result.images
            ],
            "parameters": result.parameters,
            "timings": result.timings,
            "canvas_width": result.canvas_width,
            "canvas_height": result.canvas_height,
            "model": result.model,
            "hint": result.hint,
            "origin_x": result.origin_x,
            "origin_y": result.origin_y,
        }
    return writer.finish(header)


def decode_status(envelope: bytes) -> JobStatus:
    """Raises `ValueError` (or `InvalidRequest`) when the envelope is not a job state."""
    reader = _EnvelopeReader(envelope, field="status")
    header = reader.header
    result = None
    if header.get("result") is not None:
        data = header["result"]
        result = EditResult(
            images=[
                GeneratedImage(
                    image=_required(reader.image(g["image"], "result.image")),
                    x=int(g["x"]),
                    y=int(g["y"]),
                    seed=int(g["seed"]),
                )
                for g in data["images"]
            ],
            parameters=dict(data["parameters"]),
            timings={str(k): float(v) for k, v in data["timings"].items()},
            canvas_width=int(data["canvas_width"]),
            canvas_height=int(data["canvas_height"]),
            model=str(data.get("model", "")),
            hint=str(data.get("hint", "")),
            origin_x=int(data.get("origin_x", 0)),
            origin_y=int(data.get("origin_y", 0)),
        )
    return JobStatus(
        job_id=str(header["job_id"]),
        state=JobState(header["state"]),
        step=int(header.get("step", 0)),
        total=int(header.get("total", 0)),
        variation=int(header.get("variation", 0)),
        queue_position=int(header.get("queue_position", 0)),
        preview=reader.image(header.get("preview"), "preview"),
        result=result,
        error=str(header.get("error", "")),
        error_code=str(header.get("error_code", "")),
        error_field=str(header.get("error_field", "")),
        revision=int(header.get("revision", 0)),
    )


def _required(image: RGBAImage | None) -> RGBAImage:
    if image is None:
        raise ValueError("a result image is missing")
    return image


# --------------------------------------------------------------------------------------------
# Small JSON answers
# --------------------------------------------------------------------------------------------


def health_to_json(health: ServerHealth) -> dict[str, Any]:
    return dataclasses.asdict(health)


def health_from_json(data: dict[str, Any]) -> ServerHealth:
    return ServerHealth(
        version=str(data["version"]),
        device=str(data["device"]),
        queue_length=int(data["queue_length"]),
        protocol=int(data["protocol"]),
    )


def model_to_json(model: ModelInfo) -> dict[str, Any]:
    return {**dataclasses.asdict(model), "modes": list(model.modes)}


def model_from_json(data: dict[str, Any]) -> ModelInfo:
    return ModelInfo(
        name=str(data["name"]),
        family=str(data["family"]),
        modes=tuple(str(m) for m in data["modes"]),
        inpainting=bool(data["inpainting"]),
        source=str(data["source"]),
        format=str(data["format"]),
    )


def add_on_to_json(add_on: AddOnInfo) -> dict[str, Any]:
    return {**dataclasses.asdict(add_on), "kind": add_on.kind.value}


def add_on_from_json(data: dict[str, Any]) -> AddOnInfo:
    return AddOnInfo(
        name=str(data["name"]),
        kind=AddOnKind(data["kind"]),
        family=str(data["family"]),
        source=str(data["source"]),
        speed=str(data.get("speed", "")),
    )
