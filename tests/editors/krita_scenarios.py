"""A Krita extension that drives the installed Inlayer plug-in through every scenario of
test_krita.py in ONE Krita launch, and writes what it saw to a JSON file the test asserts on.

test_krita.py installs this file as the Python plug-in `inlayer_krita_test` and passes, through
the file named by INLAYER_KRITA_TEST, the servers to use and where to write the findings. It runs
inside Krita's own Python: standard library, PyQt (5 in Krita 5, 6 in Krita 6) and `krita` only.
Each scenario returns plain data (pixels as lists or hashes) and never asserts itself, so that one
failure does not hide the rest; a scenario that raises records its traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from krita import Extension, Krita, Selection

# The binding Krita has loaded is the one to use; importing the other would load a second Qt.
if "PyQt6" in sys.modules:
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QApplication, QDialogButtonBox, QWidget
else:
    from PyQt5.QtCore import QEventLoop, QTimer
    from PyQt5.QtWidgets import QApplication, QDialogButtonBox, QWidget

with open(os.environ["INLAYER_KRITA_TEST"], encoding="utf-8") as config_file:
    CONFIG = json.load(config_file)
STEPS = 2


def settle(ms: int = 300) -> None:
    """Let Krita's event loop run for `ms` (active views and nodes change only there)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def new_document(name: str, width: int, height: int, model: str = "RGBA", depth: str = "U8"):
    document = Krita.instance().createDocument(width, height, name, model, depth, "", 72.0)
    view = Krita.instance().activeWindow().addView(document)
    return document, view


def add_source(document, name: str, pixel: Callable[[int, int], bytes]):
    """A paint layer covering the image, each pixel's bytes from `pixel(x, y)`."""
    width, height = document.width(), document.height()
    layer = document.createNode(name, "paintlayer")
    document.rootNode().addChildNode(layer, None)
    data = b"".join(pixel(x, y) for y in range(height) for x in range(width))
    layer.setPixelData(data, 0, 0, width, height)
    return layer


def gradient_u8(x: int, y: int) -> bytes:
    return bytes([(x * 5) % 256, (y * 7) % 256, (x + y) % 256, 255])  # B, G, R, A


def select(document, x: int, y: int, width: int, height: int) -> None:
    selection = Selection()
    selection.select(x, y, width, height, 255)
    document.setSelection(selection)


def digest(node, document) -> str:
    data = bytes(node.pixelData(0, 0, document.width(), document.height()))
    return hashlib.sha256(data).hexdigest()


def rect_of(node) -> list[int]:
    rect = node.bounds()
    return [rect.x(), rect.y(), rect.width(), rect.height()]


def layer_names(document) -> list[str]:
    return [node.name() for node in document.rootNode().childNodes()]


def undo(document) -> None:
    """Krita's Undo on `document`, whose view the caller made active. Krita runs commands and
    their undo from its stroke queue, later on a loaded machine: this waits for the queue, then
    returns once the document's layers or size changed, or after 10 s when the undo did nothing
    (the caller's check then fails)."""

    def active() -> bool:  # compared by root node: Krita hands out a new wrapper each call
        shown = Krita.instance().activeDocument()
        return shown is not None and shown.rootNode() == document.rootNode()

    wait_until(active, 10)
    # Adding a layer reaches the undo stack through Krita's stroke queue: an undo triggered
    # before it lands would undo the step before it (the selection) instead.
    document.waitForDone()

    def state() -> tuple[list[str], int, int]:
        return layer_names(document), document.width(), document.height()

    before = state()
    Krita.instance().action("edit_undo").trigger()
    wait_until(lambda: state() != before, 10)
    settle()


def describe_layer(layer, document) -> dict[str, Any]:
    """Bounds, depth, masks and alpha of a result layer."""
    x, y, width, height = rect_of(layer)
    masks = [child for child in layer.childNodes() if child.type() == "transparencymask"]
    info: dict[str, Any] = {
        "name": layer.name(),
        "type": layer.type(),
        "bounds": [x, y, width, height],
        "depth": layer.colorDepth(),
        "model": layer.colorModel(),
        "index": layer.index(),
        "parent_is_root": layer.parentNode() == document.rootNode(),
        "masks": len(masks),
    }
    data = bytes(layer.pixelData(x, y, width, height))
    if layer.colorDepth() == "U8":
        info["alpha_min"] = min(data[3::4]) if layer.colorModel() == "RGBA" else min(data[1::2])
    if masks:
        selection = masks[0].selection()
        mask = bytes(selection.pixelData(x, y, width, height))
        info["mask"] = {"width": width, "height": height, "values": list(mask)}
    return info


# --- scenarios -------------------------------------------------------------------------------


def inpaint_u8() -> dict[str, Any]:
    """Inpaint a selection on an 8-bit document; then one undo removes the result."""
    from inlayer_krita import api
    from inlayer_krita.history import document_entries, session_history

    document, view = new_document("inpaint", 128, 96)
    source = add_source(document, "source", gradient_u8)
    settle()
    select(document, 40, 30, 32, 24)
    before = digest(source, document)
    history_before = len(session_history.entries)
    # Krita's event loop keeps running while the job does: this timer ticks meanwhile.
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    layers = api.inpaint(
        document, "a red apple", node=source, steps=STEPS, seed=7, grow=4, feather=8
    )
    timer.stop()
    found = {
        "gui_ticks_during_job": len(ticks),
        "layers": [describe_layer(layer, document) for layer in layers],
        "names_after": layer_names(document),
        "source_unchanged": digest(source, document) == before,
        "source_index": source.index(),
        "annotation": document_entries(document),
        "history_added": len(session_history.entries) - history_before,
    }
    Krita.instance().activeWindow().showView(view)
    settle()
    undo(document)
    found["names_after_undo"] = layer_names(document)
    found["source_unchanged_after_undo"] = digest(source, document) == before
    return found


def sketch_u8(x: int, y: int) -> bytes:
    """A dark cross on white paper, as a pencil sketch on its own layer (48 × 64 document)."""
    line = abs(x - 32) <= 1 or abs(y - 24) <= 1
    return bytes((20, 20, 20, 255)) if line else bytes((255, 255, 255, 255))


