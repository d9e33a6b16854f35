"""Krita's menu actions (Tools > Scripts > Inlayer), with shortcuts the user can set in
Settings > Configure Krita > Keyboard Shortcuts. Each starts a job with the docker's settings."""

from __future__ import annotations

from krita import Extension, Krita, Window

from .docker import InlayerDocker
from .first_start import show_where_inlayer_is_once
from .qt import QtWidgets

# (action id, menu text, docker button it presses)
ACTIONS = (
    ("inlayer_inpaint", "Inlayer: Inpaint selection", "inpaint"),
    ("inlayer_transform", "Inlayer: Transform layer/selection", "transform"),
    ("inlayer_generate", "Inlayer: Generate", "generate"),
)
MENU = "tools/scripts/inlayer"


class InlayerExtension(Extension):
    def setup(self) -> None:
        """The docker connects on its own; the first start says where Inlayer is."""
        show_where_inlayer_is_once()

    def createActions(self, window: Window) -> None:
        for action_id, text, kind in ACTIONS:
            action = window.createAction(action_id, text, MENU)
            action.triggered.connect(lambda _checked=False, kind=kind: self._start(kind))

    def _start(self, kind: str) -> None:
        window = Krita.instance().activeWindow()
        dockers = [d for d in window.dockers() if isinstance(d, InlayerDocker)] if window else []
        if not dockers:
            QtWidgets.QMessageBox.information(
                None, "Inlayer", "Show the Inlayer docker first (Settings > Dockers > Inlayer)."
            )
            return
        dockers[0].start(kind)
