"""Live painting: while the docker's Live switch is on, each change of the canvas in the live area
runs img2img with the fast preset, and the result shows in one preview layer above the source.

Krita's Python API offers no signal for "these pixels changed" that Krita 5.2 and 6 both have,
so a `QTimer` polls a checksum of the live area (the selection's rectangle, else the layer) and of
the options. A poll that sees a new state submits it at once to the shared job queue and cancels
the previous live job (at once while it waits, after the server's current step while it runs):
the newest state wins, and at most one live job runs while one waits. Reading the area and
checksumming it is all the GUI thread does, so painting never waits for the model.

The preview is one paint layer, marked as such in the document (`history.mark_live_preview`): it
is never listed as a result, and `edits.prepare` refuses to read it as a source. Each result
overwrites it in place with `setPixelData`, which adds no undo step. Apply adds the shown result as
a normal result layer (one undo step, with its metadata, as every result has) and empties the
preview.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from krita import Document, Krita, Node

from . import api, edits
from . import document as pixels
from .history import is_live_preview, live_preview_id, mark_live_preview
from .inlayer_client.base import Client
from .inlayer_client.bounds import Bounds
from .inlayer_client.protocol import EditResult, InlayerError, JobState, Mode
from .jobs import Job, job_queue
from .qt import QtCore, QtWidgets, Signal

PREVIEW_NAME = "Inlayer live preview"
POLL_MS = 100  # the shortest time between two looks at the canvas
# Reading a large layer takes time on the GUI thread: the poll interval grows so that polling
# takes at most this share of it.
POLL_SHARE = 0.1
DEFAULT_STRENGTH_PERCENT = 50

StateKey = tuple[tuple[int, int, int, int], int, int, str]  # area, pixels, selection, options


@dataclass(frozen=True)
class LiveUpdate:
    """One preview shown: when its canvas state was seen and shown, and the job's own compute."""

    seen_at: float  # time.monotonic() of the poll that saw the state
    shown_at: float  # time.monotonic() once the preview layer held the result
    compute_seconds: float  # the server's own time for the job (its `timings["total"]`)

    @property
    def overhead_seconds(self) -> float:
        """What live mode added to the job's own time: polling, queueing, transfer, writing."""
        return self.shown_at - self.seen_at - self.compute_seconds


def find_node(document: Document, unique_id: str) -> Node | None:
    """The node of `document` whose unique id (as text) is `unique_id`, at any depth."""
    waiting = list(document.rootNode().childNodes())
    while waiting:
        node = waiting.pop()
        if node.uniqueId().toString() == unique_id:
            return node
        waiting.extend(node.childNodes())
    return None