def guided_edits() -> dict[str, Any]:
    """Inpaint guided by a control layer (a sketch), then an instruction edit, both on a
    selection; then a hidden and an empty control layer, each refused. CONFIG["guided"] names
    the model, the ControlNet and the instruction-edit model (only run when asked for)."""
    from inlayer_krita import api
    from inlayer_krita.guides import Control

    names = CONFIG["guided"]
    document, _view = new_document("guided", 64, 48)
    source = add_source(document, "source", gradient_u8)
    sketch = add_source(document, "sketch", sketch_u8)
    hidden = add_source(document, "hidden sketch", sketch_u8)
    hidden.setVisible(False)
    blank = document.createNode("blank", "paintlayer")
    document.rootNode().addChildNode(blank, None)
    settle()
    select(document, 16, 12, 24, 20)
    built = (source, sketch, hidden, blank)
    before = {node.name(): digest(node, document) for node in built}
    run = {"steps": STEPS, "seed": 3, "preset": "quality"}
    control = Control(sketch, "scribble", 1.0, names["controlnet"])
    controlled = api.inpaint(
        document, "a portrait", node=source, model=names["model"], control=control, **run
    )
    instructed = api.instruct(
        document, "make it night", node=source, model=names["instruct"], **run
    )
    refusals = {}
    for node in (hidden, blank):
        try:
            api.inpaint(
                document,
                "a portrait",
                node=source,
                model=names["model"],
                control=Control(node, "scribble", 1.0, names["controlnet"]),
                **run,
            )
            refusals[node.name()] = "no error"
        except Exception as error:
            refusals[node.name()] = str(error)
    return {
        "controlled": [describe_layer(layer, document) for layer in controlled],
        "instructed": [describe_layer(layer, document) for layer in instructed],
        "unchanged": {node.name(): digest(node, document) == before[node.name()] for node in built},
        "refusals": refusals,
        "names_after": layer_names(document),
    }


def saved_and_reopened() -> dict[str, Any]:
    """A result's origin mark, saved in a .kra and read back after the document was closed."""
    from inlayer_krita import api
    from inlayer_krita.history import document_entries

    document, _ = new_document("provenance", 64, 64)
    source = add_source(document, "source", gradient_u8)
    settle()
    select(document, 16, 16, 24, 24)
    api.fill(document, node=source, fill="telea")
    path = os.path.join(os.path.dirname(CONFIG["findings"]), "provenance.kra")
    saved = document.saveAs(path)
    document.setModified(False)
    document.close()
    settle()
    reopened = Krita.instance().openDocument(path)
    found = {"saved": bool(saved), "entries": document_entries(reopened)}
    reopened.setModified(False)
    reopened.close()
    return found


def txt2img_and_fill() -> dict[str, Any]:
    """Generate over the whole image (no selection), and a weight-free fill of the visible image."""
    from inlayer_krita import api

    document, _ = new_document("generate", 64, 64)
    source = add_source(document, "source", gradient_u8)
    generated = api.txt2img(document, "a landscape", node=source, steps=STEPS, seed=1)
    select(document, 16, 16, 16, 16)
    filled = api.fill(document, node=source, visible=True, fill="telea")
    return {
        "generated": [describe_layer(layer, document) for layer in generated],
        "filled": [describe_layer(layer, document) for layer in filled],
        "names": layer_names(document),
    }


def img2img_u16() -> dict[str, Any]:
    """Transform a 16-bit linear document; the fill keeps unmasked pixels, so the round trip
    through 8-bit sRGB shows in them."""
    from inlayer_krita import api

    document, _ = new_document("deep", 64, 48, depth="U16")

    def pixel(x: int, y: int) -> bytes:
        return struct.pack("<4H", x * 1000, y * 1300, 20000 + x * 300, 65535)

    source = add_source(document, "source", pixel)
    before = digest(source, document)
    transformed = api.img2img(document, "oil painting", node=source, strength=0.5, steps=STEPS)
    select(document, 24, 16, 12, 12)
    filled = api.fill(document, node=source, fill="neutral", grow=0, feather=4)
    layer = filled[0]
    x, y, width, height = rect_of(layer)
    values = struct.unpack(f"<{width * height * 4}H", bytes(layer.pixelData(x, y, width, height)))
    mask = bytes(layer.childNodes()[0].selection().pixelData(x, y, width, height))
    # The largest difference from the source where the blend mask is 0 (the result shows the
    # source there, converted to 8-bit sRGB and back).
    worst = 0
    for index, weight in enumerate(mask):
        if weight == 0:
            px, py = x + index % width, y + index // width
            original = struct.unpack("<4H", pixel(px, py))
            got = values[index * 4 : index * 4 + 4]
            worst = max(worst, *(abs(a - b) for a, b in zip(original[:3], got[:3], strict=True)))
    return {
        "transformed": [describe_layer(node, document) for node in transformed],
        "filled": describe_layer(layer, document),
        "unmasked_pixels": mask.count(0),
        "round_trip_worst": worst,
        "source_unchanged": digest(source, document) == before,
        "document_depth": document.colorDepth(),
    }


def colour_conversions() -> dict[str, Any]:
    """One known pixel per colour space, read as 8-bit sRGB; CMYK and Lab refused."""
    from inlayer_krita import api
    from inlayer_krita import document as pixels
    from inlayer_krita.inlayer_client.bounds import Bounds
    from inlayer_krita.inlayer_client.protocol import RGBAImage

    cases = {
        # linear 0.5 grey (the default deep profiles are linear): sRGB 188
        ("RGBA", "U16"): struct.pack("<4H", 32768, 32768, 32768, 65535),
        ("RGBA", "F16"): struct.pack("<4e", 0.5, 0.5, 0.5, 1.0),
        ("RGBA", "F32"): struct.pack("<4f", 0.5, 0.5, 0.5, 1.0),
        ("GRAYA", "U16"): struct.pack("<2H", 32768, 65535),
        # 8-bit sRGB: B, G, R, A in memory
        ("RGBA", "U8"): bytes([30, 20, 10, 255]),
        ("GRAYA", "U8"): bytes([188, 255]),
    }
    found: dict[str, Any] = {}
    for (model, depth), data in cases.items():
        document = Krita.instance().createDocument(1, 1, "colour", model, depth, "", 72.0)
        try:
            read = pixels.to_rgba8(document, data, Bounds(0, 0, 1, 1))
            back = pixels.from_rgba8(document, RGBAImage(1, 1, read.data))
            found[f"{model}/{depth}"] = {
                "profile": document.colorProfile(),
                "rgba8": list(read.data),
                "written_back": list(back),
                "original": list(data),
            }
        finally:
            document.setModified(False)
            document.close()
    for model, depth in (("CMYKA", "U8"), ("LABA", "U16")):
        document, _ = new_document("refused", 32, 32, model, depth)
        source = document.createNode("source", "paintlayer")
        document.rootNode().addChildNode(source, None)
        select(document, 4, 4, 8, 8)
        try:
            api.inpaint(document, "x", node=source, steps=STEPS)
            outcome = "accepted"
        except Exception as error:
            outcome = f"{type(error).__name__}: {error}"
        found[f"refused {model}/{depth}"] = {"outcome": outcome, "names": layer_names(document)}
    return found


