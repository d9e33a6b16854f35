"""An AUTOMATIC1111-compatible subset (/sdapi/v1), so that existing A1111 clients and editor
plug-ins can use Inlayer as their backend.

Each call becomes one `EditRequest` on the same queue as Inlayer's own jobs. Like A1111, the
generate calls answer when the images are done, with the FULL image (the result composited over
the init image) as base64 PNG. Authentication: the token as a Bearer token or as the password of
HTTP Basic auth (auth.py).

Differences from A1111 worth knowing:
- Inlayer always inpaints "only masked": it picks the context around the mask itself, so
  `inpaint_full_res` and `inpaint_full_res_padding` are accepted but do not change the context.
- `mask_blur` becomes the mask's feather (px); A1111's blur is symmetric around the mask edge,
  Inlayer's feather lies outside the mask.
- An interrupted call answers with the images finished so far: none (Inlayer keeps no partial
  images).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import re
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from PIL import Image
from pydantic import BaseModel, ConfigDict

from inlayer.core.client.protocol import (
    SCHEDULERS,
    AddOnKind,
    EditRequest,
    EditResult,
    FillMode,
    InlayerError,
    InvalidRequest,
    JobState,
    LoraChoice,
    Mask,
    Mode,
    Preset,
    RGBAImage,
)
from inlayer.core.engine import image_array
from inlayer.core.images import encode_image, full_size_images, open_image

from .jobs import Job
from .service import HTTP_STATUS_BY_CODE, Service, error_response

# A1111 sampler names ("DPM++ 2M", or with its schedule "DPM++ 2M Karras") -> Inlayer's names.
SAMPLERS = {
    sampler: choice.name for choice in SCHEDULERS.values() for sampler in choice.a1111_samplers
}
# A1111's `inpainting_fill`: 0 fill, 1 original, 2 latent noise, 3 latent nothing.
INPAINTING_FILL = {0: FillMode.BLUR, 1: FillMode.KEEP, 2: FillMode.NOISE, 3: FillMode.NEUTRAL}
# Inlayer's request field -> the A1111 field that set it, so errors name what the client sent.
A1111_FIELDS = {
    "strength": "denoising_strength",
    "guidance": "cfg_scale",
    "count": "batch_size",
    "image": "init_images",
    "scheduler": "sampler_name",
    "feather": "mask_blur",
    "loras": "prompt",  # <lora:NAME:SCALE> in the prompt
}
# A LoRA as A1111 users write it in the prompt: <lora:NAME> or <lora:NAME:SCALE>.
LORA_IN_PROMPT = re.compile(r"<lora:([^<>]+)>")
_POLL_SECONDS = 0.05


class Txt2ImgBody(BaseModel):
    # A1111 clients send many more fields (styles, restore_faces, alwayson_scripts ...): ignored.
    model_config = ConfigDict(extra="ignore")

    prompt: str = ""
    negative_prompt: str = ""
    seed: int = -1
    steps: int = 20
    cfg_scale: float = 7.0
    sampler_name: str | None = None
    sampler_index: str | None = None  # the older name of sampler_name
    scheduler: str | None = None  # A1111 ≥ 1.9 names the schedule apart ("Karras")
    batch_size: int = 1
    n_iter: int = 1
    width: int = 512
    height: int = 512
    override_settings: dict[str, Any] = {}


class Img2ImgBody(Txt2ImgBody):
    init_images: list[str]
    mask: str | None = None
    mask_blur: int = 4
    inpainting_fill: int = 0
    inpaint_full_res: bool = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0
    denoising_strength: float = 0.75


class OptionsBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sd_model_checkpoint: str | None = None


# --------------------------------------------------------------------------------------------
# A1111 fields -> EditRequest
# --------------------------------------------------------------------------------------------


def scheduler_name(body: Txt2ImgBody) -> str:
    sampler = body.sampler_name or body.sampler_index or ""
    if body.scheduler and body.scheduler.lower() not in ("automatic", ""):
        sampler = f"{sampler} {body.scheduler}"
    if not sampler:
        return ""
    if sampler not in SAMPLERS:
        raise InvalidRequest(
            "sampler_name", f"{sampler!r} is not supported; choose one of {sorted(SAMPLERS)}"
        )
    return SAMPLERS[sampler]


def decode_image(data: Any, field: str, max_pixels: int) -> Image.Image:
    """A base64 image (optionally a data: URL), checked for size before it is decompressed."""
    if not isinstance(data, str):
        raise InvalidRequest(field, "must be a base64-encoded image")
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        raw = base64.b64decode(re.sub(r"\s+", "", data), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(field, "is not a base64-encoded PNG, JPEG or WebP image") from None
    return open_image(io.BytesIO(raw), field, max_pixels)


def _mask_pixels(image: Image.Image, invert: bool) -> Image.Image:
    """A1111 reads a mask's alpha when it has transparency, else its brightness."""
    if image.mode in ("RGBA", "LA") and image.getchannel("A").getextrema() != (255, 255):
        mask = image.getchannel("A")
    else:
        mask = image.convert("L")
    return mask.point(lambda value: 255 - value) if invert else mask


