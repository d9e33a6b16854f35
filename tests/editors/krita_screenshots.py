"""A Krita extension that shows the Inlayer docker as a person meets it and saves screenshots:
the docker connected, a Transform result in the Layers panel with its mask, the message for an
empty selection, the docker with a server that has no model, and without a server; first of
all, the docker as the first start after installing shows it.
test_screenshots.py installs it beside the plug-in and passes, through the file named by
INLAYER_KRITA_SCREENSHOTS, the folder to write to, the config folder the plug-in reads, the
address of a server without models and a port nothing listens on. Krita's Python only.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from krita import Extension, Krita, Selection

if "PyQt6" in sys.modules:
    from PyQt6.QtCore import QEventLoop, Qt, QTimer
    from PyQt6.QtWidgets import QTreeView
else:
    from PyQt5.QtCore import QEventLoop, Qt, QTimer
    from PyQt5.QtWidgets import QTreeView

with open(os.environ["INLAYER_KRITA_SCREENSHOTS"], encoding="utf-8") as config_file:
    CONFIG = json.load(config_file)
WIDTH, HEIGHT = 320, 240
FINDINGS: dict[str, object] = {}  # what the first messages said, for the test
STAGE_MS = 1500  # for Krita to take a new view and active layer


def settle(ms: int = 300) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def save(widget, name: str) -> None:
    widget.grab().save(os.path.join(CONFIG["output"], name), "PNG")


def save_docker(inlayer, name: str) -> None:
    """All of the docker's rows, also those its scroll area shows only when scrolled to."""
    save(inlayer.widget().widget(), name)


def point_at(url: str) -> None:
    """The docker talks to the server at `url` from now on, as after Krita's restart (a client
    leaves a server that still answers only when it stops answering)."""
    from inlayer_krita import api

    with open(CONFIG["server_info"], "w", encoding="utf-8") as info:
        json.dump({"url": url}, info)
    api.forget_client()


def docker():
    from inlayer_krita.docker import InlayerDocker

    window = Krita.instance().activeWindow()
    found = next(d for d in window.dockers() if isinstance(d, InlayerDocker))
    found.setVisible(True)
    return found


def open_photo() -> None:
    """A 'photo' (a sky-to-ground gradient) with a selection, shown in a view."""
    krita = Krita.instance()
    document = krita.createDocument(WIDTH, HEIGHT, "street", "RGBA", "U8", "", 72.0)
    krita.activeWindow().addView(document)
    layer = document.createNode("photo", "paintlayer")
    document.rootNode().addChildNode(layer, None)
    rows = []
    for y in range(HEIGHT):
        sky = y < HEIGHT * 0.6
        shade = int(255 * y / HEIGHT)
        bgra = (
            bytes((255, 200 - shade // 2, 120, 255))
            if sky
            else bytes((60, 90 + shade // 3, 70, 255))
        )
        rows.append(bgra * WIDTH)
    layer.setPixelData(b"".join(rows), 0, 0, WIDTH, HEIGHT)
    selection = Selection()
    selection.select(80, 40, 160, 120, 255)
    document.setSelection(selection)
    document.setActiveNode(layer)


def layers_panel_rows(name: str) -> int:
    """How many rows of Krita's Layers panel show `name`, its tree opened to show masks."""
    window = Krita.instance().activeWindow()
    panel = next(d for d in window.dockers() if d.objectName() == "KisLayerBox")
    rows = 0
    for view in panel.findChildren(QTreeView):
        view.expandAll()
        model = view.model()
        if model is None or model.rowCount() == 0:
            continue
        flags = Qt.MatchFlag.MatchContains | Qt.MatchFlag.MatchRecursive
        rows += len(model.match(model.index(0, 0), Qt.ItemDataRole.DisplayRole, name, -1, flags))
    return rows


def connected_and_transform() -> None:
    inlayer = docker()
    inlayer.refresh_connection()
    settle(1500)
    inlayer.prompt_edit.setPlainText("make this daytime scene look like night")
    save_docker(inlayer, "krita-docker.png")
    job = inlayer.start("transform")
    while job is not None and not job.is_finished:
        settle(200)
    document = Krita.instance().activeDocument()
    document.setActiveNode(topmost_layer(document))  # the result


def topmost_layer(document):
    """The topmost paint layer (Krita 5.2 lists the selection's mask among the layers too)."""
    return next(n for n in reversed(document.rootNode().childNodes()) if n.type() == "paintlayer")


def result_layer() -> None:
    """The window once Krita's own event loop has run: its Layers panel takes in a new layer
    only there, never while a stage waits in a local event loop (`settle`), however long."""
    result = topmost_layer(Krita.instance().activeDocument())
    # What the picture shows: the test checks the panel listed the result when it was taken.
    FINDINGS["result_layer"] = {
        "name": result.name(),
        "panel_rows": layers_panel_rows(result.name()),
        "mask_rows": layers_panel_rows("Blend mask"),
    }
    save(Krita.instance().activeWindow().qwindow(), "krita-result-layer.png")


def empty_selection() -> None:
    document = Krita.instance().activeDocument()
    document.setSelection(Selection())  # nothing selected
    settle()
    inlayer = docker()
    inlayer.start("inpaint")
    settle()
    save_docker(inlayer, "krita-message-empty-selection.png")


def no_model() -> None:
    """A running server without any model: the docker says what to run first."""
    point_at(CONFIG["empty_server_url"])
    inlayer = docker()
    inlayer.refresh_connection()
    settle(2500)
    inlayer.start("inpaint")  # the first press: the next step, not an error
    settle()
    FINDINGS["no_model"] = {
        "status": inlayer.status_label.text(),
        "message": inlayer.message_label.text(),
    }
    save_docker(inlayer, "krita-message-no-model.png")


def no_server() -> None:
    point_at(CONFIG["dead_url"])
    inlayer = docker()
    inlayer.refresh_connection()
    settle(2500)
    save_docker(inlayer, "krita-message-no-server.png")


def finish() -> None:
    with open(CONFIG["findings"], "w", encoding="utf-8") as findings:
        json.dump(FINDINGS, findings)
    for document in Krita.instance().documents():
        document.setModified(False)
        document.close()
    Krita.instance().action("file_quit").trigger()


STAGES: list[Callable[[], None]] = [
    open_photo,
    connected_and_transform,
    result_layer,
    empty_selection,
    no_model,
    no_server,
]


def run_stage(index: int) -> None:
    if index == len(STAGES):
        finish()
        return
    try:
        STAGES[index]()
    finally:  # a stage that fails leaves its picture out; the test names which
        QTimer.singleShot(STAGE_MS, lambda: run_stage(index + 1))


class ScreenshotTaker(Extension):
    def setup(self) -> None:
        QTimer.singleShot(3000, lambda: run_stage(0))

    def createActions(self, window) -> None:
        pass


Krita.instance().addExtension(ScreenshotTaker(Krita.instance()))