def errors() -> dict[str, Any]:
    """Server down, a wrong token and an unknown model leave the document as it was."""
    from inlayer_krita import api
    from inlayer_krita.inlayer_client.http_client import HttpClient

    document, _ = new_document("errors", 64, 64)
    source = add_source(document, "source", gradient_u8)
    select(document, 8, 8, 16, 16)
    before = (digest(source, document), layer_names(document))
    clients = {
        "server_down": (HttpClient(CONFIG["dead_url"], CONFIG["token"], timeout=5), ""),
        "wrong_token": (HttpClient(CONFIG["url"], "not-the-token", timeout=5), ""),
        "unknown_model": (HttpClient(CONFIG["url"], CONFIG["token"]), "no-such-model"),
    }
    found: dict[str, Any] = {}
    for case, (client, model) in clients.items():
        try:
            api.inpaint(document, "x", node=source, steps=STEPS, model=model, client=client)
            found[case] = {"error": None}
        except Exception as error:
            kinds = [cls.__name__ for cls in type(error).__mro__]
            found[case] = {"error": kinds, "message": str(error)}
        found[case]["unchanged"] = (digest(source, document), layer_names(document)) == before
    return found


def docker_first_use(document, source) -> dict[str, Any]:
    """A new user's first presses: what the docker shows before anything is touched, Transform
    with those defaults, then each strength moved and its button pressed; what each result's
    stored parameters say."""
    from inlayer_krita.docker import InlayerDocker
    from inlayer_krita.history import document_entries

    window = Krita.instance().activeWindow()
    docker = next(d for d in window.dockers() if isinstance(d, InlayerDocker))
    docker.refresh_connection()
    settle()

    def shown() -> dict[str, Any]:
        return {
            **docker_fields(docker),
            "buttons": {kind: button.text() for kind, button in docker.buttons.items()},
        }

    def press(kind: str) -> dict[str, Any]:
        entries_before = len(document_entries(document))
        job = docker.start(kind)
        wait_for(job)
        entries = document_entries(document)[entries_before:]
        return {
            "message": docker.message_label.text(),
            "error": str(job.error) if job is not None and job.error else "",
            "stored": [entry["parameters"] for entry in entries],
        }

    found: dict[str, Any] = {
        "untouched": shown(),
        "first_view_messages": floating_messages_within(window, 10),
        "first_start_shown": Krita.instance().readSetting("Inlayer", "first_start_shown", ""),
    }
    docker.prompt_edit.setPlainText("make this daytime scene look like night")
    found["transform_untouched"] = press("transform")
    docker.steps_spin.setValue(4)  # 45 % of 4 steps is one step: the fewest that runs one
    docker.strength_sliders["inpaint"].setValue(90)
    docker.strength_sliders["transform"].setValue(45)
    found["moved"] = shown()
    found["inpaint_moved"] = press("inpaint")
    found["transform_moved"] = press("transform")
    found["generate_moved"] = press("generate")
    return found


def docker_server_settings(document, source) -> dict[str, Any]:
    """The docker's Server… dialog, used as a person does: a wrong URL is refused in the dialog;
    the remote server's URL and a user's token (`inlayer token add`) are saved, and the docker
    transforms there although the local token file is wrong; an empty URL goes back to the
    local server (whose wrong token the status then names)."""
    from inlayer_krita.docker import InlayerDocker

    window = Krita.instance().activeWindow()
    docker = next(d for d in window.dockers() if isinstance(d, InlayerDocker))
    app = QApplication.instance()
    seen: dict[str, Any] = {}

    def fill_in(url: str, token: str, *, then_cancel: bool = False) -> None:
        dialog = app.activeModalWidget()
        dialog.url_edit.setText(url)
        dialog.token_edit.setText(token)
        dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save).click()
        seen.setdefault("dialog_errors", []).append(dialog.error_label.text())
        if then_cancel and dialog.isVisible():
            dialog.reject()

    def through_dialog(url: str, token: str, *, then_cancel: bool = False) -> str:
        QTimer.singleShot(500, lambda: fill_in(url, token, then_cancel=then_cancel))
        docker.edit_server()  # modal until saved or cancelled
        settle()
        wait_until(lambda: not any(call.isRunning() for call in docker._calls), 30)
        return docker.status_label.text()

    found: dict[str, Any] = {
        "refused_status": through_dialog("ftp://studio", CONFIG["user_token"], then_cancel=True)
    }
    found["remote_status"] = through_dialog(CONFIG["url"], CONFIG["user_token"])
    before = digest(source, document)
    job = docker.start("transform")
    wait_for(job)
    found["remote_job"] = {
        "error": str(job.error) if job is not None and job.error else "",
        "message": docker.message_label.text(),
        "source_unchanged": digest(source, document) == before,
    }
    found["local_status"] = through_dialog("", "")
    found["dialog_errors"] = seen.get("dialog_errors", [])
    return found


def floating_messages_within(window, seconds: float) -> int:
    """How many of Krita's floating canvas messages `window` shows once one shows, or after
    `seconds` (0 if none did)."""

    def shown() -> int:
        return sum(
            widget.isVisible()
            for widget in window.qwindow().findChildren(QWidget)
            if widget.metaObject().className() == "KisFloatingMessage"
        )

    wait_until(shown, seconds)
    return shown()