def _model(body: Txt2ImgBody, service: Service, checkpoint: str) -> str:
    override = body.override_settings.get("sd_model_checkpoint")
    name = strip_hash(override) if isinstance(override, str) else checkpoint
    service.check_model(name, "override_settings.sd_model_checkpoint")
    return name


def loras_in_prompt(prompt: str) -> tuple[str, tuple[LoraChoice, ...]]:
    """The prompt without its ``<lora:NAME:SCALE>`` tags, and the LoRAs they name."""
    loras = tuple(LoraChoice.parse(tag) for tag in LORA_IN_PROMPT.findall(prompt))
    return " ".join(LORA_IN_PROMPT.sub(" ", prompt).split()), loras


def _shared_fields(body: Txt2ImgBody, service: Service, checkpoint: str) -> dict[str, Any]:
    """The request fields txt2img and img2img set alike. A1111 clients send their steps, CFG
    scale and sampler themselves: the quality preset adds nothing to what they chose."""
    prompt, loras = loras_in_prompt(body.prompt)
    return {
        "prompt": prompt,
        "loras": loras,
        "preset": Preset.QUALITY.value,
        "negative_prompt": body.negative_prompt,
        "steps": body.steps,
        "guidance": body.cfg_scale,
        "seed": body.seed,
        "count": body.batch_size * body.n_iter,
        "scheduler": scheduler_name(body),
        "model": _model(body, service, checkpoint),
        # A1111 clients show /progress's current_image; a latent preview per step is cheap.
        "preview_interval": 1,
    }


def txt2img_request(body: Txt2ImgBody, service: Service, checkpoint: str) -> EditRequest:
    return EditRequest(
        mode=Mode.TXT2IMG,
        width=body.width,
        height=body.height,
        **_shared_fields(body, service, checkpoint),
    )


def img2img_request(body: Img2ImgBody, service: Service, checkpoint: str) -> EditRequest:
    """The request, its image the init image resized to width x height (as A1111's "just
    resize" does)."""
    if not body.init_images:
        raise InvalidRequest("init_images", "needs one base64 image")
    max_pixels = service.limits.max_pixels
    if body.width < 1 or body.height < 1:
        raise InvalidRequest("width", f"{body.width}x{body.height} is empty")
    service.check_pixels("width", body.width, body.height)  # before anything is resized to it
    init = decode_image(body.init_images[0], "init_images.0", max_pixels).convert("RGBA")
    size = (body.width, body.height)
    if init.size != size:
        init = init.resize(size, Image.Resampling.LANCZOS)
    mask = None
    if body.mask is not None:
        mask_image = _mask_pixels(
            decode_image(body.mask, "mask", max_pixels), bool(body.inpainting_mask_invert)
        )
        if mask_image.size != size:
            mask_image = mask_image.resize(size, Image.Resampling.BILINEAR)
        mask = Mask(body.width, body.height, mask_image.tobytes())
    if body.inpainting_fill not in INPAINTING_FILL:
        raise InvalidRequest(
            "inpainting_fill",
            "must be 0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing)",
        )
    return EditRequest(
        mode=Mode.INPAINT if mask is not None else Mode.IMG2IMG,
        image=RGBAImage(body.width, body.height, init.tobytes()),
        mask=mask,
        strength=body.denoising_strength,
        fill=INPAINTING_FILL[body.inpainting_fill],
        grow=0,
        feather=body.mask_blur,
        **_shared_fields(body, service, checkpoint),
    )


