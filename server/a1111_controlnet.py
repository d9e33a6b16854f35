"""The ControlNet extension's API of AUTOMATIC1111: `alwayson_scripts.controlnet.args` units in
txt2img and img2img bodies, and its routes `GET /controlnet/model_list`, `/module_list` and
`/version`, so that A1111 clients (webuiapi's ControlNetUnit, editor plug-ins) drive Inlayer's
ControlNets unchanged.

Each enabled unit becomes one `ControlChoice`; what each unit field does is the table
`a1111_fields.CONTROLNET_UNIT_FIELDS`. The extension's preprocessor ("module") names map onto
Inlayer's preprocessors by what they make (`MODULES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from PIL import Image, ImageOps

from inlayer.core.client.protocol import AddOnKind, ControlChoice, InvalidRequest, RGBAImage

from .a1111_fields import CONTROLNET_UNIT_FIELDS, check_fields
from .a1111_options import strip_hash
from .service import Service

# The extension's preprocessor names -> Inlayer's, by the kind of map they make.
MODULES = {
    "none": "none",
    "canny": "canny",
    "invert": "lineart",  # "invert (from white bg & black line)": a drawing's lines
    "lineart": "lineart",
    "lineart_standard": "lineart",
    "lineart_realistic": "lineart",
    "lineart_coarse": "lineart",
    "lineart_anime": "lineart",
    "scribble": "scribble",
    "scribble_pidinet": "scribble",
    "scribble_hed": "scribble",
    "scribble_xdog": "scribble",
    "t2ia_sketch_pidi": "scribble",
    "depth": "depth",
    "depth_midas": "depth",
    "depth_leres": "depth",
    "depth_leres++": "depth",
    "depth_zoe": "depth",
    "depth_anything": "depth",
    "depth_anything_v2": "depth",
    "softedge": "softedge",
    "softedge_hed": "softedge",
    "softedge_hedsafe": "softedge",
    "softedge_pidinet": "softedge",
    "softedge_pidisafe": "softedge",
    "softedge_teed": "softedge",
    "hed": "softedge",
    "pidinet": "softedge",
}
# The extension's resize modes, by name and by number.
RESIZE_MODES = {
    "Just Resize": "stretch",
    "Crop and Resize": "crop",
    "Resize and Fill": "pad",
    "InnerFit": "crop",
    "OuterFit": "pad",
    0: "stretch",
    1: "crop",
    2: "pad",
}
CONTROLNET_API_VERSION = 2
SCRIPT = "controlnet"


def controlnet_units(body: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The units of a body's `alwayson_scripts`, under the key the client used."""
    scripts = body.get("alwayson_scripts") or {}
    for name, settings in scripts.items():
        if str(name).lower() == SCRIPT and isinstance(settings, Mapping):
            units = settings.get("args") or []
            if not isinstance(units, list):
                raise InvalidRequest(f"alwayson_scripts.{name}.args", "must be a list of units")
            return f"alwayson_scripts.{name}.args", units
    return "", []


def fitted(image: Image.Image, size: tuple[int, int], resize_mode: Any, field: str) -> Image.Image:
    """The control image at the canvas's size, as the unit's resize mode says."""
    if image.size == size:
        return image
    how = RESIZE_MODES.get(resize_mode)
    if how is None:
        raise InvalidRequest(field, f"{resize_mode!r} is unknown; use one of {list(RESIZE_MODES)}")
    if how == "crop":
        return ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    if how == "pad":
        return ImageOps.pad(image, size, Image.Resampling.LANCZOS, color=(0, 0, 0, 255))
    return image.resize(size, Image.Resampling.LANCZOS)


def controls_of(
    body: Mapping[str, Any],
    service: Service,
    size: tuple[int, int],
    decode: Any,
    init_image: Image.Image | None = None,
) -> tuple[ControlChoice, ...]:
    """The `ControlChoice`s of a body's enabled ControlNet units, their images at `size`.
    `decode(data, field)` reads a base64 image; a unit without one uses `init_image`."""
    where, units = controlnet_units(body)
    listed = [a.name for a in service.list_add_ons() if a.kind == AddOnKind.CONTROLNET]
    controls = []
    for index, unit in enumerate(units):
        field = f"{where}[{index}]"
        if not isinstance(unit, Mapping):
            raise InvalidRequest(field, "must be a unit object")
        check_fields(unit, CONTROLNET_UNIT_FIELDS, f"{field}.")
        if unit.get("enabled", True) is False:
            continue
        module = str(unit.get("module") or "none").lower()
        if module not in MODULES:
            raise InvalidRequest(
                f"{field}.module",
                f"{module!r} is not a preprocessor Inlayer has; see GET /controlnet/module_list",
            )
        model = strip_hash(str(unit.get("model") or ""))
        if model not in listed:
            raise InvalidRequest(
                f"{field}.model",
                f"ControlNet {model or 'None'!r} is not one this server has: {listed}",
            )
        image = _unit_image(unit, field, decode, init_image)
        resize_mode = unit.get("resize_mode", 1)
        image = fitted(image.convert("RGBA"), size, resize_mode, f"{field}.resize_mode")
        control = ControlChoice(
            model,
            RGBAImage(size[0], size[1], image.tobytes()),
            preprocessor=MODULES[module],
            weight=unit.get("weight", 1.0),
            start=unit.get("guidance_start", 0.0),
            end=unit.get("guidance_end", 1.0),
        )
        try:
            control.validate(len(controls))
        except InvalidRequest as error:
            name = error.field.partition("].")[2]
            raise InvalidRequest(f"{field}.{UNIT_FIELDS.get(name, name)}", error.message) from None
        controls.append(control)
    return tuple(controls)


def _unit_image(
    unit: Mapping[str, Any], field: str, decode: Any, init_image: Image.Image | None
) -> Image.Image:
    for name in ("image", "input_image"):
        data = unit.get(name)
        if isinstance(data, Mapping):  # {"image": ..., "mask": ...} as the extension's UI sends
            if data.get("mask"):
                raise InvalidRequest(f"{field}.{name}.mask", "unit masks are not available")
            data = data.get("image")
        if data:
            return decode(data, f"{field}.{name}")
    if init_image is None:
        raise InvalidRequest(f"{field}.image", "txt2img needs a control image in each unit")
    return init_image


# Inlayer's control fields -> the unit fields that set them.
UNIT_FIELDS = {"start": "guidance_start", "end": "guidance_end", "preprocessor": "module"}


def unit_field(field: str) -> str:
    """An Inlayer `controls[i].X` field as the unit field the client sent (unit i of the
    enabled units); any other field as it is."""
    if not field.startswith("controls["):
        return field
    index, _, name = field.removeprefix("controls[").partition("].")
    return f"alwayson_scripts.{SCRIPT}.args[{index}].{UNIT_FIELDS.get(name, name)}"


def controlnet_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/controlnet", tags=["AUTOMATIC1111 ControlNet"])

    @router.get("/version")
    async def version() -> dict[str, Any]:
        return {"version": CONTROLNET_API_VERSION}

    @router.get("/model_list")
    async def model_list(update: bool = False) -> dict[str, Any]:
        names = [a.name for a in service.list_add_ons() if a.kind == AddOnKind.CONTROLNET]
        return {"model_list": names}

    @router.get("/module_list")
    async def module_list(alias_names: bool = False) -> dict[str, Any]:
        return {
            "module_list": list(MODULES),
            "module_detail": {
                name: {"model_free": False, "sliders": [], "inlayer_preprocessor": inlayer}
                for name, inlayer in MODULES.items()
            },
        }

    return router