def docker_add_ons(document, source) -> dict[str, Any]:
    """The docker's LoRA and autoencoder lists once connected; a Transform with a LoRA (its
    scale typed as NAME:SCALE) and an autoencoder picked; what kritarc keeps of them.
    `CONFIG["add_ons"]`: {"lora": NAME:SCALE to type, "vae": the name to pick}."""
    from inlayer_krita.docker import InlayerDocker
    from inlayer_krita.docker_settings import GROUP

    window = Krita.instance().activeWindow()
    docker = next(d for d in window.dockers() if isinstance(d, InlayerDocker))
    docker.refresh_connection()
    wait_until(lambda: docker.add_ons.lora_box.count() > 1, timeout=30)
    pickers = docker.add_ons
    found: dict[str, Any] = {
        "loras": [pickers.lora_box.itemData(i) for i in range(pickers.lora_box.count())],
        "vaes": [pickers.vae_box.itemData(i) for i in range(pickers.vae_box.count())],
        "untouched": pickers.request_options(),
    }
    chosen = CONFIG["add_ons"]
    pickers.lora_box.setEditText(chosen["lora"])
    pickers.vae_box.setCurrentIndex(pickers.vae_box.findData(chosen["vae"]))
    docker.prompt_edit.setPlainText("a red apple")
    docker.steps_spin.setValue(4)
    job = docker.start("transform")
    found["start_message"] = docker.message_label.text()
    if job is None:
        return found
    wait_for(job)
    request = job.edit.request
    found["job_error"] = str(job.error) if job.error else ""
    found["request"] = {"loras": [lora.to_json() for lora in request.loras], "vae": request.vae}
    found["kept"] = {key: Krita.instance().readSetting(GROUP, key, "") for key in ("lora", "vae")}
    return found


def docker_remove(document, source) -> dict[str, Any]:
    """The docker's Remove on a selection (20, 20, 16 × 16): one new masked layer above the
    source, the source untouched, no prompt needed."""
    from inlayer_krita.docker import InlayerDocker

    window = Krita.instance().activeWindow()
    docker = next(d for d in window.dockers() if isinstance(d, InlayerDocker))
    docker.refresh_connection()
    settle()
    docker.prompt_edit.setPlainText("")
    names_before, before = layer_names(document), digest(source, document)
    job = docker.start("remove")
    wait_for(job)
    settle()
    added = [node for node in document.topLevelNodes() if node.name() not in names_before]
    return {
        "error": str(job.error) if job is not None and job.error else "",
        "message": docker.message_label.text(),
        "button": docker.buttons["remove"].text(),
        "layers": [describe_layer(node, document) for node in added],
        "names_after": layer_names(document),
        "source_unchanged": digest(source, document) == before,
    }


def docker_and_switch(first, source) -> dict[str, Any]:
    """The docker starts a job on document `first`; the user switches to another document; the
    result lands in `first`."""
    from inlayer_krita.docker import InlayerDocker

    window = Krita.instance().activeWindow()
    dockers = [d for d in window.dockers() if isinstance(d, InlayerDocker)]
    found: dict[str, Any] = {
        # A later view's, given as long as the first view's: Krita's own, if any.
        "view_messages": floating_messages_within(window, 10),
        "dockers": len(dockers),
        "actions": [
            name
            for name in ("inlayer_inpaint", "inlayer_transform", "inlayer_generate")
            if Krita.instance().action(name) is not None
        ],
    }
    if not dockers:
        return found
    docker = dockers[0]
    docker.refresh_connection()
    settle()
    found["activated"] = active_layer()
    found["status"] = docker.status_label.text()
    found["models"] = [docker.model_box.itemData(i) for i in range(docker.model_box.count())]
    docker.prompt_edit.setPlainText("a blue door")
    docker.steps_spin.setValue(STEPS)
    docker.seed_spin.setValue(11)
    docker.seed_lock.setChecked(True)
    job = docker.start("inpaint")
    found["start_message"] = docker.message_label.text()
    if job is None:
        return found
    second, _ = new_document("second", 32, 32)  # a new view: the user switched documents
    wait_for(job)
    found["progress"] = [job.step, job.total]
    found["preview_seen"] = job.preview is not None
    found["active_after"] = Krita.instance().activeDocument().name()
    found["first_names"] = layer_names(first)
    found["second_names"] = layer_names(second)
    found["message"] = docker.message_label.text()
    return found


def docker_variations(document, source) -> dict[str, Any]:
    """Two variations wait as thumbnails; the one picked becomes a layer."""
    from inlayer_krita.docker import InlayerDocker
    from inlayer_krita.jobs import job_queue

    window = Krita.instance().activeWindow()
    docker = next(d for d in window.dockers() if isinstance(d, InlayerDocker))
    found: dict[str, Any] = {"activated": active_layer()}
    docker.count_spin.setValue(2)
    # Whatever strength earlier scenarios left, 4 steps run at least one (img2img runs
    # strength × steps of them).
    docker.steps_spin.setValue(4)
    job = docker.start("transform")
    wait_for(job)
    found["variation_items"] = docker.variation_list.count()
    found["variation_message"] = docker.message_label.text()
    if docker.variation_list.count() < 2:
        return found
    names_before = layer_names(document)
    docker.variation_list.item(1).setSelected(True)
    docker.apply_variations()
    found["applied"] = [n for n in layer_names(document) if n not in names_before]
    found["history_items"] = docker.history_list.count()
    found["queue_empty"] = not job_queue.jobs
    return found


def queue_and_cancel() -> dict[str, Any]:
    """A queued job cancelled before it starts, a running one cancelled mid-way."""
    from inlayer_krita import api, edits
    from inlayer_krita.inlayer_client.protocol import Mode
    from inlayer_krita.jobs import job_queue

    document, _ = new_document("cancel", 64, 64)
    source = add_source(document, "source", gradient_u8)
    select(document, 8, 8, 16, 16)
    client = api.default_client()
    running = job_queue.submit(
        edits.prepare(document, Mode.INPAINT, "slow", node=source, steps=150), client
    )
    waiting = job_queue.submit(
        edits.prepare(document, Mode.INPAINT, "never", node=source, steps=STEPS), client
    )
    found: dict[str, Any] = {"waiting_before": waiting.state.value}
    waiting.cancel()
    found["waiting_after"] = waiting.state.value
    while running.step < 1 and not running.is_finished:
        settle(20)
    found["running_step_at_cancel"] = running.step
    running.cancel()
    wait_for(running)
    found["running_after"] = running.state.value
    found["running_error"] = str(running.error)
    found["steps_done"] = [running.step, running.total]
    found["queue_empty"] = not job_queue.jobs
    return found


