"""A Krita extension for test_archives.py: imports Inlayer's Krita archive the way Krita's
*Tools > Scripts > Import Python Plugin from File...* does, or, in the next launch, runs an edit
with the plug-in that import installed. Writes what it saw to a JSON file.

INLAYER_KRITA_ARCHIVE_TEST names a JSON file: {"stage": "import" | "edit", "archives": [paths
to import, in order], "model": the model to inpaint with, "findings": path}. Runs inside Krita's
own Python: standard library, PyQt and `krita` only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import traceback
from typing import Any

from krita import Extension, Krita, Selection

if "PyQt6" in sys.modules:
    from PyQt6.QtCore import QEventLoop, QTimer
else:
    from PyQt5.QtCore import QEventLoop, QTimer

with open(os.environ["INLAYER_KRITA_ARCHIVE_TEST"], encoding="utf-8") as plan_file:
    PLAN = json.load(plan_file)
PLUGIN = "inlayer_krita"


def settle(ms: int = 500) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def import_archives() -> dict[str, Any]:
    """What Krita's import action does after its file dialog: PluginImporter into Krita's
    resource folder, overwriting when asked (the user answers Yes), then enabling the plug-ins
    (the user answers Yes to "Enable plugins now?")."""
    from plugin_importer.plugin_importer import PluginImporter

    asked: list[str] = []

    def confirm_overwrite(plugin: dict[str, Any]) -> bool:
        asked.append(plugin["name"])
        return True

    imported = []
    for archive in PLAN["archives"]:
        importer = PluginImporter(archive, Krita.instance().getAppDataLocation(), confirm_overwrite)
        for plugin in importer.import_all():
            imported.append(plugin["name"])
            Krita.instance().writeSetting("python", f"enable_{plugin['name']}", "true")
    return {"imported": imported, "overwrite_asked": asked}


def run_edit() -> dict[str, Any]:
    """Inpaint a selection with the imported plug-in, through its scripting API."""
    from inlayer_krita import api, qt  # the package Krita loaded at start-up

    document = Krita.instance().createDocument(64, 64, "archive", "RGBA", "U8", "", 72.0)
    window = Krita.instance().activeWindow()
    window.addView(document)
    source = document.createNode("source", "paintlayer")
    document.rootNode().addChildNode(source, None)
    pixels = bytes((x * 4) % 256 for _y in range(64) for x in range(64) for _channel in range(4))
    source.setPixelData(pixels, 0, 0, 64, 64)
    selection = Selection()
    selection.select(16, 16, 24, 24, 255)
    document.setSelection(selection)
    document.setActiveNode(source)
    settle()
    before = hashlib.sha256(bytes(source.pixelData(0, 0, 64, 64))).hexdigest()
    # node= names the source: Krita makes a node active only after its event loop has run.
    layers = api.inpaint(document, "a stone", node=source, steps=2, seed=7, model=PLAN["model"])
    after = hashlib.sha256(bytes(source.pixelData(0, 0, 64, 64))).hexdigest()
    docker_titles = [docker.windowTitle() for docker in window.dockers()]
    found = {
        "loaded_from": os.path.dirname(api.__file__),
        "binding": qt.BINDING,
        "new_layers": [layer.name() for layer in layers],
        # Layers only: Krita lists the global selection as a top-level "selectionmask" node.
        "layer_names": [
            node.name() for node in document.topLevelNodes() if node.type() != "selectionmask"
        ],
        "source_unchanged": before == after,
        "docker_registered": "Inlayer" in docker_titles,
    }
    document.setModified(False)
    document.close()
    return found


def run() -> None:
    findings: dict[str, Any] = {
        "krita": Krita.instance().version(),
        "plugin_loaded": PLUGIN in sys.modules,
    }
    try:
        findings.update(import_archives() if PLAN["stage"] == "import" else run_edit())
    except Exception:
        findings["crash"] = traceback.format_exc()
    with open(PLAN["findings"], "w", encoding="utf-8") as output:
        json.dump(findings, output)
    for document in Krita.instance().documents():
        document.setModified(False)
        document.close()
    Krita.instance().action("file_quit").trigger()


class ArchiveCheck(Extension):
    def setup(self) -> None:
        QTimer.singleShot(3000, run)

    def createActions(self, window) -> None:
        """No actions: the check runs on its own."""


Krita.instance().addExtension(ArchiveCheck(Krita.instance()))
