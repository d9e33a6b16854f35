"""Every image Inlayer writes or returns says that it was made with AI, and how.

Three marks, each for the readers that look for it:

- **XMP** with IPTC's `DigitalSourceType` (what photo agencies, Adobe's tools and search engines
  read) and IPTC's AI fields (the system, its version, the prompt), plus Inlayer's own parameters
  so that a result can be reproduced.
- **AUTOMATIC1111's `parameters` text** in PNG files: what A1111, ComfyUI and most image
  browsers show as "generation data".
- **Signed C2PA Content Credentials**, on request (`content_credentials.py`).

The IPTC term follows what a mode makes (https://cv.iptc.org/newscodes/digitalsourcetype/):

- txt2img: `trainedAlgorithmicMedia`, a picture made by a trained model from a prompt;
- inpaint, img2img: `compositeWithTrainedAlgorithmicMedia`, the input with a trained model's
  pixels in it;
- fill: `compositeSynthetic`, the input with pixels that an algorithm (OpenCV), not a trained
  model, made up.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from .client import __version__
from .client.protocol import DIGITAL_SOURCE_TYPES, IPTC_DIGITAL_SOURCE_TYPE, SCHEDULERS, Mode

IPTC_TERMS = IPTC_DIGITAL_SOURCE_TYPE
# The IPTC terms for media an algorithm made in whole or in part (Inlayer's and others').
SYNTHETIC_TERMS = frozenset(DIGITAL_SOURCE_TYPES.values()) | {
    IPTC_TERMS + "algorithmicMedia",
    IPTC_TERMS + "algorithmicallyEnhanced",
}
TERM_DESCRIPTIONS = {
    "trainedAlgorithmicMedia": "made by an AI model (trained algorithmic media)",
    "compositeWithTrainedAlgorithmicMedia": "an image with parts made by an AI model",
    "compositeSynthetic": "an image with parts made up by an algorithm (no AI model)",
    "algorithmicMedia": "made by an algorithm (no AI model)",
    "algorithmicallyEnhanced": "an image retouched by an algorithm",
}
CREATOR_TOOL = f"Inlayer {__version__}"

_NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "inlayer": "urn:inlayer:xmp:1.0/",
}
# Where each format keeps XMP for Pillow: PNG in an iTXt chunk, JPEG/WebP/TIFF in `xmp`.
PNG_XMP_KEY = "XML:com.adobe.xmp"
PNG_PARAMETERS_KEY = "parameters"


@dataclass(frozen=True)
class Origin:
    """What an image says about where it came from (`read_origin`)."""

    digital_source_type: str  # an IPTC term URI; "" when the image carries none
    creator_tool: str
    ai_system: str
    prompt: str
    parameters: dict[str, Any]  # Inlayer's own, for reproducing the result
    a1111_parameters: str  # AUTOMATIC1111's generation-data text, when present

    @property
    def synthetic(self) -> bool:
        """Whether the image says an algorithm made all or part of it."""
        return self.digital_source_type in SYNTHETIC_TERMS

    @property
    def description(self) -> str:
        """The digital source type in words."""
        term = self.digital_source_type.removeprefix(IPTC_TERMS)
        return TERM_DESCRIPTIONS.get(term, f"stated as {term!r}" if term else "not stated")


def digital_source_type(mode: Mode) -> str:
    return DIGITAL_SOURCE_TYPES[mode]


def xmp_packet(parameters: dict[str, Any]) -> str:
    """The XMP packet for an image an edit with these result parameters made."""
    mode = Mode(parameters.get("mode", Mode.TXT2IMG.value))
    model = str(parameters.get("model") or "")
    ai_system = f"Inlayer ({model})" if model else "Inlayer weight-free fill (OpenCV)"
    fields = {
        "Iptc4xmpExt:DigitalSourceType": digital_source_type(mode),
        "xmp:CreatorTool": CREATOR_TOOL,
        "Iptc4xmpExt:AISystemUsed": ai_system,
        "Iptc4xmpExt:AISystemVersionUsed": __version__,
        "Iptc4xmpExt:AIPromptInformation": str(parameters.get("prompt") or ""),
        "inlayer:Parameters": json.dumps(parameters, sort_keys=True),
    }
    declarations = " ".join(
        f'xmlns:{prefix}="{uri}"' for prefix, uri in _NAMESPACES.items() if prefix not in "xrdf"
    )
    properties = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        f'<x:xmpmeta xmlns:x="{_NAMESPACES["x"]}">'
        f'<rdf:RDF xmlns:rdf="{_NAMESPACES["rdf"]}">'
        f'<rdf:Description rdf:about="" {declarations}>{properties}</rdf:Description>'
        "</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    )


def a1111_parameters(parameters: dict[str, Any], width: int, height: int) -> str:
    """AUTOMATIC1111's generation-data text for these result parameters."""
    scheduler = SCHEDULERS.get(str(parameters.get("scheduler") or ""))
    sampler = scheduler.a1111_samplers[0] if scheduler and scheduler.a1111_samplers else ""
    lines = [str(parameters.get("prompt") or "")]
    if parameters.get("negative_prompt"):
        lines.append(f"Negative prompt: {parameters['negative_prompt']}")
    details = {
        "Steps": parameters.get("steps"),
        "Sampler": sampler or None,
        "CFG scale": parameters.get("guidance"),
        "Seed": parameters.get("seed"),
        "Size": f"{width}x{height}",
        "Model": parameters.get("model") or None,
        "Denoising strength": (
            parameters.get("strength")
            if parameters.get("mode") in (Mode.INPAINT.value, Mode.IMG2IMG.value)
            else None
        ),
        "Version": CREATOR_TOOL,
    }
    lines.append(
        ", ".join(f"{key}: {value}" for key, value in details.items() if value is not None)
    )
    return "\n".join(lines)


