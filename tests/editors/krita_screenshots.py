"""A Krita extension that shows the Inlayer docker as a person meets it and saves screenshots:
the docker connected, a Transform result in the Layers panel with its mask, the message for an
empty selection, and the docker without a server. test_screenshots.py installs it beside the
plug-in and passes, through the file named by INLAYER_KRITA_SCREENSHOTS, the folder to write
to, the config folder the plug-in reads and a port nothing listens on. Krita's Python only.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from krita import Extension, Krita, Selection

if "PyQt6" in sys.modules:
    from PyQt6.QtCore import QEventLoop, QTimer
else:
    from PyQt5.QtCore import QEventLoop, QTimer

with open(os.environ["INLAYER_KRITA_SCREENSHOTS"], encoding="utf-8") as config_file:
    CONFIG = json.load(config_file)
WIDTH, HEIGHT = 320, 240
STAGE_MS = 1500  # for Krita to take a new view and active layer


def settle(ms: int = 300) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def save(widget, name: str) -> None:
    widget.grab().save(os.path.join(CONFIG["output"], name), "PNG")


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


def connected_and_transform() -> None:
    inlayer = docker()
    inlayer.refresh_connection()
    settle(1500)
    inlayer.prompt_edit.setPlainText("make this daytime scene look like night")
    save(inlayer, "krita-docker.png")
    job = inlayer.start("transform")
    while job is not None and not job.is_finished:
        settle(200)
    settle(800)
    save(Krita.instance().activeWindow().qwindow(), "krita-result-layer.png")


def empty_selection() -> None:
    document = Krita.instance().activeDocument()
    document.setSelection(Selection())  # nothing selected
    settle()
    inlayer = docker()
    inlayer.start("inpaint")
    settle()
    save(inlayer, "krita-message-empty-selection.png")


def no_server() -> None:
    with open(CONFIG["server_info"], "w", encoding="utf-8") as info:
        json.dump({"url": CONFIG["dead_url"]}, info)
    inlayer = docker()
    inlayer.refresh_connection()
    settle(2500)
    save(inlayer, "krita-message-no-server.png")


def finish() -> None:
    for document in Krita.instance().documents():
        document.setModified(False)
        document.close()
    Krita.instance().action("file_quit").trigger()


STAGES: list[Callable[[], None]] = [open_photo, connected_and_transform, empty_selection, no_server]


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
