"""The FastAPI app: Inlayer's job API under /v1 and the AUTOMATIC1111 subset under /sdapi/v1.

A thin shell: parse, authorize (auth.py), queue (jobs.py), answer. Requests and job states
travel as binary envelopes (core/wire.py); small answers are JSON. Every error answer is JSON
``{"detail": message, "code": InlayerError code, "field": the request field or ""}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

from inlayer.core import __version__
from inlayer.core.client import wire
from inlayer.core.client.protocol import (
    EditRequest,
    InlayerError,
    InvalidRequest,
    Mode,
    ModelInfo,
    ModelNotFound,
    ServerHealth,
)

from .auth import GuardMiddleware
from .jobs import Job, JobQueue, QueueFull


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_pixels: int


class TooLarge(InvalidRequest):
    """More pixels than this server accepts (413)."""

    code = "too_large"


class JobNotFound(InlayerError):
    code = "job_not_found"


class Service:
    """What the routes share: the queue, the model list and the limits."""

    def __init__(
        self,
        queue: JobQueue,
        list_models: Callable[[], list[ModelInfo]],
        default_model: Callable[[Mode], str],
        device: str,
        limits: Limits,
    ) -> None:
        self.queue = queue
        self.list_models = list_models
        self.default_model = default_model  # raises ModelNotFound when there is none
        self.device = device
        self.limits = limits

    def check_model(self, name: str, field_name: str = "model") -> None:
        """Only names the registry lists: a client must never make the server open a path."""
        if not name:
            return
        names = [m.name for m in self.list_models()]
        if name not in names:
            raise InvalidRequest(field_name, f"{name!r} is not a model this server has: {names}")

    def check_pixels(self, request: EditRequest) -> None:
        if request.image is not None:
            field_name, pixels = "image", request.image.width * request.image.height
        else:
            field_name, pixels = "width", (request.width or 0) * (request.height or 0)
        if pixels > self.limits.max_pixels:
            raise TooLarge(
                field_name,
                f"{pixels} pixels is more than this server's limit of {self.limits.max_pixels}",
            )

    def submit(self, request: EditRequest, source: str) -> Job:
        self.check_pixels(request)
        self.check_model(request.model)
        return self.queue.submit(request, source)

    def job(self, job_id: str) -> Job:
        job = self.queue.get(job_id)
        if job is None:
            raise JobNotFound(
                f"job {job_id} is unknown: it never existed, or its result expired "
                f"(results are kept {self.queue.keep_seconds / 60:g} minutes), "
                "or the server restarted"
            )
        return job


_STATUS_BY_CODE = {
    "invalid_request": 422,
    "model_not_found": 422,
    "too_large": 413,
    "job_not_found": 404,
    "server_busy": 429,
}


def error_response(status: int, message: str, code: str, field: str = "") -> JSONResponse:
    return JSONResponse({"detail": message, "code": code, "field": field}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InlayerError)
    async def inlayer_error(request: Request, error: InlayerError) -> JSONResponse:
        field = getattr(error, "field", "")
        # A body that cannot be parsed at all is a 400; a wrong field in it a 422.
        status = 400 if field == "body" else _STATUS_BY_CODE.get(error.code, 400)
        if isinstance(error, ModelNotFound):
            field = "model"
        return error_response(status, str(error), error.code, field)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
        response = error_response(429, f"the server is busy: {error}", "server_busy", field="")
        response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        field = ".".join(location) or "body"
        if first.get("type") == "json_invalid":
            return error_response(
                400, f"body: is not valid JSON ({first.get('msg')})", "invalid_request", "body"
            )
        message = f"{field}: {first.get('msg', 'is invalid')}"
        return error_response(422, message, "invalid_request", field)


def create_app(
    service: Service,
    *,
    token: str,
    hosts: frozenset[str] | None,
) -> FastAPI:
    """The ASGI app: the routes behind the token/Host/Origin/size guard."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.queue.start()
        try:
            yield
        finally:
            service.queue.stop()

    app = FastAPI(
        title="Inlayer",
        version=__version__,
        description="Local image editing AI for GIMP and Krita. Authenticate with "
        "`Authorization: Bearer TOKEN` (the token file in Inlayer's config folder).",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    _add_v1_routes(app, service)

    from .a1111 import a1111_router  # here, not at the top: a1111 imports Pillow and numpy

    app.include_router(a1111_router(service))
    app.add_middleware(
        GuardMiddleware, token=token, hosts=hosts, max_body_bytes=service.limits.max_body_bytes
    )
    return app


_CHUNK_BYTES = 1 << 20


def envelope_response(body: bytes) -> Response:
    """A big body goes out in 1 MiB pieces: handed over whole, asyncio's transport buffers
    what the socket does not take at once and then shifts that buffer after every send, which
    costs more than the transfer (measured: 2048² results arrive ~30% sooner in pieces)."""
    if len(body) <= _CHUNK_BYTES:
        return Response(body, media_type=wire.CONTENT_TYPE)
    view = memoryview(body)

    async def pieces() -> AsyncIterator[memoryview]:
        for start in range(0, len(view), _CHUNK_BYTES):
            yield view[start : start + _CHUNK_BYTES]

    return StreamingResponse(
        pieces(), media_type=wire.CONTENT_TYPE, headers={"Content-Length": str(len(body))}
    )


_ENVELOPE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            wire.CONTENT_TYPE: {
                "schema": {"type": "string", "format": "binary"},
            }
        },
        "description": "An EditRequest as an Inlayer envelope (see core/wire.py).",
    }
}


def _add_v1_routes(app: FastAPI, service: Service) -> None:
    @app.get("/v1/health", tags=["v1"])
    async def health() -> dict:
        """Version, device and queue length. Needs no token."""
        return wire.health_to_json(
            ServerHealth(
                version=__version__,
                device=service.device,
                queue_length=service.queue.queue_length(),
            )
        )

    @app.get("/v1/models", tags=["v1"])
    async def models() -> list[dict]:
        """The models a request's `model` field may name."""
        return [wire.model_to_json(m) for m in service.list_models()]

    @app.post("/v1/jobs", status_code=202, tags=["v1"], openapi_extra=_ENVELOPE_BODY)
    async def submit(request: Request) -> dict:
        """Queue an edit. 429 with Retry-After when the queue is full."""
        edit = wire.decode_request(await request.body())
        job = service.submit(edit, source="v1")
        status = service.queue.status(job)
        return {
            "job_id": job.job_id,
            "state": status.state.value,
            "queue_position": status.queue_position,
        }

    @app.get(
        "/v1/jobs/{job_id}",
        tags=["v1"],
        response_class=Response,
        responses={200: {"content": {wire.CONTENT_TYPE: {}}}},
    )
    async def job_status(job_id: str, preview_after: int = -1) -> Response:
        """The job's state as an envelope: step/total, the latest preview (when newer than step
        `preview_after`), and the results once done."""
        job = service.job(job_id)
        status = service.queue.status(job, preview_after=preview_after)
        body = wire.encode_status(status, error_field=job.error_field, variation=job.variation)
        return envelope_response(body)

    @app.post("/v1/jobs/{job_id}/cancel", tags=["v1"])
    async def cancel(job_id: str) -> dict:
        """Cancel a queued or running job (a running one stops after its current step)."""
        job = service.job(job_id)
        service.queue.cancel(job)
        return {"job_id": job.job_id, "state": service.queue.status(job).state.value}
