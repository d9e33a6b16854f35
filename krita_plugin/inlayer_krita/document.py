"""Krita documents, layers and selections as Inlayer's 8-bit sRGB RGBA images and masks.

Krita keeps pixels in the document's colour space: a colour model (RGBA, GRAYA, CMYKA, LABA ...),
a depth (U8, U16 integer; F16, F32 float) and an ICC profile, which for the deep depths is often
linear. Integer RGBA sits in memory as B, G, R, A; float RGBA as R, G, B, A. Rather than
re-implement colour management, every conversion goes through a scratch document that Krita
converts with its own engine. A scratch document has its own undo history, so conversions never
show up in the user's (converting a layer of the user's document would add an undo step).

Coordinates are image coordinates throughout: Krita's `pixelData` and `setPixelData` take them
whatever the layer's offset, so a rectangle read from a layer is where its result goes back.
"""

from __future__ import annotations

from krita import Document, Krita, Node, Selection

from .inlayer_client.bounds import Bounds
from .inlayer_client.protocol import InlayerError, Mask, RGBAImage
from .qt import QtGui, image_bytes

SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"
SRGB8 = ("RGBA", "U8", SRGB_PROFILE)
# Profiles Krita names for 8-bit sRGB: pixels in them need no conversion.
_SRGB_PROFILES = (SRGB_PROFILE, "sRGB built-in")
SUPPORTED_MODELS = ("RGBA", "GRAYA")
SUPPORTED_DEPTHS = ("U8", "U16", "F16", "F32")

ColourSpace = tuple[str, str, str]  # (model, depth, profile) as Krita names them


class UnsupportedDocument(InlayerError):
    """The document's colour model or depth is one Inlayer cannot convert faithfully."""

    code = "unsupported_document"


def colour_space(document: Document) -> ColourSpace:
    return (document.colorModel(), document.colorDepth(), document.colorProfile())


def check_colour_space(document: Document) -> None:
    """Raise `UnsupportedDocument` for anything but RGB or greyscale (with alpha) at U8 … F32."""
    model, depth, _ = colour_space(document)
    if model not in SUPPORTED_MODELS or depth not in SUPPORTED_DEPTHS:
        raise UnsupportedDocument(
            f"Inlayer works on RGB and greyscale images; this one is {model} {depth}. Convert it "
            "with Image > Convert Image Color Space (RGB/Alpha, any depth) and try again."
        )


def _is_srgb8(space: ColourSpace) -> bool:
    model, depth, profile = space
    return model == "RGBA" and depth == "U8" and profile in _SRGB_PROFILES


def _convert(data: bytes, extent: Bounds, source: ColourSpace, target: ColourSpace) -> bytes:
    """Pixels of size `extent` from colour space `source` to `target`, converted by Krita."""
    scratch = Krita.instance().createDocument(
        extent.width, extent.height, "Inlayer colour conversion", *source, 72.0
    )
    if scratch is None:
        raise UnsupportedDocument(f"Krita cannot create a {' '.join(source)} image to convert")
    try:
        layer = scratch.createNode("pixels", "paintlayer")
        scratch.rootNode().addChildNode(layer, None)
        layer.setPixelData(data, 0, 0, extent.width, extent.height)
        if not layer.setColorSpace(*target):
            raise UnsupportedDocument(
                f"Krita cannot convert {' '.join(source)} to {' '.join(target)}"
            )
        return bytes(layer.pixelData(0, 0, extent.width, extent.height))
    finally:
        scratch.setModified(False)
        scratch.close()


def swap_red_blue(data: bytes) -> bytes:
    """B, G, R, A <-> R, G, B, A (4 bytes a pixel)."""
    swapped = bytearray(data)
    swapped[0::4] = data[2::4]
    swapped[2::4] = data[0::4]
    return bytes(swapped)


def to_rgba8(document: Document, device_pixels: bytes, rect: Bounds) -> RGBAImage:
    """Pixels in the document's colour space as 8-bit sRGB RGBA."""
    space = colour_space(document)
    if not _is_srgb8(space):
        device_pixels = _convert(device_pixels, rect, space, SRGB8)
    return RGBAImage(rect.width, rect.height, swap_red_blue(device_pixels))


def from_rgba8(document: Document, image: RGBAImage) -> bytes:
    """8-bit sRGB RGBA as pixels in the document's colour space."""
    bgra = swap_red_blue(image.data)
    space = colour_space(document)
    if _is_srgb8(space):
        return bgra
    return _convert(bgra, Bounds(0, 0, image.width, image.height), SRGB8, space)


def canvas_bounds(document: Document) -> Bounds:
    return Bounds(0, 0, document.width(), document.height())


def layer_bounds(node: Node) -> Bounds:
    rect = node.bounds()
    return Bounds(rect.x(), rect.y(), rect.width(), rect.height())


def selection_bounds(document: Document) -> Bounds | None:
    """The rectangle around the selection, or None when nothing is selected."""
    selection = document.selection()
    if selection is None:
        return None
    bounds = Bounds(selection.x(), selection.y(), selection.width(), selection.height())
    return None if bounds.is_empty else bounds


def read_layer(document: Document, node: Node, rect: Bounds) -> RGBAImage:
    """What the layer shows in `rect` (its own masks applied), as 8-bit sRGB RGBA."""
    data = bytes(node.projectionPixelData(rect.x, rect.y, rect.width, rect.height))
    return to_rgba8(document, data, rect)


def read_visible(document: Document, rect: Bounds) -> RGBAImage:
    """The visible image (all layers composited) in `rect`, as 8-bit sRGB RGBA."""
    document.waitForDone()
    projection = document.projection(rect.x, rect.y, rect.width, rect.height)
    # Krita renders the projection into sRGB; RGBA8888 has the same byte order on every machine.
    rgba = projection.convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    return RGBAImage(rect.width, rect.height, image_bytes(rgba))


def read_selection(document: Document, rect: Bounds) -> Mask | None:
    """The selection in `rect` as an 8-bit soft mask (feathering kept), or None without one."""
    selection = document.selection()
    if selection is None:
        return None
    data = bytes(selection.pixelData(rect.x, rect.y, rect.width, rect.height))
    return Mask(rect.width, rect.height, data)


def add_result_layer(
    document: Document,
    above: Node | None,
    image: RGBAImage,
    position: tuple[int, int],
    name: str,
    *,
    alpha_as_mask: bool,
) -> Node:
    """A new paint layer holding `image` at `position`, right above `above` (on top without one).

    With `alpha_as_mask` the layer is opaque and the image's alpha (the blend mask) becomes a
    transparency mask the user can paint on. The layer is complete before it joins the document,
    so adding it is one undo step, and nothing else in the document changes.

    The mask joins the layer through `setChildNodes`, which links it without a command:
    `addChildNode` would record adding it as an undo step of its own, one that does nothing
    visible since the layer is not in the document yet (a Ctrl+Z that seems lost).
    """
    x, y = position
    alpha = image.data[3::4]
    if alpha_as_mask:
        opaque = bytearray(image.data)
        opaque[3::4] = b"\xff" * len(alpha)
        image = RGBAImage(image.width, image.height, bytes(opaque))
    layer = document.createNode(name, "paintlayer")
    layer.setPixelData(from_rgba8(document, image), x, y, image.width, image.height)
    if alpha_as_mask:
        selection = Selection()
        selection.setPixelData(alpha, x, y, image.width, image.height)
        mask = document.createTransparencyMask("Blend mask")
        mask.setSelection(selection)
        layer.setChildNodes([mask])
    parent = above.parentNode() if above is not None else document.rootNode()
    parent.addChildNode(layer, above)
    return layer
