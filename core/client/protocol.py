"""The request and result types that every part of Inlayer speaks.

Standard library only: the GIMP and Krita plug-ins carry this module (and ``client.py``) into
their embedded Python, which has no numpy, Pillow or torch.

Words used throughout Inlayer:

- **Canvas**: the input image of a request, in its own pixel coordinates (for a plug-in, the
  rectangle of the layer it sent).
- **Mask**: an 8-bit soft mask the size of the canvas; 255 = repaint fully, 0 = keep, grey = blend.
- **Mask bounds**: the rectangle around the grown and feathered mask; pixels outside it are never
  changed. A result image covers exactly this rectangle (the whole canvas when there is no mask).
- **Context bounds**: the larger rectangle around the mask bounds that the model sees, so that
  what it paints fits the surroundings.

Pixels are 8-bit sRGB RGBA, row-major, 4 bytes per pixel, unpremultiplied. Plug-ins convert higher
precisions (16-bit integer, half and full float) to 8 bits before sending and write results back
in the document's own precision; Inlayer never receives or returns anything else.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import __version__

PROTOCOL_VERSION = 2  # 2: the modes and fields of guided edits, canvas, restore and Ray

# Decompression-bomb guard: no side longer than this, and no more pixels than MAX_PIXELS.
MAX_SIDE = 16384
MAX_PIXELS = 8192 * 8192
MAX_STEPS = 150
MAX_COUNT = 16
MAX_PROMPT_CHARS = 4000
MAX_LORAS = 16
MAX_LORA_SCALE = 10.0
MAX_REFERENCE_CHARS = 4096  # a name or path of a LoRA or an autoencoder
MAX_CLIP_SKIP = 12  # SD 1.5's text encoder has 12 layers (SDXL's second one 32)
MAX_CONTROLS = 4  # ControlNets a request may apply at once
MAX_IMAGE_GUIDANCE = 20.0  # an edit's image guidance
MAX_STYLE_SCALE = 2.0  # how strongly a style reference may steer
# How a control image becomes the ControlNet's map (core/preprocessors.py): "none" takes it as
# the map it already is (white lines on black, a depth map), the others derive the map from it.
CONTROL_PREPROCESSORS = ("none", "canny", "scribble", "lineart", "depth", "softedge")


class Mode(str, enum.Enum):
    """What a request asks for."""

    INPAINT = "inpaint"  # repaint the masked area to match the prompt
    IMG2IMG = "img2img"  # transform the canvas (or only its masked part) by `strength`
    TXT2IMG = "txt2img"  # generate from noise into the mask, or the whole canvas
    FILL = "fill"  # weight-free fill of the masked area from its surroundings (no model)
    REMOVE = "remove"  # take out what the mask covers: a big-mask inpainting model, no prompt
    RESTORE = "restore"  # restore faces, denoise, repair JPEG artifacts, colorize (no prompt)
    SELECT = "select"  # the subject of the layer (or under the selection) as a mask
    OUTPAINT = "outpaint"  # grow the canvas (`extend` or `aspect`) and paint the new border
    UPSCALE = "upscale"  # scale the canvas (or the selection) by `scale` with `upscaler`
    EDIT = "edit"  # follow an instruction ("turn the car into a bicycle") on the image


# The strength each mode starts at when a request or a dialog does not say. Below 1.0, img2img
# keeps the composition and changes the style ("transform"); the other modes repaint from noise.
DEFAULT_STRENGTH = {Mode.IMG2IMG: 0.6}


def default_strength(mode: Mode) -> float:
    return DEFAULT_STRENGTH.get(mode, 1.0)


class Preset(str, enum.Enum):
    """How a request trades quality for speed when it leaves `steps`, `guidance`, `scheduler` or
    `vae` unset (core/presets.py resolves it; the request's own fields always win)."""

    QUALITY = "quality"  # the model's scheduler, 20 steps, guidance 7, the full autoencoder
    FAST = "fast"  # a speed LoRA or a distilled model, few steps, no guidance, tiny autoencoder


# What an `EditRequest.vae` of these words means; anything else names a tiny autoencoder.
VAE_FULL = "full"  # the model's own autoencoder
VAE_TINY = "tiny"  # the installed tiny autoencoder that fits the model's family

# What an `EditRequest.refine` takes (core/tiled_refine.py): refine a result larger than the
# model's working size at full resolution in tiles, or not; or the strength of that pass as a
# number ("0.3"), which an upscale needs to refine at all.
REFINE_AUTO = "auto"
REFINE_OFF = "off"


# What each mode makes, in IPTC's words (https://cv.iptc.org/newscodes/digitalsourcetype/):
# a picture a trained model made from a prompt; the input with a trained model's pixels in it;
# the input with pixels an algorithm (OpenCV), not a trained model, made up.
IPTC_DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPES = {
    Mode.TXT2IMG: IPTC_DIGITAL_SOURCE_TYPE + "trainedAlgorithmicMedia",
    Mode.INPAINT: IPTC_DIGITAL_SOURCE_TYPE + "compositeWithTrainedAlgorithmicMedia",
    Mode.IMG2IMG: IPTC_DIGITAL_SOURCE_TYPE + "compositeWithTrainedAlgorithmicMedia",
    Mode.FILL: IPTC_DIGITAL_SOURCE_TYPE + "compositeSynthetic",
    Mode.REMOVE: IPTC_DIGITAL_SOURCE_TYPE + "compositeWithTrainedAlgorithmicMedia",
    Mode.RESTORE: IPTC_DIGITAL_SOURCE_TYPE + "compositeWithTrainedAlgorithmicMedia",
    # A selection keeps the source's own pixels; only its alpha is the model's.
    Mode.SELECT: IPTC_DIGITAL_SOURCE_TYPE + "algorithmicallyEnhanced",
    Mode.OUTPAINT: IPTC_DIGITAL_SOURCE_TYPE + "compositeWithTrainedAlgorithmicMedia",
    Mode.UPSCALE: IPTC_DIGITAL_SOURCE_TYPE + "compositeWithTrainedAlgorithmicMedia",
    Mode.EDIT: IPTC_DIGITAL_SOURCE_TYPE + "compositeWithTrainedAlgorithmicMedia",
}

# Modes that take no prompt: their layers are named after the mode.
PROMPTLESS_MODES = (Mode.FILL, Mode.REMOVE, Mode.RESTORE, Mode.SELECT)
# The request's `remover` that asks for the weight-free fill even where a model is installed.
REMOVER_FILL = "fill"
# The request's `segmenter` that asks for GrabCut (no model) even where a model is installed.
SEGMENTER_GRABCUT = "grabcut"
# The request fields that name an image model (``NAME[:NUMBER]``).
IMAGE_MODEL_FIELDS = ("remover", "restore_faces", "denoise", "colorize", "segmenter")
# Each field's choice that needs no model file.
WEIGHT_FREE_CHOICES = {"remover": REMOVER_FILL, "segmenter": SEGMENTER_GRABCUT}


class FillMode(str, enum.Enum):
    """How the masked area is pre-filled before diffusion (and what `fill` mode paints)."""

    AUTO = "auto"  # the engine picks: keep for inpainting models, telea for ordinary ones
    KEEP = "keep"  # the original pixels
    BLUR = "blur"  # a heavy blur of the surroundings
    TELEA = "telea"  # OpenCV Telea inpainting
    NAVIER_STOKES = "navier_stokes"  # OpenCV Navier-Stokes inpainting
    NEUTRAL = "neutral"  # flat mid grey
    NOISE = "noise"  # seeded uniform noise


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


# --------------------------------------------------------------------------------------------
# Errors. Each names the problem and the fix; plug-ins show `str(error)` to the user as it is.
# --------------------------------------------------------------------------------------------


class InlayerError(Exception):
    """Base class of every error Inlayer reports to a user."""

    code = "error"
    field = ""  # the request field the error is about ("" = none)

    @property
    def message(self) -> str:
        """What is wrong, without the field it names: `str()` shows both."""
        return str(self)


class InvalidRequest(InlayerError):
    """A request field is wrong. `field` names it (e.g. ``strength``), `message` says why."""

    code = "invalid_request"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(field_name, message)
        self.field = field_name

    @property
    def message(self) -> str:
        return self.args[1]

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class TooLarge(InvalidRequest):
    """More pixels than the server accepts (it answers HTTP 413)."""

    code = "too_large"


class ModelNotFound(InlayerError):
    code = "model_not_found"
    field = "model"  # the request field that named the model, or left it to the default


class ModelLoadError(InlayerError):
    """A model exists but cannot be loaded (missing component, pickled weights without opt-in)."""

    code = "model_load_error"


class OutOfMemory(InlayerError):
    code = "out_of_memory"


class Cancelled(InlayerError):
    code = "cancelled"


class ConnectionFailed(InlayerError):
    """The client could not reach the server, or lost it mid-job."""

    code = "connection_failed"


class AuthenticationFailed(InlayerError):
    code = "authentication_failed"


class ServerBusy(InlayerError):
    code = "server_busy"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the server asked the client to wait


ERRORS_BY_CODE: dict[str, type[InlayerError]] = {
    cls.code: cls
    for cls in (
        InlayerError,
        InvalidRequest,
        TooLarge,
        ModelNotFound,
        ModelLoadError,
        OutOfMemory,
        Cancelled,
        ConnectionFailed,
        AuthenticationFailed,
        ServerBusy,
    )
}


def error_from(code: str, message: str, field_name: str = "") -> InlayerError:
    """The error that an answer describes by its code, message and field: of the class, with the
    text and the field, that it was raised with on the other side."""
    error_class = ERRORS_BY_CODE.get(code, InlayerError)
    if issubclass(error_class, InvalidRequest):
        return error_class(field_name, message)
    return error_class(message)


# --------------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------------


def _check_size(what: str, width: int, height: int) -> None:
    if not isinstance(width, int) or not isinstance(height, int) or width < 1 or height < 1:
        raise InvalidRequest(what, f"size {width}x{height} is empty; both sides must be ≥ 1")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise InvalidRequest(
            what,
            f"size {width}x{height} is too large (at most {MAX_SIDE} px a side and "
            f"{MAX_PIXELS // 1_000_000} megapixels); work on a selection or a smaller copy",
        )


@dataclass(frozen=True)
class RGBAImage:
    """8-bit sRGB RGBA pixels, row-major, unpremultiplied."""

    width: int
    height: int
    data: bytes = field(repr=False)

    def validate(self, what: str = "image") -> None:
        _check_size(what, self.width, self.height)
        if len(self.data) != self.width * self.height * 4:
            raise InvalidRequest(
                what,
                f"has {len(self.data)} bytes, but {self.width}x{self.height} RGBA needs "
                f"{self.width * self.height * 4}",
            )

    def is_transparent(self) -> bool:
        """Whether every pixel is fully transparent (nothing drawn)."""
        return not self.data[3::4].strip(b"\x00")


@dataclass(frozen=True)
class Mask:
    """8-bit soft mask, one byte per pixel: 255 = repaint, 0 = keep."""

    width: int
    height: int
    data: bytes = field(repr=False)

    def validate(self, what: str = "mask") -> None:
        _check_size(what, self.width, self.height)
        if len(self.data) != self.width * self.height:
            raise InvalidRequest(
                what,
                f"has {len(self.data)} bytes, but a {self.width}x{self.height} mask needs "
                f"{self.width * self.height}",
            )

    def is_empty(self) -> bool:
        # bytes.strip runs in C: ~1 ms for an empty 2048² mask, where any() takes ~20 ms.
        return not self.data.strip(b"\x00")


# --------------------------------------------------------------------------------------------
# Request and result
# --------------------------------------------------------------------------------------------


def split_name_value(text: str) -> tuple[str, float | None]:
    """``NAME[:NUMBER]`` as (name, number or None). A colon followed by no number belongs to
    the name (``C:\\loras\\x.safetensors``)."""
    name, colon, tail = text.strip().rpartition(":")
    if colon and name:
        try:
            return name.strip(), float(tail)
        except ValueError:
            pass
    return text.strip(), None


@dataclass(frozen=True)
class LoraChoice:
    """A LoRA a request applies on top of its model, and how strongly (0 = not at all)."""

    name: str  # a name `inlayer models` lists under LoRAs, or a path to a .safetensors file
    scale: float = 1.0

    @staticmethod
    def parse(text: str) -> LoraChoice:
        """``NAME_OR_PATH[:SCALE]``, as the command line and A1111's ``<lora:NAME:SCALE>`` write
        it (`split_name_value`)."""
        name, scale = split_name_value(text)
        return LoraChoice(name) if scale is None else LoraChoice(name, scale)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale}

    @staticmethod
    def from_json(value: Any) -> LoraChoice:
        """A LoRA of the wire: ``{"name": ..., "scale": ...}`` or the text ``NAME[:SCALE]``."""
        if isinstance(value, str):
            return LoraChoice.parse(value)
        if isinstance(value, dict) and set(value) <= {"name", "scale"} and "name" in value:
            return LoraChoice(value["name"], value.get("scale", 1.0))
        raise InvalidRequest(
            "loras", f"{value!r} is not a LoRA; give {{'name': ..., 'scale': ...}} or 'NAME:SCALE'"
        )