class LiveSession(QtCore.QObject):
    """Watches one layer of one document and keeps its preview layer up to date."""

    updated = Signal()  # the preview layer shows a new result
    message = Signal(str)  # something the user should read (a refused or failed job)
    ended = Signal(str)  # the session stopped by itself (document closed, layer gone): why

    def __init__(
        self,
        document: Document,
        source: Node,
        options: Callable[[], dict[str, Any]],
        client: Client,
    ) -> None:
        super().__init__()
        self.document = document
        self.source = source
        self._options = options  # the request's fields, read at every poll
        self._client = client
        self._seen: StateKey | None = None
        self.job: Job | None = None  # the newest live job
        self.jobs: list[Job] = []  # every live job of the session, oldest first
        self.shown: tuple[edits.Edit, EditResult] | None = None  # what the preview shows
        self.updates: list[LiveUpdate] = []
        self.active = True
        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self.poll)
        self._timer.start(POLL_MS)

    # --- watching -------------------------------------------------------------------------------

    def live_area(self) -> Bounds:
        """The selection's rectangle, else the layer's painted part, within the image."""
        canvas = pixels.canvas_bounds(self.document)
        selection = pixels.selection_bounds(self.document)
        area = selection if selection is not None else pixels.layer_bounds(self.source)
        return area.intersection(canvas)

    def state(self) -> StateKey:
        """A cheap fingerprint of everything a live job reads: the area, its pixels, the
        selection there, and the request's options."""
        area = self.live_area()
        if area.is_empty:
            return ((0, 0, 0, 0), 0, 0, "")
        rect = (area.x, area.y, area.width, area.height)
        layer_sum = zlib.crc32(bytes(self.source.projectionPixelData(*rect)))
        selection = self.document.selection()
        selection_sum = zlib.crc32(bytes(selection.pixelData(*rect))) if selection else 0
        return (rect, layer_sum, selection_sum, json.dumps(self._options(), sort_keys=True))

    def _still_there(self) -> str:
        """Why the session cannot go on ("" when it can)."""
        if self.document not in Krita.instance().documents():
            return "Live stopped: its document was closed."
        if self.source.parentNode() is None:
            return "Live stopped: the layer it watched was deleted."
        return ""

    def poll(self) -> None:
        started = time.monotonic()
        why_not = self._still_there()
        if why_not:
            self.stop(remove_preview=False)
            self.ended.emit(why_not)
            return
        state = self.state()
        if state != self._seen:
            self._seen = state
            if state[0][2] and state[0][3]:  # an empty area has nothing to repaint
                self._submit(started)
        cost = time.monotonic() - started
        self._timer.setInterval(max(POLL_MS, round(cost / POLL_SHARE * 1000)))

    def _submit(self, seen_at: float) -> None:
        """Run the canvas as it is now; the newest state replaces the previous live job."""
        if self.job is not None and not self.job.is_finished:
            self.job.cancel()
        try:
            edit = edits.prepare(self.document, Mode.IMG2IMG, node=self.source, **self._options())
            job = job_queue.submit(edit, self._client)
        except InlayerError as error:
            self.message.emit(str(error))
            return
        job.finished.connect(lambda: self._on_finished(job, seen_at))
        self.job = job
        self.jobs.append(job)

    def _on_finished(self, job: Job, seen_at: float) -> None:
        if not self.active:
            return
        if job.state == JobState.FAILED and job.error is not None:
            self.message.emit(str(job.error))
        if job.result is None:  # cancelled by a newer state, or failed
            return
        # Jobs finish in the order they were submitted: any result is newer than the one shown.
        self._show(job.edit, job.result)
        self.updates.append(
            LiveUpdate(seen_at, time.monotonic(), float(job.result.timings.get("total", 0.0)))
        )
        self.updated.emit()

    # --- the preview layer ----------------------------------------------------------------------

    def preview_layer(self) -> Node | None:
        """The document's live preview layer, if it has one in its layer stack."""
        unique_id = live_preview_id(self.document)
        node = find_node(self.document, unique_id) if unique_id else None
        return node if node is not None and node.parentNode() is not None else None

    def _show(self, edit: edits.Edit, result: EditResult) -> None:
        """Write the result into the preview layer (a new one only when there is none)."""
        image = result.images[0]
        x, y = edit.origin[0] + image.x, edit.origin[1] + image.y
        data = pixels.from_rgba8(self.document, image.image)
        preview = self.preview_layer()
        if preview is None:
            # Complete before it joins the document: adding it is one undo step, like a result.
            preview = self.document.createNode(PREVIEW_NAME, "paintlayer")
            preview.setPixelData(data, x, y, image.image.width, image.image.height)
            self.source.parentNode().addChildNode(preview, self.source)
            mark_live_preview(self.document, preview)
        else:
            self._clear(preview)
            preview.setPixelData(data, x, y, image.image.width, image.image.height)
            self.document.refreshProjection()
        self.shown = (edit, result)

    def _clear(self, preview: Node) -> None:
        """Make the preview transparent (zero bytes: alpha 0 in every colour space)."""
        old = pixels.layer_bounds(preview)
        if old.is_empty:
            return
        pixel_bytes = len(preview.pixelData(old.x, old.y, 1, 1))
        preview.setPixelData(
            bytes(old.width * old.height * pixel_bytes), old.x, old.y, old.width, old.height
        )

    # --- the user's commands --------------------------------------------------------------------

    def apply(self) -> list[Node]:
        """Keep what the preview shows as a normal result layer (one undo step)."""
        if self.shown is None:
            raise InlayerError("No live preview to apply yet: change the canvas while Live is on.")
        edit, result = self.shown
        layers = edits.apply(edit, result)
        preview = self.preview_layer()
        if preview is not None:
            self._clear(preview)
            self.document.refreshProjection()
        self.shown = None
        return layers

    def stop(self, *, remove_preview: bool = True) -> None:
        """Stop watching, cancel the live job, and take the preview layer away."""
        self.active = False
        self._timer.stop()
        if self.job is not None:
            self.job.cancel()
        if remove_preview and self.document in Krita.instance().documents():
            preview = self.preview_layer()
            if preview is not None:
                preview.remove()


