"""What both APIs (/v1 in app.py, /sdapi/v1 in a1111.py) share: the service behind the routes,
its limits, and the shape and HTTP status of every error answer.

Every error answer is JSON ``{"detail": the text to show, "code": the InlayerError code,
"field": the request field it names or "", "message": detail without the field}``, so that a
client rebuilds the error (`protocol.error_from`) without reading the field out of the text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi.responses import JSONResponse

from inlayer.core.client.protocol import (
    IMAGE_MODEL_FIELDS,
    VAE_FULL,
    VAE_TINY,
    WEIGHT_FREE_CHOICES,
    AddOnInfo,
    AddOnKind,
    EditRequest,
    InlayerError,
    InvalidRequest,
    Mode,
    ModelInfo,
    ModelNotFound,
    ServerBusy,
    TooLarge,
    split_name_value,
)

from .jobs import Job, JobQueue
from .replicas import LOCAL_BACKEND, ReplicaInfo


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_pixels: int


class JobNotFound(InlayerError):
    code = "job_not_found"


# The HTTP status of an error answer, by InlayerError code. A code not listed is the client's
# fault (400) when a request raised it, the server's (500) when a job failed with it.
HTTP_STATUS_BY_CODE = {
    InvalidRequest.code: 422,
    ModelNotFound.code: 422,
    TooLarge.code: 413,
    JobNotFound.code: 404,
    ServerBusy.code: 429,
}


def error_body(error: InlayerError) -> dict[str, str]:
    return {
        "detail": str(error),
        "code": error.code,
        "field": error.field,
        "message": error.message,
    }


def error_response(status: int, error: InlayerError) -> JSONResponse:
    return JSONResponse(error_body(error), status_code=status)


class Service:
    """What the routes share: the queue, the model list and the limits."""

    def __init__(
        self,
        queue: JobQueue,
        list_models: Callable[[], list[ModelInfo]],
        default_model: Callable[[Mode], str],
        device: str,
        limits: Limits,
        list_add_ons: Callable[[], list[AddOnInfo]] = list,
        content_credentials: bool = False,
        a1111_options_path: Path | None = None,
        list_image_models: Callable[[], dict[str, list[str]]] = dict,
        describe_replicas: Callable[[], list[ReplicaInfo]] = list,
        backend: str = LOCAL_BACKEND,
    ) -> None:
        self.queue = queue
        self.list_models = list_models
        self.list_add_ons = list_add_ons  # the LoRAs and tiny autoencoders requests may name
        self.default_model = default_model  # raises ModelNotFound when there is none
        self.device = device
        self.limits = limits
        self.content_credentials = content_credentials  # sign the images the routes return
        self.a1111_options_path = a1111_options_path  # where POST /sdapi/v1/options keeps them
        # The image models each request field may name (restoration_models.image_model_names)
        self.list_image_models = list_image_models
        self.describe_replicas = describe_replicas  # the engines that run jobs, for health
        self.backend = backend  # where jobs run: "local" (this process) or "ray" (Ray Serve)

    def check_model(self, name: str, field_name: str = "model") -> None:
        """Only names the registry lists: a client must never make the server open a path."""
        if not name:
            return
        names = [m.name for m in self.list_models()]
        if name not in names:
            raise InvalidRequest(field_name, f"{name!r} is not a model this server has: {names}")

    def check_add_ons(self, request: EditRequest) -> None:
        """Only LoRAs, autoencoders, ControlNets and IP-Adapters the registry lists, by name:
        never a path."""
        listed = self.list_add_ons()
        for lora in request.loras:
            names = [a.name for a in listed if a.kind == AddOnKind.LORA]
            if lora.name not in names:
                raise InvalidRequest(
                    "loras", f"LoRA {lora.name!r} is not one this server has: {names}"
                )
        if request.vae not in ("", VAE_FULL, VAE_TINY):
            names = [a.name for a in listed if a.kind in (AddOnKind.VAE, AddOnKind.FULL_VAE)]
            if request.vae not in names:
                raise InvalidRequest(
                    "vae",
                    f"{request.vae!r} is not an autoencoder this server has: {names} "
                    f"(or {VAE_FULL!r}, {VAE_TINY!r})",
                )
        names = [a.name for a in listed if a.kind == AddOnKind.CONTROLNET]
        for index, control in enumerate(request.controls):
            if control.model not in names:
                raise InvalidRequest(
                    f"controls[{index}].model",
                    f"ControlNet {control.model!r} is not one this server has: {names}",
                )
        if request.style is not None and request.style.model:
            names = [a.name for a in listed if a.kind == AddOnKind.IP_ADAPTER]
            if request.style.model not in names:
                raise InvalidRequest(
                    "style.model",
                    f"IP-Adapter {request.style.model!r} is not one this server has: {names}",
                )

    def check_image_models(self, request: EditRequest) -> None:
        """Only image models the registry lists, by name: never a path."""
        listed = self.list_image_models()
        for field_name in IMAGE_MODEL_FIELDS:
            names = listed.get(field_name, [])
            name, _ = split_name_value(getattr(request, field_name))
            if name and name != WEIGHT_FREE_CHOICES.get(field_name) and name not in names:
                raise InvalidRequest(
                    field_name, f"{name!r} is not a model this server has for it: {names}"
                )

    def check_pixels(self, field_name: str, width: int, height: int) -> None:
        """Refuse a canvas of more pixels than this server's limit (before anything is made of
        that size)."""
        if width * height > self.limits.max_pixels:
            raise TooLarge(
                field_name,
                f"{width}x{height} is more than this server's limit of "
                f"{self.limits.max_pixels} pixels",
            )

    def submit(self, request: EditRequest, source: str) -> Job:
        if request.image is not None:
            self.check_pixels("image", request.image.width, request.image.height)
        else:
            self.check_pixels("width", request.width or 0, request.height or 0)
        for index, control in enumerate(request.controls):
            self.check_pixels(f"controls[{index}].image", control.image.width, control.image.height)
        if request.style is not None:
            self.check_pixels("style.image", request.style.image.width, request.style.image.height)
        self.check_model(request.model)
        self.check_add_ons(request)
        self.check_image_models(request)
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
