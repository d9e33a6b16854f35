"""The docker's LoRA and autoencoder pickers: lists of what the server has (/v1/add-ons), filled
each time the docker checks its connection, kept as names (the settings and the request take the
name), so that a name the server no longer lists stays, marked, rather than being dropped.

The LoRA list is editable: a person picks a LoRA and may add its scale as NAME:SCALE, as the
command line writes it.
"""

from __future__ import annotations

from typing import Any

from .inlayer_client.protocol import VAE_FULL, VAE_TINY, AddOnInfo, AddOnKind
from .qt import QtWidgets

NO_LORA = ("None", "")
# The autoencoder choices every server has, before the ones it lists.
VAE_WORDS = (
    ("The preset's", ""),
    ("The model's own", VAE_FULL),
    ("Tiny, for the model's family", VAE_TINY),
)
VAE_KINDS = {AddOnKind.VAE: "tiny", AddOnKind.FULL_VAE: "full"}
NOT_LISTED = " (not on the server)"


class AddOnPickers:
    """The two combo boxes; `lora_box` and `vae_box` go into the docker's form."""

    def __init__(self) -> None:
        self.lora_box = QtWidgets.QComboBox()
        self.lora_box.setEditable(True)  # NAME:SCALE may be typed
        self.lora_box.setToolTip(
            "A LoRA the server has; write NAME:SCALE for another scale than 1 (None: no LoRA)"
        )
        self.vae_box = QtWidgets.QComboBox()
        self.vae_box.setToolTip(
            "The autoencoder: the preset's, the model's own, the tiny one of its family, or one "
            "the server has"
        )
        self.fill([])

    def fill(self, add_ons: list[AddOnInfo]) -> None:
        """The lists of what the server has, keeping the current choices."""
        lora, vae = self.lora(), self.vae()
        loras = [
            (f"{a.name} ({a.family or '?'})", a.name) for a in add_ons if a.kind == AddOnKind.LORA
        ]
        vaes = [
            (f"{a.name} ({VAE_KINDS[a.kind]}, {a.family or '?'})", a.name)
            for a in add_ons
            if a.kind in VAE_KINDS
        ]
        _refill(self.lora_box, [NO_LORA, *loras])
        _refill(self.vae_box, [*VAE_WORDS, *vaes])
        self.restore(lora, vae)

    def restore(self, lora: str, vae: str) -> None:
        """Show the choices `lora` and `vae` (names, as the settings keep them)."""
        _choose(self.lora_box, lora, editable=True)
        _choose(self.vae_box, vae, editable=False)

    def lora(self) -> str:
        """The LoRA as NAME or NAME:SCALE; "" for none."""
        index = self.lora_box.currentIndex()
        text = self.lora_box.currentText().strip()
        if index >= 0 and text == self.lora_box.itemText(index):
            return str(self.lora_box.itemData(index) or "")  # a listed item: its name
        return text  # typed: the name, perhaps with its scale

    def vae(self) -> str:
        return str(self.vae_box.currentData() or "")

    def request_options(self) -> dict[str, Any]:
        """The request fields the pickers set."""
        lora = self.lora()
        return {"loras": [lora] if lora else [], "vae": self.vae()}

    def changed_signals(self) -> tuple[Any, ...]:
        return (self.lora_box.currentTextChanged, self.vae_box.currentIndexChanged)


def _refill(box: QtWidgets.QComboBox, items: list[tuple[str, str]]) -> None:
    box.blockSignals(True)  # filling the list is no pick of the user's
    box.clear()
    for text, name in items:
        box.addItem(text, name)
    box.blockSignals(False)


def _choose(box: QtWidgets.QComboBox, name: str, *, editable: bool) -> None:
    """Select the item of `name`; one the list lacks is added, marked (an editable box shows a
    typed NAME:SCALE as typed)."""
    index = box.findData(name)
    listed_with_scale = editable and box.findData(name.rpartition(":")[0]) > 0
    if index < 0 and listed_with_scale:
        box.setEditText(name)
        return
    if index < 0:
        box.addItem(name + NOT_LISTED, name)
        index = box.count() - 1
    box.setCurrentIndex(index)
