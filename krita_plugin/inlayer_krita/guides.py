"""What guides a Krita edit besides its prompt: a control layer (a sketch, line art, a picture to
take edges or depth from) with its type and weight for a ControlNet, and a style layer with its
strength for an IP-Adapter.

Each guide layer is read over the same rectangle as the canvas, so its lines stay registered
with what the model sees; a hidden or empty one is refused by name. `GuidesBox` holds the
docker's pickers; scripts pass `Control` and `Style` to `api.edit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from krita import Document, Node

from . import document as pixels
from .inlayer_client.bounds import Bounds
from .inlayer_client.protocol import (
    AddOnInfo,
    ControlChoice,
    InlayerError,
    RGBAImage,
    StyleChoice,
    controlnet_for,
)
from .qt import QtWidgets

# The control types the docker offers: each of the protocol's CONTROL_PREPROCESSORS.
CONTROL_TYPES = (
    ("Sketch / scribble", "scribble"),
    ("Line art", "lineart"),
    ("Edges of a picture", "canny"),
    ("Soft edges of a picture", "softedge"),
    ("Depth of a picture", "depth"),
    ("A ready control map", "none"),
)


@dataclass(frozen=True)
class Control:
    """A control layer: `node` guides the picture as `preprocessor` says, at `weight`."""

    node: Node
    preprocessor: str = "scribble"
    weight: float = 1.0
    model: str = ""  # a ControlNet the server lists; "": the one named after the type


@dataclass(frozen=True)
class Style:
    """A style layer: the picture takes `node`'s look at `scale`."""

    node: Node
    scale: float = 0.6


def read_guide(document: Document, node: Node, what: str, rect: Bounds) -> RGBAImage:
    """`node`'s pixels over `rect`; a hidden or empty layer is refused by name."""
    if not node.visible():
        raise InlayerError(f"The {what} '{node.name()}' is hidden: show it, or pick another.")
    image = pixels.read_layer(document, node, rect)
    if image.is_transparent():
        raise InlayerError(
            f"The {what} '{node.name()}' is empty where Inlayer works: draw on it, or pick another."
        )
    return image


def guide_fields(
    document: Document,
    rect: Bounds,
    control: Control | None,
    style: Style | None,
    add_ons: Sequence[AddOnInfo] = (),
) -> dict[str, object]:
    """The request's `controls` and `style` for guides read over `rect`."""
    fields: dict[str, object] = {}
    if control is not None:
        image = read_guide(document, control.node, "control layer", rect)
        model = control.model or controlnet_for(add_ons, control.preprocessor)
        fields["controls"] = (ControlChoice(model, image, control.preprocessor, control.weight),)
    if style is not None:
        image = read_guide(document, style.node, "style layer", rect)
        fields["style"] = StyleChoice(image, style.scale)
    return fields


def paint_layers(document: Document) -> list[Node]:
    """The document's paint layers, top first, as the pickers list them."""
    found: list[Node] = []

    def walk(node: Node) -> None:
        for child in reversed(node.childNodes()):
            if child.type() == "paintlayer":
                found.append(child)
            walk(child)

    walk(document.rootNode())
    return found


class GuidesBox(QtWidgets.QGroupBox):
    """The docker's guide pickers: a control layer with its type and weight, a style layer with
    its strength. The layer lists follow the active document (`refresh`)."""

    def __init__(self) -> None:
        super().__init__("Guides")
        form = QtWidgets.QFormLayout(self)
        self.control_box = QtWidgets.QComboBox()
        self.control_box.setToolTip("A layer whose drawing guides the picture (ControlNet)")
        form.addRow("Control layer", self.control_box)
        self.type_box = QtWidgets.QComboBox()
        for text, value in CONTROL_TYPES:
            self.type_box.addItem(text, value)
        form.addRow("Control type", self.type_box)
        self.weight_spin = QtWidgets.QDoubleSpinBox()
        self.weight_spin.setRange(0.0, 2.0)
        self.weight_spin.setSingleStep(0.05)
        self.weight_spin.setValue(1.0)
        form.addRow("Control weight", self.weight_spin)
        self.style_box = QtWidgets.QComboBox()
        self.style_box.setToolTip("A layer whose look the picture takes (IP-Adapter)")
        form.addRow("Style layer", self.style_box)
        self.scale_spin = QtWidgets.QDoubleSpinBox()
        self.scale_spin.setRange(0.0, 2.0)
        self.scale_spin.setSingleStep(0.05)
        self.scale_spin.setValue(0.6)
        form.addRow("Style strength", self.scale_spin)
        self._layers: list[Node] = []

    def refresh(self, document: Document | None) -> None:
        """List `document`'s paint layers, keeping the picked ones where they still exist."""
        picked = {box: box.currentText() for box in (self.control_box, self.style_box)}
        self._layers = paint_layers(document) if document is not None else []
        for box in (self.control_box, self.style_box):
            box.clear()
            box.addItem("None", -1)
            for index, node in enumerate(self._layers):
                box.addItem(node.name(), index)
            found = box.findText(picked[box])
            box.setCurrentIndex(max(found, 0))

    def _node(self, box: QtWidgets.QComboBox) -> Node | None:
        index = box.currentData()
        return self._layers[index] if isinstance(index, int) and index >= 0 else None

    def control(self) -> Control | None:
        node = self._node(self.control_box)
        if node is None:
            return None
        return Control(node, self.type_box.currentData(), self.weight_spin.value())

    def style(self) -> Style | None:
        node = self._node(self.style_box)
        return None if node is None else Style(node, self.scale_spin.value())