def docker_settings_session(document, source) -> dict[str, Any]:
    """One Krita session of a user who keeps working on the next day: what the docker shows
    when it comes up (restored from kritarc), what it shows once the server's model list is in,
    then a job started from the docker. `CONFIG["settings_change"]`, when given, is what the
    user sets in the docker before starting it: field name → value."""
    from inlayer_krita.docker import InlayerDocker

    window = Krita.instance().activeWindow()
    docker = next(d for d in window.dockers() if isinstance(d, InlayerDocker))
    found: dict[str, Any] = {
        "restored": docker_fields(docker),
        "restored_message": docker.message_label.text(),
    }
    docker.refresh_connection()
    settle()
    found["connected"] = docker_fields(docker)
    found["connected_message"] = docker.message_label.text()
    change = CONFIG.get("settings_change", {})
    if change:
        docker.prompt_edit.setPlainText(change["prompt"])
        docker.negative_edit.setText(change["negative_prompt"])
        docker.strength_sliders["inpaint"].setValue(change["inpaint_strength_percent"])
        docker.strength_sliders["transform"].setValue(change["transform_strength_percent"])
        docker.preset_box.setCurrentIndex(docker.preset_box.findData(change["preset"]))
        docker.steps_spin.setValue(change["steps"])
        docker.seed_spin.setValue(change["seed"])
        docker.seed_lock.setChecked(change["seed_locked"])
        docker.count_spin.setValue(change["count"])
        docker.model_box.setCurrentIndex(docker.model_box.findData(change["model"]))
    before = digest(source, document)
    names_before = layer_names(document)
    job = docker.start("transform")
    found["start_message"] = docker.message_label.text()
    if job is None:
        return found
    wait_for(job)
    found["job_error"] = str(job.error) if job.error else ""
    found["job_parameters"] = {
        key: getattr(job.edit.request, key)
        for key in (
            "prompt",
            "negative_prompt",
            "strength",
            "preset",
            "steps",
            "seed",
            "count",
            "model",
        )
    }
    found["added"] = [name for name in layer_names(document) if name not in names_before]
    found["source_unchanged"] = digest(source, document) == before
    found["at_quit"] = docker_fields(docker)
    return found


def docker_fields(docker) -> dict[str, Any]:
    """What the docker's fields show, by the settings' names."""
    return {
        "prompt": docker.prompt_edit.toPlainText(),
        "negative_prompt": docker.negative_edit.text(),
        "inpaint_strength_percent": docker.strength_sliders["inpaint"].value(),
        "transform_strength_percent": docker.strength_sliders["transform"].value(),
        "preset": docker.preset_box.currentData(),
        "steps": docker.steps_spin.value(),
        "seed": docker.seed_spin.value(),
        "seed_locked": docker.seed_lock.isChecked(),
        "count": docker.count_spin.value(),
        "model": docker.chosen_model(),
        "model_listed": docker.model_box.currentData(),
        "read_visible": docker.source_box.currentData(),
    }


def wait_until(condition: Callable[[], Any], timeout: float = 120.0) -> bool:
    """Let Krita's event loop run until `condition()` holds; False if `timeout` s pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        settle(20)
    return True


def marker_path(name: str) -> str:
    """A file beside the findings through which the test outside Krita and this scenario
    take turns."""
    return os.path.join(os.path.dirname(CONFIG["findings"]), name)


def server_crash() -> dict[str, Any]:
    """The server is killed while a job runs (by the test, outside Krita): a clear message, the
    document as it was; once the test has started the server again, the same docker client
    (the one api.py keeps for the session) runs the next edit."""
    from inlayer_krita import api
    from inlayer_krita.inlayer_client.protocol import InlayerError

    document, _ = new_document("crash", 64, 64)
    source = add_source(document, "source", gradient_u8)
    settle()
    select(document, 16, 16, 24, 24)
    before = (digest(source, document), layer_names(document))
    found: dict[str, Any] = {}
    try:  # long enough for the test to see it running and kill the server
        api.inpaint(document, "x", node=source, steps=150, count=16, seed=3)
        found["during_crash"] = None
    except InlayerError as error:
        found["during_crash"] = str(error)
    found["unchanged_after_crash"] = (digest(source, document), layer_names(document)) == before
    with open(marker_path("crash-seen"), "w", encoding="utf-8") as marker:
        marker.write("done\n")
    found["restarted"] = wait_until(lambda: os.path.exists(marker_path("restarted")), 300)
    layers = api.inpaint(document, "y", node=source, steps=STEPS, seed=4)
    found["layers_after_restart"] = len(layers)
    found["source_unchanged"] = digest(source, document) == before[0]
    return found


def paint_stroke(document, source, index: int) -> None:
    """A stroke's worth of new pixels inside the selection (20, 20, 16 x 16)."""
    colour = bytes([(40 + 50 * index) % 256, (200 - 30 * index) % 256, 25 * index % 256, 255])
    source.setPixelData(colour * 64, 21 + index % 8, 21 + index % 8, 8, 8)
    document.refreshProjection()


def start_live(document, source):
    """The docker's Live switch on, for `CONFIG["live_model"]`; the docker and the session."""
    from inlayer_krita.docker import InlayerDocker

    model = CONFIG["live_model"]
    window = Krita.instance().activeWindow()
    docker = next(d for d in window.dockers() if isinstance(d, InlayerDocker))
    docker.refresh_connection()
    wait_until(lambda: docker.model_box.findData(model) > 0, timeout=30)
    docker.model_box.setCurrentIndex(docker.model_box.findData(model))
    docker.prompt_edit.setPlainText("a garden")
    docker.seed_spin.setValue(5)
    docker.seed_lock.setChecked(True)
    docker.live.strength_slider.setValue(60)
    docker.live.live_check.setChecked(True)
    return docker, docker.live.session


def live_latency(document, source) -> dict[str, Any]:
    """Live painting's latency (bench/bench_live.py): after the first preview,
    `CONFIG["live_changes"]` single strokes, each waited for: from the stroke to the preview
    showing its result, and the job's own compute (the server's total) within that."""
    docker, session = start_live(document, source)
    found: dict[str, Any] = {"started": session is not None, "message": docker.message_label.text()}
    if session is None:
        return found
    timeout = CONFIG.get("live_timeout", 120)
    wait_until(lambda: session.job is not None and session.job.is_finished, timeout=timeout)
    latencies = []
    for index in range(CONFIG.get("live_changes", 5)):
        count = len(session.updates)
        changed_at = time.monotonic()
        paint_stroke(document, source, index + 3)
        if not wait_until(lambda count=count: len(session.updates) > count, timeout=timeout):
            found["error"] = str(session.job.error or "") if session.job else "no job"
            break
        update = session.updates[-1]
        latencies.append(
            {
                "change_to_preview": update.shown_at - changed_at,
                "compute": update.compute_seconds,
                "overhead": update.shown_at - changed_at - update.compute_seconds,
            }
        )
    found["latencies"] = latencies
    docker.live.live_check.setChecked(False)
    settle()
    return found


