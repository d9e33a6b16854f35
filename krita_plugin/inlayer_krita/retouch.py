"""Retouch in Krita: upscale a layer into a new document, restore a photograph into a new layer,
and select a layer's subject.

- Upscale (×2, ×4) reads the active layer, or the rectangle around the selection, and opens the
  result as a NEW document of the new size; the source document is not touched. The upscaler
  is one the server lists (Lanczos without a model); a refine repaints it at the docker's
  prompt.
- Restore runs the server's face restorer, denoise and colorize models (each optional) and adds
  the result as a layer above the source, masked to the selection when there is one. Where
  nothing was done (only faces asked for, none found) the server's hint is the answer, and no
  layer is added.
- Select subject makes the subject's mask the document's selection; no layer changes.

The functions here run a job to its end (as `api` does); `RetouchRow` is the docker's row of
three buttons, whose settings live in `RetouchDialog` and are kept in kritarc between sessions
(`docker_settings.RetouchSettings`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from krita import Document, Krita, Node, Selection

from . import document as pixels
from . import edits
from .api import default_client, wait
from .docker_settings import (
    GROUP,
    LANCZOS,
    RESTORE_FIELDS,
    RETOUCH_KEYS,
    RETOUCH_PREFIX,
    RetouchSettings,
)
from .history import session_history
from .inlayer_client.base import Client
from .inlayer_client.protocol import AddOnInfo, AddOnKind, EditResult, InlayerError, Mode
from .jobs import Job, job_queue
from .qt import QtWidgets

REFINE_STRENGTH = "0.3"  # an upscale's refine: repaints detail, keeps the picture
NO_MODEL = ("None", "")


def _finished(job: Job) -> EditResult:
    if job.error is not None:
        raise job.error
    if job.result is None:
        raise InlayerError("The job ended without a result.")
    return job.result


# --- what each action does with its result ------------------------------------------------------


def open_upscaled(edit: edits.Edit, result: EditResult) -> Document:
    """A new document holding the upscaled picture, shown in a view; the source untouched.

    Krita makes a new document with one layer (its background): the picture goes into that
    layer, so the document holds the picture alone, its transparency kept."""
    source = edit.document
    (image,) = result.images
    model, depth, profile = pixels.colour_space(source)
    name = f"{source.name() or 'Image'} ×{edit.request.scale}"
    width, height = result.canvas_width, result.canvas_height
    upscaled = Krita.instance().createDocument(
        width, height, name, model, depth, profile, source.resolution()
    )
    if upscaled is None:
        raise InlayerError(f"Krita cannot create a {width}x{height} {model} {depth} image")
    (layer,) = upscaled.topLevelNodes()
    layer.setName(result.layer_name(image))
    picture = pixels.from_rgba8(upscaled, image.image)
    layer.setPixelData(picture, image.x, image.y, image.image.width, image.image.height)
    upscaled.refreshProjection()
    session_history.record(upscaled, layer, result, image, (image.x, image.y))
    window = Krita.instance().activeWindow()
    if window is not None:
        window.addView(upscaled)
    return upscaled


def select_result(edit: edits.Edit, result: EditResult) -> Selection | None:
    """The subject's mask (the result's alpha) as the document's selection; None, and the
    selection as it was, when no subject was found."""
    if not result.images:
        return None
    (image,) = result.images
    x, y = edit.origin[0] + image.x, edit.origin[1] + image.y
    selection = Selection()
    selection.setPixelData(image.image.data[3::4], x, y, image.image.width, image.image.height)
    edit.document.setSelection(selection)
    return selection


# --- scripting entry points ---------------------------------------------------------------------


def _run(edit: edits.Edit, client: Client) -> EditResult:
    job = job_queue.submit(edit, client)
    wait(job)
    return _finished(job)


def _client(client: Client | None) -> Client:
    return client or default_client()


def upscale(
    document: Document,
    scale: int = 2,
    upscaler: str = LANCZOS,
    prompt: str = "",
    *,
    refine: bool = False,
    node: Node | None = None,
    client: Client | None = None,
    **options: Any,
) -> Document:
    """Upscale the layer (or the selection's rectangle) by `scale` into a new document; with
    `refine`, repaint it at `prompt` on the model. Returns the new document."""
    edit = prepare_upscale(document, scale, upscaler, prompt, refine=refine, node=node, **options)
    return open_upscaled(edit, _run(edit, _client(client)))


def restore(
    document: Document,
    *,
    node: Node | None = None,
    client: Client | None = None,
    **options: Any,
) -> tuple[list[Node], str]:
    """Restore the layer (or the selected part): `restore_faces`, `denoise`, `colorize` name
    the models. Returns the new layers (none where nothing was done) and the server's note."""
    edit = prepare_restore(document, node=node, **options)
    result = _run(edit, _client(client))
    return edits.apply(edit, result), result.hint


def prepare_restore(document: Document, *, node: Node | None = None, **options: Any) -> edits.Edit:
    """The Restore edit of the layer; colorize is refused in a greyscale image."""
    if options.get("colorize") and document.colorModel() == "GRAYA":
        # Krita would show the coloured layer through the grey image: converting the image
        # here would be an undo step apart from the layer's (no undo grouping in Krita's API).
        raise pixels.UnsupportedDocument(
            "Colorize paints colours, and this image is greyscale: convert it with Image > "
            "Convert Image Color Space (RGB/Alpha) and run Restore again."
        )
    return edits.prepare(document, Mode.RESTORE, node=node, **options)


def select_subject(
    document: Document, *, node: Node | None = None, client: Client | None = None
) -> Selection | None:
    """Select the layer's subject (under the selection, when there is one); None when none was
    found, the selection unchanged."""
    edit = edits.prepare(document, Mode.SELECT, node=node)
    return select_result(edit, _run(edit, _client(client)))


def prepare_upscale(
    document: Document,
    scale: int,
    upscaler: str,
    prompt: str,
    *,
    refine: bool,
    node: Node | None = None,
    **options: Any,
) -> edits.Edit:
    return edits.prepare(
        document,
        Mode.UPSCALE,
        prompt,
        node=node,
        scale=scale,
        upscaler=upscaler,
        refine=REFINE_STRENGTH if refine else "auto",
        **options,
    )


# --- the docker's row and its dialog ------------------------------------------------------------


def _fill_box(box: QtWidgets.QComboBox, items: list[tuple[str, str]], chosen: str) -> None:
    box.clear()
    for text, data in items:
        box.addItem(text, data)
    box.setCurrentIndex(max(0, box.findData(chosen)))


class RetouchDialog(QtWidgets.QDialog):
    """The settings of Upscale and Restore, from the lists the server has."""

    def __init__(
        self,
        settings: RetouchSettings,
        upscalers: list[str],
        image_models: dict[str, list[str]],
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Inlayer retouch")
        layout = QtWidgets.QVBoxLayout(self)
        form = QtWidgets.QFormLayout()
        self.upscaler_box = QtWidgets.QComboBox()
        upscaler_items = [(f"{LANCZOS} (no model)", LANCZOS), *((n, n) for n in upscalers)]
        _fill_box(self.upscaler_box, upscaler_items, settings.upscaler)
        form.addRow("Upscaler", self.upscaler_box)
        self.refine_check = QtWidgets.QCheckBox("Refine with the prompt")
        self.refine_check.setToolTip(
            f"Repaint the upscaled picture at {float(REFINE_STRENGTH):.0%} with the docker's "
            "prompt and model (slower; without it the upscaler alone)"
        )
        self.refine_check.setChecked(settings.refine)
        form.addRow("", self.refine_check)
        self.restore_boxes: dict[str, QtWidgets.QComboBox] = {}
        for name, label in RESTORE_FIELDS:
            box = QtWidgets.QComboBox()
            names = image_models.get(name, [])
            _fill_box(box, [NO_MODEL, *((n, n) for n in names)], getattr(settings, name))
            form.addRow(f"Restore: {label}", box)
            self.restore_boxes[name] = box
        layout.addLayout(form)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def settings(self) -> RetouchSettings:
        return RetouchSettings(
            upscaler=self.upscaler_box.currentData() or LANCZOS,
            refine=self.refine_check.isChecked(),
            **{name: box.currentData() or "" for name, box in self.restore_boxes.items()},
        )


class RetouchRow(QtWidgets.QWidget):
    """One row of the docker: Upscale ▾ (×2, ×4), Restore, Select subject, and Retouch…
    (the dialog). `docker` gives the prompt, the model and the messages."""

    def __init__(self, docker: Any) -> None:
        super().__init__()
        self._docker = docker
        krita = Krita.instance()
        stored = {key: krita.readSetting(GROUP, RETOUCH_PREFIX + key, "") for key in RETOUCH_KEYS}
        self.settings = RetouchSettings.from_stored(stored)
        self._upscalers: list[str] = []
        self._image_models: dict[str, list[str]] = {}
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.upscale_button = QtWidgets.QToolButton()
        self.upscale_button.setText("Upscale ▾")
        self.upscale_button.setToolTip(
            "Upscale the active layer (or the selection's rectangle) into a new document"
        )
        self.upscale_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QtWidgets.QMenu(self.upscale_button)
        for scale in (2, 4):
            action = menu.addAction(f"×{scale}")
            action.triggered.connect(lambda _checked=False, scale=scale: self.start_upscale(scale))
        self.upscale_button.setMenu(menu)
        self.restore_button = QtWidgets.QPushButton("Restore")
        self.restore_button.setToolTip(
            "Restore a photograph (faces, denoise, colorize: Retouch… picks the models) into a "
            "new layer above it, masked to the selection"
        )
        self.restore_button.clicked.connect(self.start_restore)
        self.select_button = QtWidgets.QPushButton("Select subject")
        self.select_button.setToolTip(
            "Select the layer's subject (under the selection, when there is one); no layer changes"
        )
        self.select_button.clicked.connect(self.start_select)
        self.settings_button = QtWidgets.QToolButton()
        self.settings_button.setText("Retouch…")
        self.settings_button.setToolTip("The upscaler, the refine, and Restore's models")
        self.settings_button.clicked.connect(self.edit_settings)
        for widget in (self.upscale_button, self.restore_button, self.select_button):
            row.addWidget(widget)
        row.addWidget(self.settings_button)

    def fill(self, add_ons: list[AddOnInfo], image_models: dict[str, list[str]]) -> None:
        """The server's lists, as the docker's connection check found them: what the kept
        settings name and the server no longer lists is left out. Until the user chooses,
        Restore restores faces with the first face restorer listed."""
        self._upscalers = [a.name for a in add_ons if a.kind == AddOnKind.UPSCALER]
        self._image_models = image_models
        self.settings = self.settings.listed_by(self._upscalers, image_models)
        faces = image_models.get("restore_faces", [])
        if not self.settings.chosen and faces:
            self.settings = replace(self.settings, restore_faces=faces[0])

    def dialog(self) -> RetouchDialog:
        return RetouchDialog(self.settings, self._upscalers, self._image_models, self)

    def edit_settings(self) -> None:
        dialog = self.dialog()
        if dialog.exec():
            self.keep(dialog.settings())

    def keep(self, settings: RetouchSettings) -> None:
        """The user's choice, for this session and the next ones."""
        self.settings = replace(settings, chosen=True)
        krita = Krita.instance()
        for key, text in self.settings.to_stored().items():
            krita.writeSetting(GROUP, RETOUCH_PREFIX + key, text)

    # --- the three actions ------------------------------------------------------------------

    def start_upscale(self, scale: int) -> Job | None:
        docker = self._docker
        options = {"model": docker.chosen_model()} if self.settings.refine else {}
        return self._start(
            lambda document: prepare_upscale(
                document,
                scale,
                self.settings.upscaler,
                docker.prompt_edit.toPlainText().strip(),
                refine=self.settings.refine,
                **options,
            ),
            self._on_upscaled,
        )

    def start_restore(self) -> Job | None:
        options = {k: v for k, v in self.settings.restore_options().items() if v}
        if not options:
            self._docker.show_message(
                "Restore has nothing to do: pick a face restorer, denoise or colorize model "
                "under Retouch… (the server lists those it has)."
            )
            return None
        return self._start(lambda document: prepare_restore(document, **options), self._on_restored)

    def start_select(self) -> Job | None:
        return self._start(lambda document: edits.prepare(document, Mode.SELECT), self._on_selected)

    def _start(
        self,
        prepare: Callable[[Document], edits.Edit],
        on_result: Callable[[edits.Edit, EditResult], str],
    ) -> Job | None:
        docker = self._docker
        document = Krita.instance().activeDocument()
        if document is None:
            docker.show_message("Open an image first.")
            return None
        try:
            job = job_queue.submit(prepare(document), default_client())
        except InlayerError as error:
            docker.show_message(str(error))
            return None
        job.finished.connect(lambda: self._on_finished(job, on_result))
        docker.show_message("")
        return job

    def _on_finished(self, job: Job, on_result: Callable[[edits.Edit, EditResult], str]) -> None:
        try:
            message = on_result(job.edit, _finished(job))
        except InlayerError as error:
            message = str(error)
        self._docker.show_message(message)

    def _on_upscaled(self, edit: edits.Edit, result: EditResult) -> str:
        upscaled = open_upscaled(edit, result)
        return f"Opened {upscaled.name()}: {upscaled.width()}x{upscaled.height()} px."

    def _on_restored(self, edit: edits.Edit, result: EditResult) -> str:
        layers = edits.apply(edit, result)
        if not layers:
            return f"Nothing restored: {result.hint}" if result.hint else "Nothing restored."
        return f"Added {len(layers)} layer(s) to {edit.document.name()}: {result.hint}"

    def _on_selected(self, edit: edits.Edit, result: EditResult) -> str:
        if select_result(edit, result) is None:
            return result.hint or "No subject found."
        return result.hint