def pillow_save_options(image_format: str, parameters: dict[str, Any], size: tuple[int, int]):
    """Keyword arguments for `PIL.Image.save` that embed the marks in a file of this format."""
    from PIL import PngImagePlugin

    xmp = xmp_packet(parameters)
    if image_format.upper() == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text(PNG_PARAMETERS_KEY, a1111_parameters(parameters, *size))
        info.add_itxt(PNG_XMP_KEY, xmp)
        return {"pnginfo": info}
    return {"xmp": xmp.encode("utf-8")}


def read_origin(path: Path) -> Origin:
    """What the image at `path` says about its origin (Inlayer's marks or anyone's XMP)."""
    from PIL import Image

    with Image.open(path) as image:
        info = dict(image.info)
    xmp = info.get(PNG_XMP_KEY) or info.get("xmp") or b""
    if isinstance(xmp, bytes):
        xmp = xmp.decode("utf-8", "replace")
    fields = _xmp_fields(xmp)
    try:
        parameters = json.loads(fields.get("inlayer:Parameters", "") or "{}")
    except ValueError:
        parameters = {}
    return Origin(
        digital_source_type=fields.get("Iptc4xmpExt:DigitalSourceType", ""),
        creator_tool=fields.get("xmp:CreatorTool", ""),
        ai_system=fields.get("Iptc4xmpExt:AISystemUsed", ""),
        prompt=fields.get("Iptc4xmpExt:AIPromptInformation", ""),
        parameters=parameters if isinstance(parameters, dict) else {},
        a1111_parameters=str(info.get(PNG_PARAMETERS_KEY, "")),
    )


def _xmp_fields(xmp: str) -> dict[str, str]:
    """The simple properties of an XMP packet, as prefix:name -> text (element or attribute)."""
    body = re.sub(r"<\?xpacket[^>]*\?>", "", xmp).strip()
    if not body:
        return {}
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return {}
    prefixes = {uri: prefix for prefix, uri in _NAMESPACES.items()}
    fields: dict[str, str] = {}

    def short(tag: str) -> str:
        uri, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        return f"{prefixes.get(uri, uri)}:{name}"

    for description in root.iter(f"{{{_NAMESPACES['rdf']}}}Description"):
        for attribute, value in description.attrib.items():
            fields.setdefault(short(attribute), value)
        for child in description:
            # A property may hold its text directly or inside an rdf:Alt/Seq/Bag list.
            text = child.text.strip() if child.text and child.text.strip() else ""
            if not text:
                text = next((li.text or "" for li in child.iter(f"{{{_NAMESPACES['rdf']}}}li")), "")
            fields.setdefault(short(child.tag), text)
    return fields