def live_painting(document, source) -> dict[str, Any]:
    """Live mode through the docker's controls: the first preview, three quick canvas changes
    while a slow job holds the queue, Apply and its undo, and switching Live off. Run in a
    launch of its own, against a server with the fast preset's pieces (test_krita_live.py)."""
    from inlayer_krita import api, edits
    from inlayer_krita import document as pixels
    from inlayer_krita.history import document_entries, is_live_preview
    from inlayer_krita.inlayer_client.bounds import Bounds
    from inlayer_krita.inlayer_client.protocol import Mode
    from inlayer_krita.jobs import job_queue
    from inlayer_krita.live import PREVIEW_NAME

    model = CONFIG["live_model"]
    docker, session = start_live(document, source)
    controls = docker.live
    found: dict[str, Any] = {"started": session is not None, "message": docker.message_label.text()}
    if session is None:
        return found

    def live_idle() -> bool:
        return session.job is not None and session.job.is_finished

    wait_until(live_idle)
    found["first"] = {
        "updates": len(session.updates),
        "error": str(session.job.error or "") if session.job else "no job",
    }

    # A slow job of the docker's holds the queue: each newer canvas state replaces the waiting
    # live job, and only the newest one runs once the queue is free.
    blocker = job_queue.submit(
        edits.prepare(
            document, Mode.IMG2IMG, "slow", node=source, model=model, steps=150, preset="quality"
        ),
        api.default_client(),
    )
    wait_until(lambda: blocker.step >= 1 or blocker.is_finished, timeout=60)
    jobs_before = len(session.jobs)
    unfinished_live_jobs = []
    for index in range(3):
        paint_stroke(document, source, index)
        settle(300)  # a few polls: each state is seen
        unfinished_live_jobs.append(sum(not job.is_finished for job in session.jobs))
    found["blocker"] = [blocker.state.value, str(blocker.error or "")]
    found["while_blocked"] = [job.state.value for job in session.jobs[jobs_before:]]
    found["unfinished_live_jobs"] = unfinished_live_jobs
    blocker.cancel()
    wait_until(lambda: live_idle() and not job_queue.jobs)
    settle(500)  # a poll more: nothing left to run
    last = session.job
    found["after_changes"] = {
        "jobs": [job.state.value for job in session.jobs[jobs_before:]],
        "last_error": str(last.error or ""),
        "updates": len(session.updates),
        "names": layer_names(document),
    }
    previews = [node for node in document.rootNode().childNodes() if node.name() == PREVIEW_NAME]
    found["preview_layers"] = len(previews)
    if len(previews) != 1 or session.shown is None:
        return found
    [preview] = previews
    edit, result = session.shown
    image = result.images[0]
    canvas = edit.request.image
    read = Bounds(edit.origin[0], edit.origin[1], canvas.width, canvas.height)
    x, y = edit.origin[0] + image.x, edit.origin[1] + image.y
    width, height = image.image.width, image.image.height
    found["preview"] = {
        "marked": is_live_preview(document, preview),
        "above_source": preview.index() == source.index() + 1,
        "from_last_job": result is last.result,
        "read_the_last_state": canvas.data == pixels.read_layer(document, source, read).data,
        "holds_the_result": bytes(preview.pixelData(x, y, width, height))
        == pixels.from_rgba8(document, image.image),
        "bounds": rect_of(preview),
        "result_bounds": [x, y, width, height],
        "parameters": result.parameters,
        "not_in_history": all(
            entry["layer_id"] != preview.uniqueId().toString()
            for entry in document_entries(document)
        ),
    }
    try:
        edits.prepare(document, Mode.INPAINT, "x", node=preview)
        found["preview_as_source"] = "accepted"
    except Exception as error:
        found["preview_as_source"] = str(error)

    names_before = layer_names(document)
    entries_before = len(document_entries(document))
    controls.apply_button.click()
    settle()
    found["apply"] = {
        "added": [name for name in layer_names(document) if name not in names_before],
        "names": layer_names(document),
        "entries_added": len(document_entries(document)) - entries_before,
        "preview_bounds": rect_of(preview),
        "message": docker.message_label.text(),
        "button_enabled": controls.apply_button.isEnabled(),
    }
    undo(document)
    found["names_after_undo"] = layer_names(document)
    found["names_before_apply"] = names_before

    controls.live_check.setChecked(False)
    settle()
    found["names_after_off"] = layer_names(document)
    found["session_after_off"] = controls.session is not None
    return found


def outpaint_16_9() -> dict[str, Any]:
    """Outpaint a 96x72 layer to 16:9: the canvas grows, one layer is added, the source keeps
    its pixels (moved with the canvas); one undo takes the layer back."""
    from inlayer_krita import api

    document, view = new_document("outpaint", 96, 72)
    source = add_source(document, "source", gradient_u8)
    settle()
    before = bytes(source.pixelData(0, 0, 96, 72))
    names_before = layer_names(document)
    layers = api.outpaint(document, "a beach", node=source, aspect="16:9", steps=STEPS, seed=3)
    found = {
        "size": [document.width(), document.height()],
        "names_before": names_before,
        "names_after": layer_names(document),
        "layers": [describe_layer(layer, document) for layer in layers],
        "source_bounds": rect_of(source),
        # The source moved with the canvas: its pixels are where the old canvas now sits.
        "source_unchanged": bytes(source.pixelData(16, 0, 96, 72)) == before,
        "undone": [],
    }
    # Krita's Python API cannot group the canvas's growth and the layer into one undo step
    # (docs/canvas.md): the first Ctrl+Z takes the layer, the second the growth.
    Krita.instance().activeWindow().showView(view)
    settle()
    for _ in range(2):
        undo(document)
        found["undone"].append(
            {"size": [document.width(), document.height()], "names": layer_names(document)}
        )
    return found


def disc_u8(x: int, y: int) -> bytes:
    """A bright disc (the subject) on a dark, even ground, 64 × 64."""
    inside = (x - 32) ** 2 + (y - 32) ** 2 < 14**2
    return bytes([40, 200, 240, 255]) if inside else bytes([60, 30, 20, 255])  # B, G, R, A