def as_a1111(error: InlayerError) -> InlayerError:
    """`error`, naming the A1111 field the client sent where it names one of Inlayer's."""
    if isinstance(error, InvalidRequest) and error.field in A1111_FIELDS:
        return type(error)(A1111_FIELDS[error.field], error.message)
    return error


# --------------------------------------------------------------------------------------------
# EditResult -> A1111 answer
# --------------------------------------------------------------------------------------------


def png_base64(pixels: np.ndarray, parameters: dict[str, Any], *, sign: bool) -> str:
    """A result as base64 PNG that says it was made with AI (and is signed when `sign`)."""
    data = encode_image(pixels, "PNG", parameters, content_credentials=sign)
    return base64.b64encode(data).decode("ascii")


def info_text(body: Txt2ImgBody, result: EditResult, seed: int, sampler: str) -> str:
    """The "infotext" A1111 writes under each image."""
    text = body.prompt
    if body.negative_prompt:
        text += f"\nNegative prompt: {body.negative_prompt}"
    text += (
        f"\nSteps: {body.steps}, Sampler: {sampler}, CFG scale: {body.cfg_scale:g}, "
        f"Seed: {seed}, Size: {result.canvas_width}x{result.canvas_height}, Model: {result.model}"
    )
    if isinstance(body, Img2ImgBody):
        text += f", Denoising strength: {body.denoising_strength:g}"
    return text


def answer(
    body: Txt2ImgBody, request: EditRequest, result: EditResult | None, *, sign: bool = False
) -> dict[str, Any]:
    parameters = body.model_dump()
    if isinstance(body, Img2ImgBody):
        parameters["init_images"] = None  # A1111 does not echo the pixels back either
        parameters["mask"] = None
    if result is None:  # interrupted
        info = {"interrupted": True, "all_seeds": [], "infotexts": []}
        return {"images": [], "parameters": parameters, "info": json.dumps(info)}
    seeds = [g.seed for g in result.images]
    sampler = body.sampler_name or body.sampler_index or "Euler a"
    infotexts = [info_text(body, result, seed, sampler) for seed in seeds]
    info = {
        "prompt": body.prompt,
        "all_prompts": [body.prompt] * len(seeds),
        "negative_prompt": body.negative_prompt,
        "all_negative_prompts": [body.negative_prompt] * len(seeds),
        "seed": seeds[0] if seeds else body.seed,
        "all_seeds": seeds,
        "subseed": -1,
        "all_subseeds": [-1] * len(seeds),
        "width": result.canvas_width,
        "height": result.canvas_height,
        "sampler_name": sampler,
        "cfg_scale": body.cfg_scale,
        "steps": body.steps,
        "batch_size": body.batch_size,
        "sd_model_name": result.model,
        "denoising_strength": getattr(body, "denoising_strength", None),
        "infotexts": infotexts,
        "index_of_first_image": 0,
        "interrupted": False,
    }
    images = [
        png_base64(pixels, result.parameters_of(generated), sign=sign)
        for pixels, generated in zip(full_size_images(request, result), result.images, strict=True)
    ]
    return {"images": images, "parameters": parameters, "info": json.dumps(info)}


def strip_hash(title: str) -> str:
    """A1111 titles look like "name [hash]"; Inlayer's model names have no hash."""
    return re.sub(r"\s*\[[0-9a-fA-F]+\]$", "", title)


# --------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------