@dataclass(frozen=True)
class ControlChoice:
    """A ControlNet a request applies: its model, its control image (the canvas's size; another
    size is scaled to it), how that image becomes the control map, how strongly, and during
    which fraction of the steps."""

    model: str  # a name `inlayer models` lists under ControlNets, or a path
    image: RGBAImage
    preprocessor: str = "none"  # one of CONTROL_PREPROCESSORS
    weight: float = 1.0  # 0 = no effect
    start: float = 0.0  # the fraction of the steps where the control begins …
    end: float = 1.0  # … and where it ends

    def validate(self, index: int) -> None:
        """Raise `InvalidRequest` naming ``controls[index].FIELD``."""
        where = f"controls[{index}]"
        model = self.model
        if not isinstance(model, str) or not model.strip() or len(model) > MAX_REFERENCE_CHARS:
            raise InvalidRequest(f"{where}.model", f"{model!r} is not a ControlNet name or path")
        if not isinstance(self.image, RGBAImage):
            raise InvalidRequest(f"{where}.image", "is missing; give the control image")
        self.image.validate(f"{where}.image")
        data = self.image.data
        if self.image.is_transparent() or data == data[:4] * (len(data) // 4):
            raise InvalidRequest(
                f"{where}.image",
                "is empty (fully transparent or one flat colour); draw the lines or pick the "
                "layer that holds them",
            )
        if self.preprocessor not in CONTROL_PREPROCESSORS:
            raise InvalidRequest(
                f"{where}.preprocessor",
                f"{self.preprocessor!r} is unknown; choose one of {list(CONTROL_PREPROCESSORS)}",
            )
        for name in ("weight", "start", "end"):
            value = getattr(self, name)
            top = 2.0 if name == "weight" else 1.0
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidRequest(f"{where}.{name}", f"is {value!r}; it must be a number")
            if not 0.0 <= value <= top:
                raise InvalidRequest(f"{where}.{name}", f"is {value}; it must be in [0, {top:g}]")
        if self.start >= self.end:
            raise InvalidRequest(
                f"{where}.start", f"{self.start} is not before end {self.end}; start < end"
            )

    def to_json(self) -> dict[str, Any]:
        """Everything but the pixels, which are described by their size."""
        image = {"width": self.image.width, "height": self.image.height}
        return {
            "model": self.model,
            "image": image,
            "preprocessor": self.preprocessor,
            "weight": self.weight,
            "start": self.start,
            "end": self.end,
        }

    @staticmethod
    def from_json(value: Any, image: RGBAImage | None, index: int) -> ControlChoice:
        """A control of the wire: `to_json`'s shape, with its image given apart."""
        where = f"controls[{index}]"
        if not isinstance(value, dict) or "model" not in value:
            raise InvalidRequest(where, f"{value!r} is not a control; give {{'model': ..., ...}}")
        unknown = set(value) - {"model", "image", "preprocessor", "weight", "start", "end"}
        if unknown:
            raise InvalidRequest(f"{where}.{sorted(unknown)[0]}", "is not a control field")
        if image is None:
            raise InvalidRequest(f"{where}.image", "is missing; give the control image")
        settings = ("preprocessor", "weight", "start", "end")
        return ControlChoice(
            value["model"], image, **{key: value[key] for key in settings if key in value}
        )


@dataclass(frozen=True)
class StyleChoice:
    """A style reference: an image whose look an IP-Adapter carries into the picture."""

    image: RGBAImage
    scale: float = 0.6  # 0 = no effect; about 0.5-0.8 keeps the prompt in charge
    model: str = ""  # "" = the installed IP-Adapter that fits the model; else its name

    def validate(self) -> None:
        if not isinstance(self.image, RGBAImage):
            raise InvalidRequest("style.image", "is missing; give the reference image")
        self.image.validate("style.image")
        if self.image.is_transparent():
            raise InvalidRequest("style.image", "is fully transparent; pick a visible layer")
        scale = self.scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise InvalidRequest("style.scale", f"is {scale!r}; it must be a number")
        if not 0.0 <= scale <= MAX_STYLE_SCALE:
            raise InvalidRequest(
                "style.scale", f"is {scale}; it must be in [0, {MAX_STYLE_SCALE:g}]"
            )
        if not isinstance(self.model, str) or len(self.model) > MAX_REFERENCE_CHARS:
            raise InvalidRequest("style.model", "must be an IP-Adapter's name")

    def to_json(self) -> dict[str, Any]:
        """Everything but the pixels, which are described by their size."""
        image = {"width": self.image.width, "height": self.image.height}
        return {"image": image, "scale": self.scale, "model": self.model}

    @staticmethod
    def from_json(value: Any, image: RGBAImage | None) -> StyleChoice:
        """A style of the wire: `to_json`'s shape, with its image given apart."""
        if not isinstance(value, dict) or not set(value) <= {"image", "scale", "model"}:
            raise InvalidRequest("style", f"{value!r} is not a style; give {{'scale': ...}}")
        if image is None:
            raise InvalidRequest("style.image", "is missing; give the reference image")
        return StyleChoice(image, value.get("scale", 0.6), value.get("model", ""))


@dataclass
class EditRequest:
    """One edit. `image` and `mask` are the pixels; everything else is a parameter.

    - inpaint: needs `image` and a non-empty `mask`.
    - img2img: needs `image`; with a `mask` only the masked part is transformed.
    - txt2img: `image` optional (it gives the canvas size and, with a `mask`, where to generate);
      without an image, `width` and `height` give the canvas size.
    - fill: needs `image` and a non-empty `mask`; uses no model.
    - remove: needs `image` and a non-empty `mask`; no prompt (`remover`, `refine`).
    - restore: needs `image` and at least one of `restore_faces`, `denoise`, `colorize`; with a
      `mask`, only the masked part.
    - select: needs `image`; with a `mask`, the subject under it (`segmenter`). The result's
      alpha is the mask.
    - edit: needs `image`; the prompt is an instruction; with a `mask` only the masked part
      changes. Runs on instruction-edit models (InstructPix2Pix-class).

    Remove (without `refine`), restore and select run deterministic models: one image whatever
    `count`.
    """

    mode: Mode
    image: RGBAImage | None = None
    mask: Mask | None = None
    prompt: str = ""
    negative_prompt: str = ""
    strength: float = 1.0  # 1.0 = repaint from noise; lower keeps more of the original
    steps: int | None = None  # None = the preset's (quality: 20; fast: what the model wants)
    guidance: float | None = None  # None = the preset's (quality: 7; fast: off); ≤ 1 = off
    seed: int = -1  # -1 = random; variation i uses seed + i
    count: int = 1  # number of variations
    scheduler: str = ""  # "" = the model's own; else a name from `SCHEDULERS`
    model: str = ""  # "" = the default for the mode; else a name the registry lists, or a path
    fill: FillMode = FillMode.AUTO
    grow: int = 4  # px to grow (negative: shrink) the mask before feathering
    feather: int = 8  # px of soft edge added around the grown mask
    width: int | None = None  # canvas size for txt2img without an image
    height: int | None = None
    preview_interval: int = 0  # a preview every N steps; 0 = none
    preset: str = ""  # "" = the device's default (fast on a CPU where installed); a `Preset`
    loras: tuple[LoraChoice, ...] = ()  # applied in order; the fast preset may add a speed LoRA
    vae: str = ""  # "" = the preset's; "full"; "tiny"; a tiny autoencoder's name or path; or a
    # full autoencoder's name (one in a vae/ folder) in place of the model's own
    clip_skip: int = 1  # the text encoder layer the prompt is read from, counted from the last as
    # AUTOMATIC1111 counts it (1 = the last, 2 = the one before, ...); SDXL reads the one before
    # the last already, so 1 and 2 are the same there
    noise_seed_delta: int = 0  # A1111's eta_noise_seed_delta: the noise an ancestral or SDE
    # sampler adds at each step comes from seed + this; 0 = from the initial noise's generator
    # remove: a model in inpaint/ (name or path); "" = the first installed, else the
    # weight-free fill; "fill" = the weight-free fill
    remover: str = ""
    # Any mode: "MODEL[:FIDELITY]", a face restorer in facerestore_models/ run over the result
    # (fidelity 0-1: CodeFormer's weight, else a blend with the unrestored face); "" = none
    restore_faces: str = ""
    denoise: str = ""  # restore: "MODEL[:STRENGTH]", a repair model (denoise, JPEG artifacts)
    colorize: str = ""  # restore: "MODEL[:STRENGTH]", a colorization model (DDColor)
    # A full-resolution tiled pass when scaled up ("auto"), "off", or its strength ("0.3"); for
    # upscale and remove, the strength of a diffusion pass over their result ("auto": none)
    refine: str = REFINE_AUTO
    extend: tuple[int, int, int, int] = (0, 0, 0, 0)  # outpaint: px added left, top, right, bottom
    aspect: str = ""  # outpaint: grow the canvas to this aspect ratio, "W:H" (e.g. "16:9")
    tiling: bool = False  # txt2img/img2img of the whole canvas: a texture that tiles seamlessly
    scale: int = 2  # upscale: by 2 or 4
    upscaler: str = ""  # upscale: "" = the first installed model, else Lanczos; or a name, a path
    controls: tuple[ControlChoice, ...] = ()  # ControlNets guiding txt2img, img2img, inpaint
    image_guidance: float = 1.5  # edit: how closely the result keeps to the image (1 = off)
    style: StyleChoice | None = None  # a style reference (IP-Adapter), with every mode but fill
    # select: a Segment Anything model in sams/ (name or path); "" = the first installed, else
    # GrabCut; "grabcut" = GrabCut (no model)
    segmenter: str = ""

    def validate(self) -> None:
        """Raise `InvalidRequest` naming the first wrong field."""
        if not isinstance(self.mode, Mode):
            raise InvalidRequest("mode", f"must be one of {[m.value for m in Mode]}")
        if self.image is not None:
            self.image.validate("image")
        if self.mask is not None:
            self.mask.validate("mask")
            if self.image is None:
                raise InvalidRequest("mask", "needs an image of the same size")
            if (self.mask.width, self.mask.height) != (self.image.width, self.image.height):
                raise InvalidRequest(
                    "mask",
                    f"is {self.mask.width}x{self.mask.height} but the image is "
                    f"{self.image.width}x{self.image.height}; they must match",
                )
        if self.mode != Mode.TXT2IMG and self.image is None:
            raise InvalidRequest("image", f"{self.mode.value} needs an image")
        needs_mask = self.mode in (Mode.INPAINT, Mode.FILL, Mode.REMOVE)
        if needs_mask and (self.mask is None or self.mask.is_empty()):
            raise InvalidRequest("mask", f"{self.mode.value} needs a selection: the mask is empty")
        if self.mode == Mode.TXT2IMG and self.image is None:
            if self.width is None or self.height is None:
                raise InvalidRequest("width", "txt2img without an image needs width and height")
            _check_size("width", self.width, self.height)
        if not isinstance(self.strength, (int, float)) or not 0.0 <= self.strength <= 1.0:
            raise InvalidRequest("strength", f"is {self.strength!r}; it must be in [0, 1]")
        if self.mode == Mode.IMG2IMG and self.strength == 0.0:
            raise InvalidRequest("strength", "0 would change nothing; use a value in (0, 1]")
        if self.steps is not None and (
            not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS
        ):
            raise InvalidRequest(
                "steps", f"is {self.steps!r}; it must be in [1, {MAX_STEPS}] (or unset)"
            )
        if self.guidance is not None and (
            not isinstance(self.guidance, (int, float)) or not 0.0 <= self.guidance <= 50.0
        ):
            raise InvalidRequest("guidance", f"is {self.guidance!r}; it must be in [0, 50]")
        if not isinstance(self.seed, int) or not -1 <= self.seed < 2**32:
            raise InvalidRequest("seed", f"is {self.seed!r}; use -1 (random) or 0 … 2^32-1")
        if not isinstance(self.count, int) or not 1 <= self.count <= MAX_COUNT:
            raise InvalidRequest("count", f"is {self.count!r}; it must be in [1, {MAX_COUNT}]")
        for name in ("prompt", "negative_prompt"):
            text = getattr(self, name)
            if not isinstance(text, str) or len(text) > MAX_PROMPT_CHARS:
                raise InvalidRequest(name, f"must be text of at most {MAX_PROMPT_CHARS} chars")
        if self.scheduler and self.scheduler not in SCHEDULERS:
            raise InvalidRequest(
                "scheduler", f"{self.scheduler!r} is unknown; choose one of {sorted(SCHEDULERS)}"
            )
        if not isinstance(self.fill, FillMode):
            raise InvalidRequest("fill", f"must be one of {[f.value for f in FillMode]}")
        for name in ("grow", "feather"):
            value = getattr(self, name)
            if not isinstance(value, int) or not -512 <= value <= 512:
                raise InvalidRequest(name, f"is {value!r}; it must be in [-512, 512] px")
        if self.feather < 0:
            raise InvalidRequest("feather", "must be ≥ 0 px")
        if not isinstance(self.preview_interval, int) or self.preview_interval < 0:
            raise InvalidRequest("preview_interval", "must be ≥ 0 (0 = no previews)")
        if self.preset not in ("", *(p.value for p in Preset)):
            raise InvalidRequest(
                "preset", f"{self.preset!r} is unknown; choose one of {[p.value for p in Preset]}"
            )
        self._validate_loras()
        if not isinstance(self.vae, str) or len(self.vae) > MAX_REFERENCE_CHARS:
            raise InvalidRequest("vae", f"must be text of at most {MAX_REFERENCE_CHARS} chars")
        if (
            isinstance(self.clip_skip, bool)
            or not isinstance(self.clip_skip, int)
            or not 1 <= self.clip_skip <= MAX_CLIP_SKIP
        ):
            raise InvalidRequest(
                "clip_skip", f"is {self.clip_skip!r}; it must be in [1, {MAX_CLIP_SKIP}] (1 = none)"
            )
        if (
            isinstance(self.noise_seed_delta, bool)
            or not isinstance(self.noise_seed_delta, int)
            or not 0 <= self.noise_seed_delta < 2**32
        ):
            raise InvalidRequest(
                "noise_seed_delta", f"is {self.noise_seed_delta!r}; use 0 … 2^32-1 (0 = none)"
            )
        self._validate_controls()
        if self.style is not None:
            if not isinstance(self.style, StyleChoice):
                raise InvalidRequest("style", f"{self.style!r} is not a StyleChoice")
            if self.mode == Mode.FILL:
                raise InvalidRequest("style", "fill uses no model to carry a style")
            if self.mode in (Mode.RESTORE, Mode.SELECT):
                raise InvalidRequest(
                    "style", f"{self.mode.value} paints nothing to carry a style into"
                )
            self.style.validate()
        guidance = self.image_guidance
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)):
            raise InvalidRequest("image_guidance", f"is {guidance!r}; it must be a number")
        if not 0.0 <= guidance <= MAX_IMAGE_GUIDANCE:
            raise InvalidRequest(
                "image_guidance",
                f"is {guidance}; it must be in [0, {MAX_IMAGE_GUIDANCE:g}] (1.5 is typical)",
            )
        self._validate_restoration()

    def _validate_restoration(self) -> None:
        """The fields of remove and restore: model references with an optional number."""
        for name in IMAGE_MODEL_FIELDS:
            text = getattr(self, name)
            if not isinstance(text, str) or len(text) > MAX_REFERENCE_CHARS:
                raise InvalidRequest(name, f"must be text of at most {MAX_REFERENCE_CHARS} chars")
            model, value = split_name_value(text)
            if value is not None and not 0.0 <= value <= 1.0:
                raise InvalidRequest(name, f"{model}: {value:g} must be in [0, 1]")
        if self.mode in (Mode.RESTORE, Mode.SELECT) and self.refine not in (
            REFINE_AUTO,
            REFINE_OFF,
        ):
            raise InvalidRequest(
                "refine", f"{self.mode.value} paints nothing to refine; leave refine at auto"
            )
        if self.mode == Mode.EDIT and self.refine not in (REFINE_AUTO, REFINE_OFF):
            raise InvalidRequest(
                "refine",
                "edit runs on an instruction-edit model, which has no tiled refine; "
                "leave refine at auto",
            )
        if self.mode == Mode.RESTORE and not (self.restore_faces or self.denoise or self.colorize):
            raise InvalidRequest(
                "restore_faces",
                "restore needs something to do: restore_faces, denoise or colorize "
                "(--faces, --denoise, --colorize)",
            )
        refine_strength(self.refine)
        if self.mode == Mode.UPSCALE:
            if self.scale not in UPSCALE_FACTORS or isinstance(self.scale, bool):
                raise InvalidRequest(
                    "scale", f"is {self.scale!r}; upscale by one of {list(UPSCALE_FACTORS)}"
                )
            if self.tiling or any(self.extend) or self.aspect:
                raise InvalidRequest("mode", "upscale neither tiles nor grows the canvas")
        if not isinstance(self.upscaler, str) or len(self.upscaler) > MAX_REFERENCE_CHARS:
            raise InvalidRequest("upscaler", f"must be text of at most {MAX_REFERENCE_CHARS} chars")
        self._validate_outpaint()
        if not isinstance(self.tiling, bool):
            raise InvalidRequest("tiling", f"is {self.tiling!r}; it must be true or false")
        whole_picture = self.mode in (Mode.TXT2IMG, Mode.IMG2IMG)
        if self.tiling and (not whole_picture or self.mask is not None):
            part = "a selection" if whole_picture else self.mode.value
            raise InvalidRequest(
                "tiling",
                f"works on whole pictures only (txt2img or img2img without a selection): "
                f"{part} repaints a part "
                f"whose edges are not the picture's edges, so there is nothing to wrap",
            )

    def _validate_outpaint(self) -> None:
        extend = self.extend
        if (
            not isinstance(extend, (tuple, list))
            or len(extend) != 4
            or not all(isinstance(px, int) and not isinstance(px, bool) for px in extend)
            or not all(0 <= px <= MAX_SIDE for px in extend)
        ):
            raise InvalidRequest(
                "extend",
                f"is {extend!r}; give 4 px counts LEFT,TOP,RIGHT,BOTTOM in [0, {MAX_SIDE}]",
            )
        if not isinstance(self.aspect, str):
            raise InvalidRequest("aspect", "must be text W:H, e.g. 16:9")
        if self.mode != Mode.OUTPAINT:
            if any(extend) or self.aspect:
                name = "aspect" if self.aspect else "extend"
                raise InvalidRequest(name, f"only outpaint grows the canvas, not {self.mode.value}")
            return
        if self.mask is not None:
            raise InvalidRequest("mask", "outpaint paints the new border; it takes no mask")
        if self.aspect and any(extend):
            raise InvalidRequest("aspect", "give either an aspect ratio or extend, not both")
        if self.aspect:
            parse_aspect(self.aspect)
        elif not any(extend):
            raise InvalidRequest(
                "extend",
                "extends by nothing; give px for at least one side (LEFT,TOP,RIGHT,BOTTOM) "
                "or an aspect ratio",
            )

    def _validate_controls(self) -> None:
        if not isinstance(self.controls, (tuple, list)) or len(self.controls) > MAX_CONTROLS:
            raise InvalidRequest("controls", f"must be a list of at most {MAX_CONTROLS} controls")
        if self.controls and self.mode not in (Mode.TXT2IMG, Mode.IMG2IMG, Mode.INPAINT):
            raise InvalidRequest(
                "controls",
                f"{self.mode.value} takes no ControlNet; use txt2img, img2img or inpaint",
            )
        for index, control in enumerate(self.controls):
            if not isinstance(control, ControlChoice):
                raise InvalidRequest(f"controls[{index}]", f"{control!r} is not a ControlChoice")
            control.validate(index)

    def _validate_loras(self) -> None:
        if not isinstance(self.loras, (tuple, list)) or len(self.loras) > MAX_LORAS:
            raise InvalidRequest("loras", f"must be a list of at most {MAX_LORAS} LoRAs")
        for lora in self.loras:
            if not isinstance(lora, LoraChoice):
                raise InvalidRequest("loras", f"{lora!r} is not a LoraChoice")
            name, scale = lora.name, lora.scale
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_REFERENCE_CHARS:
                raise InvalidRequest("loras", f"{name!r} is not a LoRA name or path")
            if (
                isinstance(scale, bool)
                or not isinstance(scale, (int, float))
                or not -MAX_LORA_SCALE <= scale <= MAX_LORA_SCALE
            ):
                raise InvalidRequest(
                    "loras",
                    f"{name}: scale {scale!r} must be a number in "
                    f"[-{MAX_LORA_SCALE:g}, {MAX_LORA_SCALE:g}]",
                )

    def parameters(self) -> dict[str, Any]:
        """Every field except the pixels, as JSON-ready data."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("image", "mask"):
                continue
            value = getattr(self, f.name)
            if f.name == "loras":
                value = [lora.to_json() for lora in value]
            elif f.name == "controls":
                value = [control.to_json() for control in value]
            elif f.name == "style" and value is not None:
                value = value.to_json()
            out[f.name] = value.value if isinstance(value, enum.Enum) else value
        return out

    @classmethod
    def from_parameters(
        cls,
        params: dict[str, Any],
        image: RGBAImage | None = None,
        mask: Mask | None = None,
        control_images: Sequence[RGBAImage | None] = (),
        style_image: RGBAImage | None = None,
    ) -> EditRequest:
        """Build a request from `parameters()`-shaped data; unknown keys are an error. The
        images of `controls` come in `control_images`, in the same order; the style's in
        `style_image`."""
        known = {f.name for f in dataclasses.fields(cls)} - {"image", "mask"}
        unknown = set(params) - known
        if unknown:
            first = sorted(unknown)[0]
            raise InvalidRequest(first, f"is not a known field; known: {sorted(known)}")
        values = dict(params)
        if "mode" not in values:
            raise InvalidRequest("mode", f"is required; one of {[m.value for m in Mode]}")
        try:
            values["mode"] = Mode(values["mode"])
        except ValueError:
            raise InvalidRequest(
                "mode", f"{values['mode']!r} is unknown; one of {[m.value for m in Mode]}"
            ) from None
        if "fill" in values:
            try:
                values["fill"] = FillMode(values["fill"])
            except ValueError:
                raise InvalidRequest(
                    "fill", f"{values['fill']!r} is unknown; one of {[f.value for f in FillMode]}"
                ) from None
        if isinstance(values.get("extend"), list):  # JSON has no tuples
            values["extend"] = tuple(values["extend"])
        if "loras" in values:
            if not isinstance(values["loras"], (list, tuple)):
                raise InvalidRequest("loras", "must be a list of LoRAs")
            values["loras"] = tuple(LoraChoice.from_json(lora) for lora in values["loras"])
        if "controls" in values:
            controls = values["controls"]
            if not isinstance(controls, (list, tuple)) or len(controls) > MAX_CONTROLS:
                raise InvalidRequest("controls", f"must be a list of at most {MAX_CONTROLS}")
            images = [*control_images, *[None] * len(controls)]
            values["controls"] = tuple(
                ControlChoice.from_json(control, images[index], index)
                for index, control in enumerate(controls)
            )
        if values.get("style") is not None:
            values["style"] = StyleChoice.from_json(values["style"], style_image)
        return cls(image=image, mask=mask, **values)


UPSCALE_FACTORS = (2, 4)


def refine_strength(refine: str) -> float | None:
    """The strength an `EditRequest.refine` asks for: None for REFINE_AUTO (the engine's),
    0 for REFINE_OFF, else its number in (0, 1]."""
    if refine == REFINE_AUTO:
        return None
    if refine == REFINE_OFF:
        return 0.0
    try:
        strength = float(refine)
    except (TypeError, ValueError):
        strength = -1.0
    if not 0.0 < strength <= 1.0:
        raise InvalidRequest(
            "refine",
            f"{refine!r} is unknown; choose {REFINE_AUTO!r}, {REFINE_OFF!r} or a strength in "
            "(0, 1], e.g. '0.3'",
        )
    return strength


def parse_aspect(text: str) -> tuple[int, int]:
    """An aspect ratio ``W:H`` (``16:9``, ``4:3``, ``1:1``, ``9:16`` …) as two integers ≥ 1."""
    width, colon, height = text.strip().partition(":")
    try:
        ratio = (int(width), int(height))
    except ValueError:
        ratio = (0, 0)
    if not colon or min(ratio) < 1 or max(ratio) > MAX_SIDE:
        raise InvalidRequest(
            "aspect", f"{text!r} is not an aspect ratio; write W:H with W, H ≥ 1, e.g. 16:9"
        )
    return ratio


@dataclass(frozen=True)
class SchedulerChoice:
    """A scheduler a request may name: the diffusers class behind it, and the AUTOMATIC1111
    sampler names that mean it. Plain data, so that the plug-ins can carry it: the engine looks
    the class up in diffusers (core/schedulers.py)."""

    name: str  # what a request's `scheduler` field takes; it follows the common UI labels
    diffusers_class: str
    config: dict[str, Any] = field(default_factory=dict)  # overrides of the model's config
    a1111_samplers: tuple[str, ...] = ()


SCHEDULERS: dict[str, SchedulerChoice] = {
    choice.name: choice
    for choice in (
        SchedulerChoice("euler", "EulerDiscreteScheduler", a1111_samplers=("Euler",)),
        SchedulerChoice("euler_a", "EulerAncestralDiscreteScheduler", a1111_samplers=("Euler a",)),
        SchedulerChoice(
            "dpm++_2m",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "dpmsolver++"},
            ("DPM++ 2M",),
        ),
        SchedulerChoice(
            "dpm++_2m_karras",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
            ("DPM++ 2M Karras",),
        ),
        # The SDE variant of DPM++ 2M: diffusers' single-step DPMSolverSDEScheduler needs
        # torchsde, this multistep one does not and gives the same kind of results.
        SchedulerChoice(
            "dpm++_sde_karras",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
            ("DPM++ SDE Karras",),
        ),
        SchedulerChoice("ddim", "DDIMScheduler", a1111_samplers=("DDIM",)),
        SchedulerChoice(
            "pndm", "PNDMScheduler", {"skip_prk_steps": True}, a1111_samplers=("PLMS", "PNDM")
        ),
        SchedulerChoice(
            "dpm++_2m_sde",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "sde-dpmsolver++"},
            ("DPM++ 2M SDE", "DPM++ SDE"),
        ),
        SchedulerChoice(
            "dpm++_2m_sde_karras",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
            ("DPM++ 2M SDE Karras",),
        ),
        # diffusers has no ancestral single-step DPM++ 2S; its single-step solver is the nearest.
        SchedulerChoice("dpm++_2s", "DPMSolverSinglestepScheduler", a1111_samplers=("DPM++ 2S a",)),
        SchedulerChoice(
            "dpm++_2s_karras",
            "DPMSolverSinglestepScheduler",
            {"use_karras_sigmas": True},
            ("DPM++ 2S a Karras",),
        ),
        SchedulerChoice("dpm2", "KDPM2DiscreteScheduler", a1111_samplers=("DPM2",)),
        SchedulerChoice(
            "dpm2_karras", "KDPM2DiscreteScheduler", {"use_karras_sigmas": True}, ("DPM2 Karras",)
        ),
        SchedulerChoice("dpm2_a", "KDPM2AncestralDiscreteScheduler", a1111_samplers=("DPM2 a",)),
        SchedulerChoice(
            "dpm2_a_karras",
            "KDPM2AncestralDiscreteScheduler",
            {"use_karras_sigmas": True},
            ("DPM2 a Karras",),
        ),
        SchedulerChoice("lms", "LMSDiscreteScheduler", a1111_samplers=("LMS",)),
        SchedulerChoice(
            "lms_karras", "LMSDiscreteScheduler", {"use_karras_sigmas": True}, ("LMS Karras",)
        ),
        SchedulerChoice("heun", "HeunDiscreteScheduler", a1111_samplers=("Heun",)),
        SchedulerChoice(
            "euler_karras", "EulerDiscreteScheduler", {"use_karras_sigmas": True}, ("Euler Karras",)
        ),
        SchedulerChoice(
            "dpm++_2m_exponential",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "dpmsolver++", "use_exponential_sigmas": True},
            ("DPM++ 2M Exponential",),
        ),
        SchedulerChoice("unipc", "UniPCMultistepScheduler", a1111_samplers=("UniPC",)),
        # The few-step schedulers of distilled models and speed LoRAs.
        SchedulerChoice("lcm", "LCMScheduler", a1111_samplers=("LCM",)),
        SchedulerChoice("tcd", "TCDScheduler", a1111_samplers=("TCD",)),
        # Timesteps that end at the last training step, as SD-Turbo, SDXL-Lightning and
        # Hyper-SD were distilled with (A1111's "SGM Uniform" schedule).
        SchedulerChoice(
            "euler_trailing",
            "EulerDiscreteScheduler",
            {"timestep_spacing": "trailing"},
            ("Euler SGM Uniform",),
        ),
    )
}


@dataclass(frozen=True)
class GeneratedImage:
    """One variation: the pixels of the mask bounds, placed at (x, y) on the canvas.

    With a mask, RGB is the generated pixels and alpha the blend mask (the grown, feathered
    selection), so that the result as a layer at (x, y) over the source shows the composite; the
    plug-ins move that alpha into a layer mask the user can edit. Without a mask, alpha is the
    source's alpha (img2img) or opaque (txt2img with no image).
    """

    image: RGBAImage
    x: int
    y: int
    seed: int


@dataclass(frozen=True)
class EditResult:
    images: list[GeneratedImage]
    parameters: dict[str, Any]  # `EditRequest.parameters()` with the seed actually used
    timings: dict[str, float]  # seconds: "load", "prepare", "diffusion", "finish", "total"
    canvas_width: int
    canvas_height: int
    model: str = ""  # the model actually used ("" for fill)
    hint: str = ""  # one line for the user, e.g. how to make such edits faster ("" = none)
    # Where the request's canvas sits on the result's (an outpaint grows it on the left and top
    # too): an editor grows its canvas to canvas_width x canvas_height with this offset.
    origin_x: int = 0
    origin_y: int = 0

    def parameters_of(self, image: GeneratedImage) -> dict[str, Any]:
        """What reproduces this one variation: its own seed, one image, the model that ran."""
        return {**self.parameters, "seed": image.seed, "count": 1, "model": self.model}

    def provenance_of(self, image: GeneratedImage) -> dict[str, str]:
        """The mark a result carries wherever it goes (files, GIMP parasites, Krita's document
        metadata): what made it, as an IPTC digital source type, and with which tool."""
        mode = Mode(self.parameters.get("mode", Mode.TXT2IMG.value))
        return {
            "digital_source_type": DIGITAL_SOURCE_TYPES[mode],
            "creator_tool": f"Inlayer {__version__}",
            "model": self.model,
            "seed": str(image.seed),
        }

    def layer_name(self, image: GeneratedImage, max_prompt_chars: int = 48) -> str:
        """The name the plug-ins give the layer holding `image`: the prompt and the seed."""
        mode = self.parameters.get("mode", "")
        if mode in (m.value for m in PROMPTLESS_MODES):  # the seed changes little worth naming
            return f"Inlayer {mode}"
        prompt = " ".join(str(self.parameters.get("prompt", "")).split())
        if len(prompt) > max_prompt_chars:
            prompt = prompt[: max_prompt_chars - 1] + "…"
        return f"{prompt or 'Inlayer ' + mode} (seed {image.seed})"


@dataclass(frozen=True)
class Progress:
    """Reported after every step of a running edit."""

    step: int  # steps done so far across all variations
    total: int  # steps in all variations
    variation: int = 0  # which variation is running (0-based)
    preview: RGBAImage | None = None  # a cheap approximation of the context area, when due


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class ModelInfo:
    name: str  # what a request's `model` field takes
    family: str  # "sd15", "sdxl", ...
    modes: tuple[str, ...]  # the Mode values this model serves
    inpainting: bool  # a dedicated inpainting checkpoint (9-channel UNet)
    source: str  # a folder, a file or a hub repo id
    format: str  # "diffusers", "safetensors", "ckpt", "hub"


class AddOnKind(str, enum.Enum):
    """What a file added to a model on a request is."""

    LORA = "lora"  # a request's `loras`
    VAE = "vae"  # a tiny autoencoder, a request's `vae`
    FULL_VAE = "full_vae"  # a full autoencoder in place of the model's own, a request's `vae`
    UPSCALER = "upscaler"  # an upscaler model, an upscale request's `upscaler`
    CONTROLNET = "controlnet"  # a ControlNet, a request's `controls[i].model`
    IP_ADAPTER = "ip_adapter"  # a style reference's IP-Adapter, a request's `style.model`


@dataclass(frozen=True)
class AddOnInfo:
    """A file a request may add to its model: a LoRA, an autoencoder, an upscaler, a ControlNet
    or an IP-Adapter."""

    name: str  # what a request's `loras` or `vae` field takes
    kind: AddOnKind
    family: str  # the model family it fits ("sd15", "sd21", "sdxl"); "" when unknown
    source: str  # the file or folder
    speed: str = ""  # for a speed LoRA (LCM, TCD, ...): the scheduler it wants; else ""


def controlnet_for(add_ons: Sequence[AddOnInfo], preprocessor: str) -> str:
    """The ControlNet a control of `preprocessor` uses when the user names none: the listed one
    named after it (…scribble…), else the first listed."""
    names = [add_on.name for add_on in add_ons if add_on.kind == AddOnKind.CONTROLNET]
    if not names:
        raise InvalidRequest(
            "controls",
            "the server has no ControlNet: install one with `inlayer models pull "
            "controlnet-scribble-sd15`, or use no control layer",
        )
    named = [name for name in names if preprocessor in name.lower()]
    return (named or names)[0]


@dataclass(frozen=True)
class JobStatus:
    """Everything a client learns about a job: where it is, its progress and latest preview, and
    its result or why it failed."""

    job_id: str
    state: JobState
    step: int = 0  # steps done so far across all variations
    total: int = 0  # steps in all variations
    variation: int = 0  # which variation is running (0-based)
    queue_position: int = 0  # 0 = running or finished
    preview: RGBAImage | None = None
    result: EditResult | None = None
    error: str = ""  # why it FAILED (or was CANCELLED), without the field it names
    error_code: str = ""  # for FAILED, an `InlayerError.code`
    error_field: str = ""  # for FAILED, the request field the error names ("" = none)
    # Raised by every change of the above; a status request may wait until the job is past the
    # revision its client has. 0: the server does not wait (one older than this field).
    revision: int = 0

    def failure(self) -> InlayerError:
        """The error a FAILED job ended with, as the worker raised it."""
        return error_from(self.error_code, self.error, self.error_field)


@dataclass(frozen=True)
class ServerHealth:
    version: str
    device: str
    queue_length: int
    protocol: int = PROTOCOL_VERSION