def retouch_row(source):
    """The docker's Retouch row, connected, over a 64 × 64 disc in `source`."""
    from inlayer_krita.docker import InlayerDocker

    window = Krita.instance().activeWindow()
    docker = next(d for d in window.dockers() if isinstance(d, InlayerDocker))
    source.setPixelData(b"".join(disc_u8(x, y) for y in range(64) for x in range(64)), 0, 0, 64, 64)
    docker.refresh_connection()
    wait_until(lambda: docker.retouch.settings.restore_faces, timeout=30)
    return docker, docker.retouch


def retouch_state(document, source) -> dict[str, Any]:
    selection = document.selection()
    return {
        "names": layer_names(document),
        "source": digest(source, document),
        "size": [document.width(), document.height()],
        "selection": None
        if selection is None
        else [selection.x(), selection.y(), selection.width(), selection.height()],
    }


def press(docker, start: Callable[[], Any]) -> dict[str, Any]:
    """Start a job as a button does; once it has finished, its error and the docker's message."""
    job = start()
    wait_for(job)
    return {
        "error": str(job.error) if job is not None and job.error else "",
        "message": docker.message_label.text(),
    }


def docker_upscale(document, source) -> dict[str, Any]:
    """The Retouch row untouched (the dialog's fields, the server's lists), then Upscale ▾ ×2
    of the whole layer with the tiny ESRGAN: a new document, the source document as it was."""
    from inlayer_krita.jobs import job_queue
    from inlayer_krita.retouch import RESTORE_FIELDS, RetouchSettings

    docker, row = retouch_row(source)
    dialog = row.dialog()
    found: dict[str, Any] = {
        "untouched": {
            "settings": vars(row.settings).copy(),
            "upscalers": [
                dialog.upscaler_box.itemData(i) for i in range(dialog.upscaler_box.count())
            ],
            "restore_lists": {
                name: [box.itemData(i) for i in range(box.count())]
                for name, box in dialog.restore_boxes.items()
            },
            "row": [row.upscale_button.text(), row.restore_button.text(), row.select_button.text()],
            # What the dialog shows, by the names docs/defaults.md gives its fields.
            "shown": {
                "Upscaler": dialog.upscaler_box.currentText(),
                "Refine with the prompt": "on" if dialog.refine_check.isChecked() else "off",
                **{
                    f"Restore: {label}": dialog.restore_boxes[name].currentText()
                    for name, label in RESTORE_FIELDS
                },
            },
        }
    }
    dialog.deleteLater()
    document.setSelection(Selection())  # nothing selected: the whole layer
    settle()
    before, documents_before = retouch_state(document, source), Krita.instance().documents()
    row.settings = RetouchSettings(upscaler=CONFIG["retouch"]["upscaler"])
    times_two = row.upscale_button.menu().actions()[0]  # Upscale ▾ ×2, as a person picks it
    found.update(press(docker, lambda: (times_two.trigger(), job_queue.jobs[-1])[1]))
    found["new_documents"] = [
        {
            "size": [d.width(), d.height()],
            "layers": [describe_layer(layer, d) for layer in d.topLevelNodes()],
            "colour": [d.colorModel(), d.colorDepth()],
        }
        for d in Krita.instance().documents()
        if d not in documents_before
    ]
    found["before"], found["after"] = before, retouch_state(document, source)
    return found


def docker_restore(document, source) -> dict[str, Any]:
    """Restore (denoise) of the selection (20, 20, 16 × 16): one masked layer above the source.
    A marker layer added just before is the step the second Ctrl+Z must take back: the result,
    its mask with it, is one undo step."""
    from inlayer_krita.retouch import RetouchSettings

    docker, row = retouch_row(source)
    marker = document.createNode("marker", "paintlayer")
    document.rootNode().addChildNode(marker, None)
    document.setActiveNode(source)  # Krita 6 makes the new layer the active one
    settle()
    before = retouch_state(document, source)
    row.settings = RetouchSettings(denoise=CONFIG["retouch"]["denoise"])
    found = press(docker, row.start_restore)
    added = [n for n in document.topLevelNodes() if n.name() not in before["names"]]
    found["layers"] = [describe_layer(layer, document) for layer in added]
    found["before"], found["after"] = before, retouch_state(document, source)
    undone = []
    for _ in range(2):
        undo(document)
        undone.append(layer_names(document))
    found["undone"] = undone
    return found


def docker_no_faces(document, source) -> dict[str, Any]:
    """Restore of faces only, on a picture where the detector finds none."""
    from inlayer_krita.retouch import RetouchSettings

    docker, row = retouch_row(source)
    document.setSelection(Selection())
    settle()
    before = retouch_state(document, source)
    row.settings = RetouchSettings(restore_faces=CONFIG["retouch"]["faces"])
    found = press(docker, row.start_restore)
    found["before"], found["after"] = before, retouch_state(document, source)
    return found


def docker_colorize(document, source) -> dict[str, Any]:
    """Restore with a colorize model only, on the whole layer: one layer in an RGB image; then
    the image made greyscale, where colorize is refused before anything runs."""
    from inlayer_krita.retouch import RetouchSettings

    docker, row = retouch_row(source)
    document.setSelection(Selection())
    settle()
    row.settings = RetouchSettings(colorize=CONFIG["retouch"]["colorize"])
    before = retouch_state(document, source)
    found = {"rgb": press(docker, row.start_restore)}
    found["rgb"]["before"], found["rgb"]["after"] = before, retouch_state(document, source)
    grey_profiles = Krita.instance().profiles("GRAYA", "U8")
    document.setColorSpace("GRAYA", "U8", grey_profiles[0])
    settle()
    before = retouch_state(document, source)
    found["grey"] = press(docker, row.start_restore)
    found["grey"]["before"], found["grey"]["after"] = before, retouch_state(document, source)
    found["grey"]["colour"] = [document.colorModel(), document.colorDepth()]
    return found


def docker_select(document, source) -> dict[str, Any]:
    """Select subject of the whole layer: the selection becomes the disc."""
    docker, row = retouch_row(source)
    document.setSelection(Selection())
    settle()
    before = retouch_state(document, source)
    found = press(docker, row.start_select)
    found["before"], found["after"] = before, retouch_state(document, source)
    selection = document.selection()
    if selection is not None:
        values = bytes(selection.pixelData(0, 0, 64, 64))
        found["centre"], found["corner"] = values[32 * 64 + 32], values[0]
        found["selected_pixels"] = sum(1 for value in values if value > 127)
    return found