async def _wait(request: Request, service: Service, job: Job) -> None:
    """Wait for the job without blocking the event loop; a client that hung up gets its job
    cancelled, since nobody is left to receive the images."""
    while not job.finished.is_set():
        if await request.is_disconnected():
            service.queue.cancel(job)
            return
        await asyncio.sleep(_POLL_SECONDS)


def a1111_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/sdapi/v1", tags=["AUTOMATIC1111"])
    # The checkpoint /options selected; "" = Inlayer's default for each mode.
    selected = {"checkpoint": ""}

    async def run(request: Request, body: Txt2ImgBody, edit: EditRequest) -> Any:
        try:
            edit.validate()
            job = service.submit(edit, source="a1111")
        except InvalidRequest as error:
            raise as_a1111(error) from None
        await _wait(request, service, job)
        status = service.queue.status(job)
        if status.state == JobState.FAILED:
            # A job fails on the server's side unless the table says otherwise: 500.
            failure = as_a1111(status.failure())
            return error_response(HTTP_STATUS_BY_CODE.get(failure.code, 500), failure)
        # Encoding PNGs takes a while for big images: off the event loop.
        return await asyncio.to_thread(
            answer, body, edit, status.result, sign=service.content_credentials
        )

    @router.post("/txt2img")
    async def txt2img(request: Request, body: Txt2ImgBody) -> Any:
        edit = txt2img_request(body, service, selected["checkpoint"])
        return await run(request, body, edit)

    @router.post("/img2img")
    async def img2img(request: Request, body: Img2ImgBody) -> Any:
        edit = await asyncio.to_thread(img2img_request, body, service, selected["checkpoint"])
        return await run(request, body, edit)

    @router.get("/progress")
    async def progress(skip_current_image: bool = False) -> dict[str, Any]:
        job = service.queue.latest("a1111")
        running = job is not None and job.state == JobState.RUNNING
        fraction = job.step / job.total if running and job.total else 0.0
        current_image = None
        if running and not skip_current_image and job.preview is not None:
            current_image = png_base64(image_array(job.preview))
        return {
            "progress": fraction,
            "eta_relative": (job.eta_seconds() or 0.0) if running else 0.0,
            "state": {
                "skipped": False,
                "interrupted": job is not None and job.cancel.is_set(),
                "job": job.job_id if running else "",
                "job_count": service.queue.queue_length(),
                "job_timestamp": "0",
                "job_no": 0,
                "sampling_step": job.step if running else 0,
                "sampling_steps": job.total if running else 0,
            },
            "current_image": current_image,
            "textinfo": None,
        }

    @router.post("/interrupt")
    async def interrupt() -> dict[str, Any]:
        """Stop the running job (whichever client sent it), as A1111 does."""
        job = service.queue.running()
        if job is not None:
            service.queue.cancel(job)
        return {}

    @router.get("/sd-models")
    async def sd_models() -> list[dict[str, Any]]:
        return [
            {
                "title": m.name,
                "model_name": m.name,
                "hash": None,
                "sha256": None,
                "filename": m.source,
                "config": None,
            }
            for m in service.list_models()
        ]

    @router.get("/loras")
    async def loras() -> list[dict[str, Any]]:
        """The LoRAs a prompt may name as <lora:NAME:SCALE>."""
        return [
            {"name": a.name, "alias": a.name, "path": a.source, "metadata": {}}
            for a in service.list_add_ons()
            if a.kind == AddOnKind.LORA
        ]

    @router.get("/samplers")
    async def samplers() -> list[dict[str, Any]]:
        return [
            {"name": name, "aliases": [value], "options": {}} for name, value in SAMPLERS.items()
        ]

    @router.get("/options")
    async def get_options() -> dict[str, Any]:
        checkpoint = selected["checkpoint"] or service.default_model(Mode.TXT2IMG)
        return {"sd_model_checkpoint": checkpoint, "samples_format": "png"}

    @router.post("/options")
    async def set_options(body: OptionsBody) -> Any:
        if body.sd_model_checkpoint is not None:
            name = strip_hash(body.sd_model_checkpoint)
            service.check_model(name, "sd_model_checkpoint")
            selected["checkpoint"] = name
        return None

    return router
