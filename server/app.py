"""The FastAPI app: Inlayer's job API under /v1 and the AUTOMATIC1111 subset under /sdapi/v1.

A thin shell: parse, authorize (auth.py), queue (jobs.py), answer. Requests and job states
travel as binary envelopes (core/client/wire.py); small answers are JSON, and so are errors
(their shape and status: service.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

from inlayer.core import __version__
from inlayer.core.client import wire
from inlayer.core.client.protocol import InlayerError, InvalidRequest, ServerBusy, ServerHealth

from .a1111 import a1111_router
from .a1111_controlnet import controlnet_router
from .auth import A1111_PREFIX, CONTROLNET_PREFIX, GuardMiddleware
from .jobs import MAX_STATUS_WAIT_SECONDS, QueueFull
from .replicas import replica_to_json
from .service import HTTP_STATUS_BY_CODE, Service, error_response
from .user_tokens import UserTokens


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InlayerError)
    async def inlayer_error(request: Request, error: InlayerError) -> JSONResponse:
        # A body that cannot be parsed at all is a 400; a wrong field in it a 422.
        status = 400 if error.field == "body" else HTTP_STATUS_BY_CODE.get(error.code, 400)
        return error_response(status, error)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
        busy = ServerBusy(f"the server is busy: {error}", error.retry_after)
        response = error_response(HTTP_STATUS_BY_CODE[busy.code], busy)
        response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        if first.get("type") == "json_invalid":
            return error_response(
                400, InvalidRequest("body", f"is not valid JSON ({first.get('msg')})")
            )
        # The field by its own name: ("query", "wait") is `wait`, ("body", "steps") `steps`.
        location = [str(part) for part in first.get("loc", ())[1:]]
        field = ".".join(location) or "body"
        return error_response(422, InvalidRequest(field, first.get("msg", "is invalid")))


def create_app(
    service: Service,
    *,
    token: str,
    hosts: frozenset[str] | None,
    a1111_without_token: bool = False,
    user_tokens: UserTokens | None = None,
) -> FastAPI:
    """The ASGI app: the routes behind the token/Host/Origin/size guard.

    `a1111_without_token`: the /sdapi/v1 routes answer without the token (`a1111_auth = none`);
    the caller allows it only on loopback. `user_tokens`: per-user tokens the guard accepts too
    (`inlayer token add`)."""

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
    app.include_router(a1111_router(service))
    app.include_router(controlnet_router(service))
    app.add_middleware(
        GuardMiddleware,
        token=token,
        hosts=hosts,
        max_body_bytes=service.limits.max_body_bytes,
        open_prefixes=(A1111_PREFIX, CONTROLNET_PREFIX) if a1111_without_token else (),
        user_tokens=user_tokens,
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
    def health() -> dict:
        """Version, device and queue length, and the engines that run jobs: `backend` "local"
        (one, in the server) or "ray" (Ray Serve replicas), each with its device, the models it
        holds and whether it is busy. Needs no token."""
        replicas = service.describe_replicas()
        return {
            **wire.health_to_json(
                ServerHealth(
                    version=__version__,
                    device=service.device,
                    queue_length=service.queue.queue_length(),
                )
            ),
            "backend": service.backend,
            "replica_count": len(replicas),
            "replicas": [replica_to_json(replica) for replica in replicas],
        }

    @app.get("/v1/models", tags=["v1"])
    async def models() -> list[dict]:
        """The models a request's `model` field may name."""
        return [wire.model_to_json(m) for m in service.list_models()]

    @app.get("/v1/add-ons", tags=["v1"])
    async def add_ons() -> list[dict]:
        """The LoRAs (a request's `loras`) and tiny autoencoders (its `vae`) requests may name,
        with the model family each fits; a speed LoRA names the scheduler it wants."""
        return [wire.add_on_to_json(a) for a in service.list_add_ons()]

    @app.get("/v1/image-models", tags=["v1"])
    async def image_models() -> dict[str, list[str]]:
        """The image models each request field that names one may take, by field: `remover`,
        `restore_faces`, `denoise`, `colorize` (the plug-ins' restore lists)."""
        return service.list_image_models()

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
    async def job_status(
        job_id: str,
        preview_after: int = -1,
        revision: int = 0,
        wait: Annotated[float, Query(ge=0, le=MAX_STATUS_WAIT_SECONDS)] = 0.0,
    ) -> Response:
        """The job's state as an envelope: step/total, the latest preview (when newer than step
        `preview_after`), and the results once done. With `wait`, the answer waits up to that
        many seconds until the job is past `revision` (the one the client's last answer had):
        clients follow a job without asking again and again while nothing changes."""
        job = service.job(job_id)
        if wait:
            await service.queue.changed(job, revision, wait)
        return envelope_response(
            wire.encode_status(service.queue.status(job, preview_after=preview_after))
        )

    @app.post("/v1/jobs/{job_id}/cancel", tags=["v1"])
    async def cancel(job_id: str) -> dict:
        """Cancel a queued or running job (a running one stops after its current step)."""
        job = service.job(job_id)
        service.queue.cancel(job)
        return {"job_id": job.job_id, "state": service.queue.status(job).state.value}