def docker_retouch_kept(document, source) -> dict[str, Any]:
    """A choice made in the Retouch dialog (an upscaler, the refine, faces None, a denoise
    model, colorize None) is written to kritarc and read back by the row the next session's
    docker builds."""
    from inlayer_krita.docker_settings import GROUP, RETOUCH_KEYS, RETOUCH_PREFIX
    from inlayer_krita.inlayer_client.protocol import AddOnInfo, AddOnKind
    from inlayer_krita.retouch import RetouchRow

    docker, row = retouch_row(source)
    dialog = row.dialog()
    dialog.upscaler_box.setCurrentIndex(dialog.upscaler_box.findData(CONFIG["retouch"]["upscaler"]))
    dialog.refine_check.setChecked(True)
    picks = {"restore_faces": "", "denoise": CONFIG["retouch"]["denoise"], "colorize": ""}
    for name, value in picks.items():
        box = dialog.restore_boxes[name]
        box.setCurrentIndex(box.findData(value))
    row.keep(dialog.settings())
    dialog.deleteLater()
    krita = Krita.instance()
    stored = {key: krita.readSetting(GROUP, RETOUCH_PREFIX + key, "") for key in RETOUCH_KEYS}
    next_session = RetouchRow(docker)
    read_back = vars(next_session.settings).copy()
    upscalers = [AddOnInfo(name, AddOnKind.UPSCALER, "", "") for name in row._upscalers]
    next_session.fill(upscalers, row._image_models)  # the server's lists, as the docker's check
    found = {"stored": stored, "read_back": read_back, "filled": vars(next_session.settings).copy()}
    next_session.deleteLater()
    return found


def wait_for(job) -> None:
    while job is not None and not job.is_finished:
        settle(100)
    settle()


def active_layer() -> list[str]:
    """The active document's and layer's names, as the docker sees them."""
    document = Krita.instance().activeDocument()
    node = document.activeNode() if document is not None else None
    return [document.name() if document else "", node.name() if node else ""]


def document_with_active_layer(name: str) -> tuple[Any, Any]:
    """A new document shown in a view, with a selection and an active layer.

    Called from Krita's own event loop: `setActiveNode` and view changes take effect only once
    control returns there, which a scenario's local event loop does not do.
    """
    document, _ = new_document(name, 64, 64)
    source = add_source(document, "source", gradient_u8)
    select(document, 20, 20, 16, 16)
    document.setActiveNode(source)
    return document, source


# (scenario, name of the document with an active layer it needs, or None)
SCENARIOS: list[tuple[Callable[..., dict[str, Any]], str | None]] = [
    (docker_first_use, "zeroth"),  # first: the docker as nobody has touched it yet
    (docker_and_switch, "first"),
    (docker_variations, "third"),
    (inpaint_u8, None),
    (txt2img_and_fill, None),
    (saved_and_reopened, None),
    (img2img_u16, None),
    (colour_conversions, None),
    (errors, None),
    (queue_and_cancel, None),
    (docker_settings_session, "fourth"),
    (docker_remove, "remove"),  # only when asked for
    (live_painting, "live"),  # only when asked for: its server has the fast preset
    (server_crash, None),  # only when asked for: the test kills and restarts the server
    (docker_add_ons, "fifth"),  # only when asked for: its server has LoRAs and autoencoders
    (live_latency, "live"),  # only when asked for: bench/bench_live.py
    (outpaint_16_9, None),  # only when asked for: test_outpaint.py
    (guided_edits, None),  # only when asked for: its server has the guides' tiny models
    (docker_server_settings, "remote"),  # only when asked for: test_krita_remote.py
    # Only when asked for: their server has upscalers and restorers.
    (docker_upscale, "upscale"),
    (docker_restore, "restore"),
    (docker_no_faces, "no_faces"),
    (docker_colorize, "colorize"),
    (docker_select, "select"),
    (docker_retouch_kept, "kept"),
]
# The scenarios this launch runs, by name (all but the settings session by default).
if "scenarios" in CONFIG:
    SCENARIOS = [entry for entry in SCENARIOS if entry[0].__name__ in CONFIG["scenarios"]]
else:
    SCENARIOS = [
        entry
        for entry in SCENARIOS
        if entry[0]
        not in (
            docker_settings_session,
            live_painting,
            server_crash,
            docker_add_ons,
            live_latency,
            docker_remove,
            outpaint_16_9,
            guided_edits,
            docker_server_settings,
            docker_upscale,
            docker_restore,
            docker_no_faces,
            docker_colorize,
            docker_select,
            docker_retouch_kept,
        )
    ]
FINDINGS: dict[str, Any] = {}
SETTLE_MS = 1500  # for Krita to take a new active layer


def run_scenario(index: int) -> None:
    """Run scenario `index` (after preparing its document and returning to Krita's event loop
    for `SETTLE_MS`), then the next one; write the findings and quit after the last."""
    if index == len(SCENARIOS):
        finish()
        return
    scenario, document_name = SCENARIOS[index]
    try:
        arguments = document_with_active_layer(document_name) if document_name else ()
    except Exception:
        FINDINGS[scenario.__name__] = {"crash": traceback.format_exc()}
        QTimer.singleShot(0, lambda: run_scenario(index + 1))
        return

    def run() -> None:
        try:
            FINDINGS[scenario.__name__] = scenario(*arguments)
        except Exception:
            FINDINGS[scenario.__name__] = {"crash": traceback.format_exc()}
        QTimer.singleShot(0, lambda: run_scenario(index + 1))

    QTimer.singleShot(SETTLE_MS if document_name else 0, run)


def finish() -> None:
    with open(CONFIG["findings"], "w", encoding="utf-8") as out:
        json.dump(FINDINGS, out, indent=1)
    for document in Krita.instance().documents():
        document.setModified(False)
        document.close()
    Krita.instance().action("file_quit").trigger()


class ScenarioRunner(Extension):
    def setup(self) -> None:
        # Start once Krita's window and the plug-in's docker exist.
        QTimer.singleShot(2000, lambda: run_scenario(0))

    def createActions(self, window) -> None:
        pass


Krita.instance().addExtension(ScenarioRunner(Krita.instance()))