class LiveHost(Protocol):
    """What the live controls read from the docker they sit in."""

    prompt_edit: QtWidgets.QPlainTextEdit
    negative_edit: QtWidgets.QLineEdit
    seed_spin: QtWidgets.QSpinBox

    def chosen_model(self) -> str: ...

    def show_message(self, text: str) -> None: ...


class LiveControls(QtWidgets.QGroupBox):
    """The docker's Live switch, its strength and Apply; the prompt, negative prompt, model and
    seed are the docker's own. The seed stays as it is while Live runs: a new seed for every
    change would make the preview jump for reasons other than the painting."""

    def __init__(self, host: LiveHost) -> None:
        super().__init__("Live")
        self._host = host
        self.session: LiveSession | None = None
        layout = QtWidgets.QHBoxLayout(self)
        self.live_check = QtWidgets.QCheckBox("Live")
        self.live_check.setToolTip(
            "Repaint the selection (or the layer) into a preview layer at each change (fast preset)"
        )
        self.strength_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.strength_slider.setRange(1, 100)
        self.strength_slider.setValue(DEFAULT_STRENGTH_PERCENT)
        self.strength_slider.setToolTip("How much the preview changes the canvas")
        strength_label = QtWidgets.QLabel(f"{DEFAULT_STRENGTH_PERCENT} %")
        self.strength_slider.valueChanged.connect(
            lambda value: strength_label.setText(f"{value} %")
        )
        self.apply_button = QtWidgets.QPushButton("Apply")
        self.apply_button.setToolTip("Keep the preview as a result layer")
        self.apply_button.setEnabled(False)
        layout.addWidget(self.live_check)
        layout.addWidget(self.strength_slider, 1)
        layout.addWidget(strength_label)
        layout.addWidget(self.apply_button)
        self.live_check.toggled.connect(self._switch)
        self.apply_button.clicked.connect(self.apply)

    def request_options(self) -> dict[str, Any]:
        """The live job's request fields: the docker's prompt, model and seed, this strength."""
        host = self._host
        return {
            "prompt": host.prompt_edit.toPlainText().strip(),
            "negative_prompt": host.negative_edit.text(),
            "model": host.chosen_model(),
            "seed": host.seed_spin.value(),
            "strength": self.strength_slider.value() / 100,
            "preset": "fast",
        }

    def _switch(self, on: bool) -> None:
        if not on:
            self._stop()
            return
        try:
            self.session = self._start()
        except InlayerError as error:
            self._host.show_message(str(error))
            self.live_check.blockSignals(True)  # not a user's switch: nothing to stop
            self.live_check.setChecked(False)
            self.live_check.blockSignals(False)
            return
        self._host.show_message("")

    def _start(self) -> LiveSession:
        document = Krita.instance().activeDocument()
        if document is None:
            raise InlayerError("Open an image first.")
        pixels.check_colour_space(document)
        node = document.activeNode()
        source = node.parentNode() if node is not None and node.type().endswith("mask") else node
        if source is None or source.type() != "paintlayer":
            raise InlayerError("Live watches a paint layer: select the one you paint on.")
        if is_live_preview(document, source):
            raise InlayerError("That is the live preview: select the layer you paint on.")
        session = LiveSession(document, source, self.request_options, api.default_client())
        session.updated.connect(lambda: self.apply_button.setEnabled(True))
        session.message.connect(self._host.show_message)
        session.ended.connect(self._on_ended)
        return session

    def _stop(self) -> None:
        if self.session is not None:
            self.session.stop()
            self.session = None
        self.apply_button.setEnabled(False)

    def _on_ended(self, why: str) -> None:
        self.session = None
        self.live_check.blockSignals(True)
        self.live_check.setChecked(False)
        self.live_check.blockSignals(False)
        self.apply_button.setEnabled(False)
        self._host.show_message(why)

    def apply(self) -> None:
        if self.session is None:
            return
        try:
            layers = self.session.apply()
        except InlayerError as error:
            self._host.show_message(str(error))
            return
        self.apply_button.setEnabled(False)
        self._host.show_message(f"Added {len(layers)} layer(s) from the live preview.")
