"""An AUTOMATIC1111-compatible subset (/sdapi/v1), so that existing A1111 clients and editor
plug-ins can use Inlayer as their backend.

Each call becomes one `EditRequest` on the same queue as Inlayer's own jobs. Like A1111, the
generate calls answer when the images are done, with the FULL image (the result composited over
the init image) as base64 PNG. Authentication: the token as a Bearer token or as the password of
HTTP Basic auth (auth.py).

Every field of a txt2img, img2img or extras body acts, is a no-op at the values A1111 clients
send, or is refused with a 422 naming it (a1111_fields.py, docs/a1111.md): a client never gets a
plain image believing it got hires fix or a ControlNet-guided one. The options object lives in
a1111_options.py.

Differences from A1111 worth knowing:
- Inlayer always inpaints "only masked": it picks the context around the mask itself, so
  `inpaint_full_res` and `inpaint_full_res_padding` are accepted but do not change the context.
- `mask_blur` becomes the mask's feather (px); A1111's blur is symmetric around the mask edge,
  Inlayer's feather lies outside the mask.
- An interrupted call answers with the images finished so far: none (Inlayer keeps no partial
  images).
- When the queue is full, a generate call waits for room, as A1111's callers wait for its one
  queue, instead of the 429 /v1 answers (Inlayer's own clients retry); it gives up when its
  client hangs up, and answers 429 after `QUEUE_WAIT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from PIL import Image
from pydantic import BaseModel, ConfigDict

from inlayer.core.client.protocol import (
    SCHEDULERS,
    AddOnKind,
    ControlChoice,
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

from .a1111_controlnet import controls_of, unit_field
from .a1111_faces import (
    extras_face_restore,
    face_restore_request,
    face_restorers_answer,
    restore_faces_field,
    with_restored_faces,
)
from .a1111_fields import EXTRAS_FIELDS, IMG2IMG_FIELDS, TXT2IMG_FIELDS, check_fields
from .a1111_options import OWN_VAE, A1111Options, check_option, strip_hash
from .jobs import Job, QueueFull
from .service import HTTP_STATUS_BY_CODE, Service, error_response

# A1111 sampler names ("DPM++ 2M", or with its schedule "DPM++ 2M Karras") -> Inlayer's names.
SAMPLERS = {
    sampler: choice.name for choice in SCHEDULERS.values() for sampler in choice.a1111_samplers
}
# A1111's schedules ("DPM++ 2M" with the schedule "Karras" is "DPM++ 2M Karras").
SCHEDULES = [
    "Automatic",
    *(
        schedule
        for schedule in ("Karras", "Exponential", "SGM Uniform")
        if any(sampler.endswith(f" {schedule}") for sampler in SAMPLERS)
    ),
]
# A1111 samplers diffusers has no equivalent of, and the nearest one Inlayer has.
NEAREST_SAMPLER = {"DPM fast": "DPM2", "DPM adaptive": "DPM2 a"}
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
    "clip_skip": "CLIP_stop_at_last_layers",  # an option, or override_settings
    "noise_seed_delta": "eta_noise_seed_delta",
    "vae": "sd_vae",
}
# A LoRA as A1111 users write it in the prompt: <lora:NAME> or <lora:NAME:SCALE>.
LORA_IN_PROMPT = re.compile(r"<lora:([^<>]+)>")
_POLL_SECONDS = 0.05
QUEUE_WAIT_SECONDS = 3600.0  # how long a generate call waits for room in a full queue


class Txt2ImgBody(BaseModel):
    # A1111 clients send many more fields (styles, restore_faces, alwayson_scripts ...): kept,
    # so that `check_body` acts on each or refuses it (a1111_fields.py).
    model_config = ConfigDict(extra="allow")

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
    send_images: bool = True
    disable_extra_networks: bool = False
    tiling: bool = False
    # Hires fix (txt2img): generate, upscale by hr_scale (or to hr_resize_x x _y), refine.
    enable_hr: bool = False
    hr_scale: float = 2.0
    hr_upscaler: str | None = None
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    denoising_strength: float | None = None


class Img2ImgBody(Txt2ImgBody):
    init_images: list[str]
    mask: str | None = None
    mask_blur: int = 4
    inpainting_fill: int = 0
    inpaint_full_res: bool = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0
    denoising_strength: float = 0.75


# --------------------------------------------------------------------------------------------
# A1111 fields -> EditRequest
# --------------------------------------------------------------------------------------------


def scheduler_name(body: Txt2ImgBody) -> str:
    sampler = body.sampler_name or body.sampler_index or ""
    if body.scheduler and body.scheduler.lower() not in ("automatic", ""):
        sampler = f"{sampler} {body.scheduler}"
    if not sampler:
        return ""
    if sampler in NEAREST_SAMPLER:
        raise InvalidRequest(
            "sampler_name",
            f"{sampler!r} has no equivalent in diffusers; the nearest is "
            f"{NEAREST_SAMPLER[sampler]!r}",
        )
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


def check_body(body: Txt2ImgBody) -> None:
    """Refuse (422, naming the field) what the body asks for that Inlayer would not do."""
    table = IMG2IMG_FIELDS if isinstance(body, Img2ImgBody) else TXT2IMG_FIELDS
    check_fields(body.model_dump(exclude_unset=True), table)


def _model(body: Txt2ImgBody, service: Service, options: A1111Options) -> str:
    override = body.override_settings.get("sd_model_checkpoint")
    name = strip_hash(override) if isinstance(override, str) else options.checkpoint()
    service.check_model(name, "override_settings.sd_model_checkpoint")
    return name


def full_vae_name(value: Any, service: Service, field: str) -> str:
    """The request's `vae` for an `sd_vae` value: "" (the model's own) for Automatic and None,
    else the name of the listed full autoencoder it names (by name or by file name)."""
    if value in OWN_VAE:
        return ""
    listed = [a for a in service.list_add_ons() if a.kind == AddOnKind.FULL_VAE]
    for vae in listed:
        if value in (vae.name, Path(vae.source).name):
            return vae.name
    names = [Path(vae.source).name for vae in listed]
    raise InvalidRequest(
        field,
        f"{value!r} is not an autoencoder of GET /sdapi/v1/sd-vae ({names}, or Automatic or "
        "None for the model's own); put VAE files in a vae/ folder of a models folder",
    )


def _vae(body: Txt2ImgBody, service: Service, options: A1111Options) -> str:
    overridden = "sd_vae" in body.override_settings
    field = "override_settings.sd_vae" if overridden else "sd_vae"
    return full_vae_name(options.chosen("sd_vae", body.override_settings), service, field)


def loras_in_prompt(prompt: str) -> tuple[str, tuple[LoraChoice, ...]]:
    """The prompt without its ``<lora:NAME:SCALE>`` tags, and the LoRAs they name."""
    loras = tuple(LoraChoice.parse(tag) for tag in LORA_IN_PROMPT.findall(prompt))
    return " ".join(LORA_IN_PROMPT.sub(" ", prompt).split()), loras


def _shared_fields(body: Txt2ImgBody, service: Service, options: A1111Options) -> dict[str, Any]:
    """The request fields txt2img and img2img set alike. A1111 clients send their steps, CFG
    scale and sampler themselves: the quality preset adds nothing to what they chose."""
    check_body(body)
    for name, value in body.override_settings.items():
        check_option(name, value, f"override_settings.{name}")
    if body.disable_extra_networks:
        prompt, loras = body.prompt, ()
    else:
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
        "model": _model(body, service, options),
        "clip_skip": options.number("CLIP_stop_at_last_layers", body.override_settings),
        "noise_seed_delta": options.number("eta_noise_seed_delta", body.override_settings),
        "vae": _vae(body, service, options),
        # A1111 clients show /progress's current_image; a latent preview per step is cheap.
        "preview_interval": 1,
        **restore_faces_field(body, service),
        "tiling": body.tiling,
    }


# A1111's hires denoising strength when a client leaves it out, and its latent upscalers, which
# Inlayer's hires fix takes as its plain (bicubic) scaling.
HIRES_STRENGTH = 0.7
LATENT_UPSCALERS = ("Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (nearest)")


def txt2img_request(body: Txt2ImgBody, service: Service, options: A1111Options) -> EditRequest:
    """The request; with `enable_hr`, a txt2img of the hires size, which the engine generates at
    the model's size, scales up (with `hr_upscaler` where it names an upscaler model) and
    refines in tiles at `denoising_strength`: A1111's hires fix. ControlNet units guide the
    first pass, their images fitted to the hires size (the canvas)."""
    width, height, hires = body.width, body.height, {}
    if body.enable_hr:
        if body.hr_resize_x > 0 and body.hr_resize_y > 0:
            width, height = body.hr_resize_x, body.hr_resize_y
        elif not 1.0 <= body.hr_scale <= 8.0:
            raise InvalidRequest("hr_scale", f"is {body.hr_scale}; it must be in [1, 8]")
        else:
            width, height = round(width * body.hr_scale), round(height * body.hr_scale)
        service.check_pixels("hr_scale", width, height)
        strength = HIRES_STRENGTH if body.denoising_strength is None else body.denoising_strength
        if not 0.0 < strength <= 1.0:
            raise InvalidRequest("denoising_strength", f"is {strength}; it must be in (0, 1]")
        upscaler = body.hr_upscaler or ""
        if upscaler in (*LATENT_UPSCALERS, *UPSCALERS):  # not a model: the engine's scaling
            upscaler = ""
        hires = {"refine": f"{strength:g}", "upscaler": upscaler}
    shared = _shared_fields(body, service, options)
    return EditRequest(
        mode=Mode.TXT2IMG,
        width=width,
        height=height,
        controls=_controls(body, service, (width, height)),
        **shared,
        **hires,
    )


def _controls(
    body: Txt2ImgBody,
    service: Service,
    size: tuple[int, int],
    init: Image.Image | None = None,
) -> tuple[ControlChoice, ...]:
    """The ControlNet units of the body (a1111_controlnet.py), their images at `size` (the
    canvas's)."""
    max_pixels = service.limits.max_pixels
    return controls_of(
        body.model_dump(exclude_unset=True),
        service,
        size,
        lambda data, field: decode_image(data, field, max_pixels),
        init,
    )


def img2img_request(body: Img2ImgBody, service: Service, options: A1111Options) -> EditRequest:
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
    shared = _shared_fields(body, service, options)
    return EditRequest(
        mode=Mode.INPAINT if mask is not None else Mode.IMG2IMG,
        image=RGBAImage(body.width, body.height, init.tobytes()),
        mask=mask,
        strength=body.denoising_strength,
        fill=INPAINTING_FILL[body.inpainting_fill],
        grow=0,
        feather=body.mask_blur,
        controls=_controls(body, service, size, init),
        **shared,
    )


def as_a1111(error: InlayerError) -> InlayerError:
    """`error`, naming the A1111 field the client sent where it names one of Inlayer's."""
    if isinstance(error, InvalidRequest) and error.field in A1111_FIELDS:
        return type(error)(A1111_FIELDS[error.field], error.message)
    if isinstance(error, InvalidRequest) and error.field != unit_field(error.field):
        return type(error)(unit_field(error.field), error.message)
    return error


# --------------------------------------------------------------------------------------------
# EditResult -> A1111 answer
# --------------------------------------------------------------------------------------------


def png_base64(
    pixels: np.ndarray,
    parameters: dict[str, Any] | None = None,
    *,
    sign: bool = False,
    image_format: str = "PNG",
) -> str:
    """A result as base64 PNG (or `image_format`) that says it was made with AI (and is signed
    when `sign`)."""
    data = encode_image(pixels, image_format, parameters or {}, content_credentials=sign)
    return base64.b64encode(data).decode("ascii")


def info_text(
    body: Txt2ImgBody, request: EditRequest, result: EditResult, seed: int, sampler: str
) -> str:
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
    # A1111 writes these two only where they differ from their defaults.
    if request.clip_skip != 1:
        text += f", Clip skip: {request.clip_skip}"
    if request.noise_seed_delta:
        text += f", ENSD: {request.noise_seed_delta}"
    return text


def answer(
    body: Txt2ImgBody,
    request: EditRequest,
    result: EditResult | None,
    *,
    sign: bool = False,
    image_format: str = "PNG",
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
    infotexts = [info_text(body, request, result, seed, sampler) for seed in seeds]
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
        png_base64(pixels, result.parameters_of(generated), sign=sign, image_format=image_format)
        for pixels, generated in zip(full_size_images(request, result), result.images, strict=True)
    ]
    if not body.send_images:
        images = []
    return {"images": images, "parameters": parameters, "info": json.dumps(info)}


# --------------------------------------------------------------------------------------------
# Extras, png-info, memory
# --------------------------------------------------------------------------------------------

# The upscalers GET /upscalers lists and extras take: A1111's names -> Pillow's filter ("None"
# keeps the size).
UPSCALERS = {
    "None": None,
    "Lanczos": Image.Resampling.LANCZOS,
    "Nearest": Image.Resampling.NEAREST,
}


class ExtrasBody(BaseModel):
    model_config = ConfigDict(extra="allow")  # checked against EXTRAS_FIELDS

    resize_mode: int = 0
    upscaling_resize: float = 2.0
    upscaling_resize_w: int = 512
    upscaling_resize_h: int = 512
    upscaling_crop: bool = True
    upscaler_1: str = "None"


class ExtrasSingleBody(ExtrasBody):
    image: str


class ExtrasBatchItem(BaseModel):
    data: str
    name: str = ""


class ExtrasBatchBody(ExtrasBody):
    imageList: list[ExtrasBatchItem]  # A1111's name


class PngInfoBody(BaseModel):
    image: str


def upscaled_size(body: ExtrasBody, size: tuple[int, int]) -> tuple[int, int]:
    if body.resize_mode == 0:
        if not 0 < body.upscaling_resize <= 8:
            raise InvalidRequest("upscaling_resize", "must be more than 0 and at most 8")
        return round(size[0] * body.upscaling_resize), round(size[1] * body.upscaling_resize)
    if body.resize_mode == 1:
        if body.upscaling_resize_w < 1 or body.upscaling_resize_h < 1:
            raise InvalidRequest("upscaling_resize_w", "width and height must be at least 1")
        return body.upscaling_resize_w, body.upscaling_resize_h
    raise InvalidRequest("resize_mode", "must be 0 (scale by) or 1 (scale to)")


# An upscale by an upscaler model: the image and the size asked for -> a picture at least as large.
ModelUpscale = Callable[[Image.Image, tuple[int, int]], Image.Image]


def upscale(
    body: ExtrasBody,
    data: str,
    field: str,
    service: Service,
    model_upscaled: ModelUpscale | None = None,
) -> str:
    """One image of an extras call, upscaled as the body says, as base64 PNG: by Pillow, or,
    when `upscaler_1` names an installed upscaler model, first by `model_upscaled` (the image
    and the size asked for: it answers a picture at least that large)."""
    if body.upscaler_1 not in UPSCALERS and model_upscaled is None:
        raise InvalidRequest("upscaler_1", f"{body.upscaler_1!r} is not one of {list(UPSCALERS)}")
    image = decode_image(data, field, service.limits.max_pixels).convert("RGBA")
    width, height = upscaled_size(body, image.size)
    service.check_pixels("upscaling_resize", width, height)
    resample = UPSCALERS.get(body.upscaler_1, Image.Resampling.LANCZOS)
    if model_upscaled is not None:
        image = model_upscaled(image, (width, height))
    if resample is not None and image.size != (width, height):
        if body.resize_mode == 1 and body.upscaling_crop:
            # Scale to cover the target, then cut the middle: A1111's "crop to fit".
            cover = max(width / image.width, height / image.height)
            image = image.resize(
                (max(width, round(image.width * cover)), max(height, round(image.height * cover))),
                resample,
            )
            left, top = (image.width - width) // 2, (image.height - height) // 2
            image = image.crop((left, top, left + width, top + height))
        else:
            image = image.resize((width, height), resample)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# The last line of A1111's infotext: "Steps: 20, Sampler: Euler a, Size: 512x512, ...".
_INFOTEXT_ITEM = re.compile(r'\s*([\w ]+):\s*("(?:\\.|[^"])*"|[^,]*)(?:,|$)')


def parse_infotext(text: str) -> dict[str, Any]:
    """A1111's `parameters` text as fields: Prompt, Negative prompt and the settings line."""
    *lines, last = text.strip().split("\n")
    if not _INFOTEXT_ITEM.match(last) or "Steps:" not in last:
        lines.append(last)
        last = ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    fields: dict[str, Any] = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in _INFOTEXT_ITEM.findall(last):
        fields[key.strip()] = value.strip()
    return fields


def png_info_answer(image: Image.Image) -> dict[str, Any]:
    """POST /png-info: the A1111 `parameters` text (Inlayer writes it too) and its fields, and
    every other text the file carries (Inlayer's XMP among them)."""
    text = image.info.get("parameters", "")
    items = {
        key: value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        for key, value in image.info.items()
        if key != "parameters" and isinstance(value, (str, bytes))
    }
    parameters = parse_infotext(text) if text else {}
    return {"info": text, "items": items, "parameters": parameters}


def memory_report() -> dict[str, Any]:
    """GET /memory in A1111's shape: the machine's RAM and, where there is one, the GPU's."""
    import psutil  # accelerate's dependency
    import torch

    ram = psutil.virtual_memory()
    report: dict[str, Any] = {
        "ram": {"free": ram.available, "used": ram.total - ram.available, "total": ram.total}
    }
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        report["cuda"] = {
            "system": {"free": free, "used": total - free, "total": total},
            "active": {"current": torch.cuda.memory_allocated(), "peak": 0},
            "allocated": {"current": torch.cuda.memory_allocated(), "peak": 0},
            "reserved": {"current": torch.cuda.memory_reserved(), "peak": 0},
            "inactive": {"current": 0, "peak": 0},
            "events": {"retries": 0, "oom": 0},
        }
    else:
        report["cuda"] = {"error": "no CUDA device"}
    return report


# --------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------


async def _submit_when_room(request: Request, service: Service, edit: EditRequest) -> Job | None:
    """The job of `edit`, queued as soon as the queue has room (None: the client hung up while
    waiting, so nothing was queued); QueueFull after `QUEUE_WAIT_SECONDS`."""
    deadline = asyncio.get_running_loop().time() + QUEUE_WAIT_SECONDS
    while True:
        try:
            return service.submit(edit, source="a1111")
        except QueueFull:
            if asyncio.get_running_loop().time() >= deadline:
                raise
        if await request.is_disconnected():
            return None
        await asyncio.sleep(_POLL_SECONDS)


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
    options = A1111Options(service.a1111_options_path)
    skipped = {"job": ""}  # the job POST /skip ended, so that /progress says "skipped"

    async def run(request: Request, body: Txt2ImgBody, edit: EditRequest) -> Any:
        try:
            edit.validate()
            job = await _submit_when_room(request, service, edit)
        except InvalidRequest as error:
            raise as_a1111(error) from None
        if job is None:  # nobody is left to answer
            return Response(status_code=499)
        await _wait(request, service, job)
        status = service.queue.status(job)
        if status.state == JobState.FAILED:
            # A job fails on the server's side unless the table says otherwise: 500.
            failure = as_a1111(status.failure())
            return error_response(HTTP_STATUS_BY_CODE.get(failure.code, 500), failure)
        # Encoding PNGs takes a while for big images: off the event loop.
        return await asyncio.to_thread(
            answer,
            body,
            edit,
            status.result,
            sign=service.content_credentials,
            image_format=options.image_format(body.override_settings),
        )

    @router.post("/txt2img")
    async def txt2img(request: Request, body: Txt2ImgBody) -> Any:
        edit = txt2img_request(body, service, options)
        return await run(request, body, edit)

    @router.post("/img2img")
    async def img2img(request: Request, body: Img2ImgBody) -> Any:
        edit = await asyncio.to_thread(img2img_request, body, service, options)
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
                "skipped": job is not None and skipped["job"] == job.job_id,
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

    @router.post("/skip")
    async def skip() -> dict[str, Any]:
        """A1111 skips to the next batch of a call; Inlayer makes a call's images in one batch,
        so skipping it ends the call, which answers with no images."""
        job = service.queue.running()
        if job is not None:
            skipped["job"] = job.job_id
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

    @router.post("/refresh-checkpoints")
    async def refresh_checkpoints() -> None:
        """Inlayer reads the models folders on every listing: nothing is cached to refresh."""

    @router.post("/refresh-loras")
    async def refresh_loras() -> None:
        """Inlayer reads the LoRA folders on every listing: nothing is cached to refresh."""

    @router.post("/refresh-vae")
    async def refresh_vae() -> None:
        """Inlayer reads the vae/ folders on every listing: nothing is cached to refresh."""

    @router.get("/sd-modules")
    async def sd_modules() -> list[dict[str, Any]]:
        """Separate text encoders and autoencoders (Forge's modules): Inlayer uses each
        checkpoint's own."""
        return []

    @router.get("/sd-vae")
    async def sd_vae() -> list[dict[str, Any]]:
        """The full autoencoders `sd_vae` may name in place of a checkpoint's own (the vae/
        folders; tiny autoencoders are not these), by file name as A1111 lists them."""
        return [
            {"model_name": Path(a.source).name, "filename": a.source}
            for a in service.list_add_ons()
            if a.kind == AddOnKind.FULL_VAE
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

    @router.get("/schedulers")
    async def schedulers() -> list[dict[str, Any]]:
        return [
            {
                "name": schedule.lower().replace(" ", "_"),
                "label": schedule,
                "aliases": None,
                "default_rho": -1,
                "need_inner_model": False,
            }
            for schedule in SCHEDULES
        ]

    def upscaler_models() -> dict[str, str]:
        """The installed upscaler models: name -> file."""
        return {a.name: a.source for a in service.list_add_ons() if a.kind == AddOnKind.UPSCALER}

    @router.get("/upscalers")
    async def upscalers() -> list[dict[str, Any]]:
        plain = [
            {"name": name, "model_name": None, "model_path": None, "model_url": None, "scale": 4}
            for name in UPSCALERS
        ]
        models = [
            {"name": name, "model_name": name, "model_path": path, "model_url": None, "scale": 4}
            for name, path in upscaler_models().items()
        ]
        return plain + models

    def by_model(upscaler: str) -> ModelUpscale:
        """Upscale by the model `upscaler` as a job of the queue (×2, or ×4 for a larger size),
        from a worker thread of the route."""

        def run(image: Image.Image, size: tuple[int, int]) -> Image.Image:
            factor = 2 if size[0] <= 2 * image.width and size[1] <= 2 * image.height else 4
            edit = EditRequest(
                mode=Mode.UPSCALE,
                image=RGBAImage(image.width, image.height, image.tobytes()),
                scale=factor,
                upscaler=upscaler,
            )
            edit.validate()
            job = service.submit(edit, source="a1111")
            job.finished.wait()
            status = service.queue.status(job)
            if status.state != JobState.DONE or status.result is None:
                raise as_a1111(status.failure())
            out = status.result.images[0].image
            return Image.frombytes("RGBA", (out.width, out.height), out.data)

        return run

    def extras_upscaler(body: ExtrasBody) -> ModelUpscale | None:
        if body.upscaler_1 in UPSCALERS:
            return None
        if body.upscaler_1 not in upscaler_models():
            names = [*UPSCALERS, *upscaler_models()]
            raise InvalidRequest("upscaler_1", f"{body.upscaler_1!r} is not one of {names}")
        return by_model(body.upscaler_1)

    @router.get("/latent-upscale-modes")
    async def latent_upscale_modes() -> list[dict[str, Any]]:
        return []

    @router.get("/hypernetworks")
    async def hypernetworks() -> list[dict[str, Any]]:
        return []

    @router.get("/face-restorers")
    async def face_restorers() -> list[dict[str, Any]]:
        return face_restorers_answer(service)

    @router.get("/realesrgan-models")
    async def realesrgan_models() -> list[dict[str, Any]]:
        return []

    @router.get("/prompt-styles")
    async def prompt_styles() -> list[dict[str, Any]]:
        return []

    @router.get("/embeddings")
    async def embeddings() -> dict[str, Any]:
        return {"loaded": {}, "skipped": {}}

    @router.get("/scripts")
    async def scripts() -> dict[str, list[str]]:
        # The ControlNet extension's script, where a ControlNet is installed (clients look here).
        controlnets = [a for a in service.list_add_ons() if a.kind == AddOnKind.CONTROLNET]
        names = ["controlnet"] if controlnets else []
        return {"txt2img": names, "img2img": names}

    @router.get("/script-info")
    async def script_info() -> list[dict[str, Any]]:
        return []

    @router.get("/cmd-flags")
    async def cmd_flags() -> dict[str, Any]:
        """The few flags clients read, as an A1111 started with none would report them."""
        return {
            "api": True,
            "nowebui": True,
            "listen": False,
            "port": None,
            "ckpt_dir": None,
            "lora_dir": None,
            "medvram": False,
            "lowvram": False,
            "xformers": False,
            "no_half": service.device == "cpu",
            "use_cpu": [service.device] if service.device == "cpu" else [],
        }

    @router.get("/memory")
    async def memory() -> dict[str, Any]:
        return await asyncio.to_thread(memory_report)

    @router.get("/options")
    async def get_options() -> dict[str, Any]:
        values = options.all()
        if not values["sd_model_checkpoint"]:
            values["sd_model_checkpoint"] = service.default_model(Mode.TXT2IMG)
        return values

    @router.post("/options")
    async def set_options(body: dict[str, Any]) -> Any:
        if isinstance(body.get("sd_model_checkpoint"), str):
            body["sd_model_checkpoint"] = strip_hash(body["sd_model_checkpoint"])
            service.check_model(body["sd_model_checkpoint"], "sd_model_checkpoint")
        if "sd_vae" in body:
            full_vae_name(body["sd_vae"], service, "sd_vae")
        options.update(body)
        return None

    async def job_result(request: Request, edit: EditRequest) -> EditResult:
        """The result of a job the route runs for its own purposes; its failure as an error."""
        try:
            job = service.submit(edit, source="a1111")
        except InvalidRequest as error:
            raise as_a1111(error) from None
        await _wait(request, service, job)
        status = service.queue.status(job)
        if status.state == JobState.FAILED:
            raise as_a1111(status.failure())
        assert status.result is not None
        return status.result

    async def with_faces(request: Request, body: ExtrasBody, image: str) -> str:
        """An extras image with its faces restored where the body asks (a1111_faces.py)."""
        asked = extras_face_restore(body, service)
        if asked is None:
            return image
        restorer, visibility = asked
        decoded = decode_image(image, "image", service.limits.max_pixels).convert("RGBA")
        pixels = np.asarray(decoded)
        result = await job_result(request, face_restore_request(pixels, restorer))
        return await asyncio.to_thread(
            png_base64, with_restored_faces(pixels, result, visibility), result.parameters
        )

    @router.post("/extra-single-image")
    async def extra_single_image(request: Request, body: ExtrasSingleBody) -> dict[str, Any]:
        check_fields(body.model_dump(exclude_unset=True), EXTRAS_FIELDS)
        model = extras_upscaler(body)
        image = await asyncio.to_thread(upscale, body, body.image, "image", service, model)
        return {"html_info": "", "image": await with_faces(request, body, image)}

    @router.post("/extra-batch-images")
    async def extra_batch_images(request: Request, body: ExtrasBatchBody) -> dict[str, Any]:
        check_fields(body.model_dump(exclude_unset=True), EXTRAS_FIELDS)
        model = extras_upscaler(body)
        images = [
            await with_faces(
                request,
                body,
                await asyncio.to_thread(
                    upscale, body, item.data, f"imageList.{index}.data", service, model
                ),
            )
            for index, item in enumerate(body.imageList)
        ]
        return {"html_info": "", "images": images}

    @router.post("/png-info")
    async def png_info(body: PngInfoBody) -> dict[str, Any]:
        image = await asyncio.to_thread(
            decode_image, body.image, "image", service.limits.max_pixels
        )
        return png_info_answer(image)

    return router
