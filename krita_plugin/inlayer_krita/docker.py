"""The Inlayer docker: prompt and settings, the job queue with progress and live preview,
variations to pick from, and the session's history.

Widgets only: reading documents and adding layers is `edits`, running jobs is `jobs`. Calls that
wait on the server (health, model list) run in a `_Call` thread, never on Krita's GUI thread.
The prompt and settings are kept in Krita's settings as they change, and come back in the next
session (read through `docker_settings`, whatever the settings file holds).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from krita import DockWidget, Krita

from . import api, edits, live
from .add_on_pickers import AddOnPickers
from .docker_settings import GROUP, KEYS, MAX_SEED, PRESET_STEPS, DockerSettings
from .guides import GuidesBox
from .history import HistoryEntry, session_history
from .inlayer_client.protocol import (
    MAX_COUNT,
    MAX_STEPS,
    InlayerError,
    JobState,
    Mode,
    RGBAImage,
    default_strength,
)
from .jobs import Job, job_queue
from .qt import QtCore, QtGui, QtWidgets, Signal
from .retouch import RetouchRow
from .server_settings import ServerSettingsDialog

DOCKER_ID = "inlayer_docker"
HEALTH_INTERVAL_MS = 10_000
PREVIEW_SIDE = 256
THUMBNAIL_SIDE = 96

# The mode behind each button and action.
KINDS = {
    "inpaint": Mode.INPAINT,
    "transform": Mode.IMG2IMG,
    "generate": Mode.TXT2IMG,
    "remove": Mode.REMOVE,
    "instruct": Mode.EDIT,
}
# The modes a control layer guides (a ControlNet runs with txt2img, img2img and inpaint).
CONTROLLED_MODES = (Mode.INPAINT, Mode.IMG2IMG, Mode.TXT2IMG)
# The buttons whose strength the user sets, each its own (Generate starts from noise).
STRENGTH_KINDS = ("inpaint", "transform")
BUTTON_TEXT = {
    "inpaint": "Inpaint",
    "transform": "Transform",
    "generate": "Generate",
    "remove": "Remove",
    "instruct": "Instruct",
}
# The preset box: what it shows, and the request's `preset` for it.
PRESET_CHOICES = (
    ("For this device", ""),
    ("Fast", "fast"),
    ("Quality", "quality"),
)
# What a person with a running server but no model needs to do first.
NO_MODEL_STEP = (
    "No model installed yet: run `inlayer models pull sd15-inpainting`, then press ↻. "
    "(Fill works without one.)"
)


def to_qimage(image: RGBAImage) -> QtGui.QImage:
    qimage = QtGui.QImage(
        image.data, image.width, image.height, image.width * 4, QtGui.QImage.Format.Format_RGBA8888
    )
    return qimage.copy()  # owns its pixels: `image.data` may go away


class _Call(QtCore.QThread):
    """Run one blocking function off the GUI thread; report its value or error."""

    done = Signal(object, object)  # value, InlayerError or None

    def __init__(self, function: Callable[[], Any]) -> None:
        super().__init__()
        self._function = function

    def run(self) -> None:
        try:
            self.done.emit(self._function(), None)
        except InlayerError as error:
            self.done.emit(None, error)
        except Exception as error:
            self.done.emit(None, InlayerError(f"Unexpected error: {error!r}"))


class InlayerDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Inlayer")
        self._calls: list[_Call] = []
        self._variations: tuple[edits.Edit, Any] | None = None  # (edit, EditResult)
        # The model the last session used, until the server's list shows whether it still exists.
        self._restored_model: str | None = None
        self._server_has_models: bool | None = None  # None: not known yet
        self._build()
        self._restore_settings()
        self._save_on_change()  # only now: restoring field by field would save half-restored
        job_queue.job_added.connect(self._on_job_added)
        session_history.added.connect(self._on_history_added)
        self._health_timer = QtCore.QTimer(self)
        self._health_timer.timeout.connect(self.refresh_connection)
        self._health_timer.start(HEALTH_INTERVAL_MS)
        QtCore.QTimer.singleShot(0, self.refresh_connection)

    # --- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        root = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(root)

        status_row = QtWidgets.QHBoxLayout()
        self.status_label = QtWidgets.QLabel("Connecting…")
        self.status_label.setWordWrap(True)
        refresh = QtWidgets.QToolButton()
        refresh.setText("↻")
        refresh.setToolTip("Check the connection and reload the model list")
        refresh.clicked.connect(self.refresh_connection)
        server = QtWidgets.QToolButton()
        server.setText("Server…")
        server.setToolTip("Use a server on another machine: its URL and your token")
        server.clicked.connect(self.edit_server)
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(server)
        status_row.addWidget(refresh)
        layout.addLayout(status_row)

        form = QtWidgets.QFormLayout()
        self.model_box = QtWidgets.QComboBox()
        self.model_box.addItem("Default for the mode", "")
        form.addRow("Model", self.model_box)
        self.add_ons = AddOnPickers()  # the LoRA and autoencoder lists
        form.addRow("LoRA", self.add_ons.lora_box)
        form.addRow("Autoencoder", self.add_ons.vae_box)
        self.prompt_edit = QtWidgets.QPlainTextEdit()
        self.prompt_edit.setPlaceholderText("What to paint")
        self.prompt_edit.setMaximumHeight(70)
        form.addRow("Prompt", self.prompt_edit)
        self.negative_edit = QtWidgets.QLineEdit()
        self.negative_edit.setPlaceholderText("What to avoid")
        form.addRow("Negative", self.negative_edit)

        # One strength per button that uses one, labelled by the button: the slider a person
        # moves is the one the next press of that button uses (its text shows the value too).
        self.strength_sliders: dict[str, QtWidgets.QSlider] = {}
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        for kind in STRENGTH_KINDS:
            row = QtWidgets.QHBoxLayout()
            slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
            slider.setRange(1, 100)
            slider.setToolTip(
                f"What {BUTTON_TEXT[kind]} changes: 100 % repaints from noise, lower keeps more"
            )
            value_label = QtWidgets.QLabel()
            slider.valueChanged.connect(
                lambda value, kind=kind, label=value_label: self._show_strength(kind, label, value)
            )
            row.addWidget(slider, 1)
            row.addWidget(value_label)
            form.addRow(f"{BUTTON_TEXT[kind]} strength", row)
            self.strength_sliders[kind] = slider

        self.preset_box = QtWidgets.QComboBox()
        for text, preset in PRESET_CHOICES:
            self.preset_box.addItem(text, preset)
        self.preset_box.setToolTip(
            "Fast: few steps with a speed LoRA, seconds on a CPU. Quality: 20 steps with "
            "guidance. For this device: fast on a CPU where its pieces are installed."
        )
        form.addRow("Preset", self.preset_box)
        self.steps_spin = QtWidgets.QSpinBox()
        self.steps_spin.setRange(PRESET_STEPS, MAX_STEPS)
        self.steps_spin.setSpecialValueText("Preset's")  # shown at PRESET_STEPS
        self.steps_spin.setToolTip("Denoising steps; the lowest value leaves them to the preset")
        form.addRow("Steps", self.steps_spin)
        seed_row = QtWidgets.QHBoxLayout()
        self.seed_spin = QtWidgets.QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setValue(random.randint(0, MAX_SEED))
        self.seed_lock = QtWidgets.QCheckBox("Lock")
        self.seed_lock.setToolTip("Keep this seed; unlocked, every job draws a new one")
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.seed_lock)
        form.addRow("Seed", seed_row)
        self.count_spin = QtWidgets.QSpinBox()
        self.count_spin.setRange(1, MAX_COUNT)
        form.addRow("Variations", self.count_spin)
        self.source_box = QtWidgets.QComboBox()
        self.source_box.addItem("Active layer", False)
        self.source_box.addItem("Visible image", True)
        form.addRow("Read", self.source_box)
        layout.addLayout(form)
        self.guides = GuidesBox()  # control and style layers
        layout.addWidget(self.guides)

        buttons = QtWidgets.QHBoxLayout()
        for kind, tip in (
            ("inpaint", "Repaint the selection, by Inpaint strength"),
            ("transform", "Transform the layer or its selected part, by Transform strength"),
            ("generate", "Generate into the selection, or the whole image, from noise"),
            ("remove", "Remove what the selection covers, filled from its surroundings; no prompt"),
            (
                "instruct",
                "Change the layer or its selected part as the prompt says (“make it night”), "
                "on an instruction-edit model",
            ),
        ):
            button = QtWidgets.QPushButton(BUTTON_TEXT[kind])
            button.setToolTip(tip)
            button.clicked.connect(lambda _checked=False, kind=kind: self.start(kind))
            buttons.addWidget(button)
            self.buttons[kind] = button
        for kind, slider in self.strength_sliders.items():
            slider.setValue(round(default_strength(KINDS[kind]) * 100))
        layout.addLayout(buttons)
        self.retouch = RetouchRow(self)  # Upscale ▾, Restore, Select subject, Retouch…
        layout.addWidget(self.retouch)
        self.live = live.LiveControls(self)  # the Live switch, its strength and Apply
        layout.addWidget(self.live)

        progress_row = QtWidgets.QHBoxLayout()
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_running)
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        self.message_label = QtWidgets.QLabel()
        self.message_label.setWordWrap(True)
        layout.addWidget(self.message_label)
        self.preview_label = QtWidgets.QLabel()
        self.preview_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.preview_label)

        tabs = QtWidgets.QTabWidget()
        self.queue_list = QtWidgets.QListWidget()
        self.queue_list.setToolTip("Waiting and running jobs; double-click one to cancel it")
        self.queue_list.itemActivated.connect(self._cancel_item)
        tabs.addTab(self.queue_list, "Queue")
        variations = QtWidgets.QWidget()
        variations_layout = QtWidgets.QVBoxLayout(variations)
        self.variation_list = QtWidgets.QListWidget()
        self.variation_list.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.variation_list.setIconSize(QtCore.QSize(THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        self.variation_list.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.variation_list.itemDoubleClicked.connect(lambda _item: self.apply_variations())
        apply_button = QtWidgets.QPushButton("Apply selected as layers")
        apply_button.clicked.connect(self.apply_variations)
        variations_layout.addWidget(self.variation_list)
        variations_layout.addWidget(apply_button)
        tabs.addTab(variations, "Variations")
        self.history_list = QtWidgets.QListWidget()
        self.history_list.setToolTip("Double-click to reuse an entry's prompt and seed")
        self.history_list.itemDoubleClicked.connect(self._reuse_history)
        tabs.addTab(self.history_list, "History")
        layout.addWidget(tabs, 1)
        # In a scroll area, so that the docker fits a laptop's screen: without one its least
        # height is all its rows, and a message line more made Krita's window taller than the
        # screen.
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(root)
        self.setWidget(scroll)

    def _show_strength(self, kind: str, label: QtWidgets.QLabel, percent: int) -> None:
        label.setText(f"{percent} %")
        self.buttons[kind].setText(f"{BUTTON_TEXT[kind]} {percent} %")

    def strength_of(self, kind: str) -> float:
        """The strength the button `kind` uses (1 for Generate, which starts from noise)."""
        slider = self.strength_sliders.get(kind)
        return 1.0 if slider is None else slider.value() / 100

    def canvasChanged(self, canvas: object) -> None:
        """Jobs keep their own document; the guide pickers list the active one's layers."""
        self.guides.refresh(Krita.instance().activeDocument())

    # --- connection -----------------------------------------------------------------------------

    def _call(self, function: Callable[[], Any], on_done: Callable[[Any, Any], None]) -> None:
        call = _Call(function)
        call.done.connect(on_done)
        call.finished.connect(lambda: self._calls.remove(call))
        self._calls.append(call)
        call.start()

    def edit_server(self) -> None:
        if ServerSettingsDialog(self).exec():
            api.forget_client()  # the next call connects to the server just chosen
            self.refresh_connection()

    def refresh_connection(self) -> None:
        if any(call.isRunning() for call in self._calls):
            return  # the previous check is still waiting on the server

        def check() -> tuple[Any, Any]:
            client = api.default_client()
            return client.health(), client.models(), client.add_ons(), client.image_models()

        self._call(check, self._on_connection)
        self.guides.refresh(Krita.instance().activeDocument())  # layers come and go

    def _on_connection(self, value: Any, error: InlayerError | None) -> None:
        if error is not None:
            self.status_label.setText(f"⚠ Not connected: {error}")
            return
        health, models, add_ons, image_models = value
        self._server_has_models = bool(models)
        self.add_ons.fill(add_ons)
        self.retouch.fill(add_ons, image_models)
        self.status_label.setText(f"● Connected: {health.device}, {health.queue_length} queued")
        if not models:
            self.status_label.setText(f"● Connected: {health.device}. {NO_MODEL_STEP}")
        chosen = self.chosen_model()
        names = [model.name for model in models]
        if names != [self.model_box.itemData(i) for i in range(1, self.model_box.count())]:
            self.model_box.blockSignals(True)  # filling the list is no pick of the user's
            while self.model_box.count() > 1:
                self.model_box.removeItem(1)
            for model in models:
                self.model_box.addItem(f"{model.name} ({model.family})", model.name)
            self.model_box.setCurrentIndex(max(0, self.model_box.findData(chosen)))
            self.model_box.blockSignals(False)
        if self._restored_model is not None:
            self._restored_model = None
            if chosen and chosen not in names:
                self.show_message(
                    f"The model {chosen!r} used last time is not on the server any more: "
                    "Inlayer uses the default for each mode. Pick another under Model."
                )
            self._save_settings()

    def chosen_model(self) -> str:
        """The model to ask for ("" for the default): the one picked in the list, or, until the
        server's list has arrived, the one the last session used."""
        if self._restored_model is not None:
            return self._restored_model
        return self.model_box.currentData() or ""

    # --- settings kept between sessions ---------------------------------------------------------

    def settings(self) -> DockerSettings:
        return DockerSettings(
            prompt=self.prompt_edit.toPlainText(),
            negative_prompt=self.negative_edit.text(),
            inpaint_strength_percent=self.strength_sliders["inpaint"].value(),
            transform_strength_percent=self.strength_sliders["transform"].value(),
            preset=self.preset_box.currentData(),
            steps=self.steps_spin.value(),
            seed=self.seed_spin.value(),
            seed_locked=self.seed_lock.isChecked(),
            count=self.count_spin.value(),
            model=self.chosen_model(),
            read_visible=bool(self.source_box.currentData()),
            lora=self.add_ons.lora(),
            vae=self.add_ons.vae(),
        )

    def _restore_settings(self) -> None:
        krita = Krita.instance()
        stored = {key: krita.readSetting(GROUP, key, "") for key in KEYS}
        settings = DockerSettings.from_stored(stored)
        self.prompt_edit.setPlainText(settings.prompt)
        self.negative_edit.setText(settings.negative_prompt)
        self.strength_sliders["inpaint"].setValue(settings.inpaint_strength_percent)
        self.strength_sliders["transform"].setValue(settings.transform_strength_percent)
        self.preset_box.setCurrentIndex(self.preset_box.findData(settings.preset))
        self.steps_spin.setValue(settings.steps)
        if settings.seed is not None:
            self.seed_spin.setValue(settings.seed)
        self.seed_lock.setChecked(settings.seed_locked)
        self.count_spin.setValue(settings.count)
        self.source_box.setCurrentIndex(self.source_box.findData(settings.read_visible))
        self._restored_model = settings.model
        self.add_ons.restore(settings.lora, settings.vae)

    def _save_on_change(self) -> None:
        for changed in (
            self.prompt_edit.textChanged,
            self.negative_edit.textChanged,
            *(slider.valueChanged for slider in self.strength_sliders.values()),
            self.preset_box.currentIndexChanged,
            self.steps_spin.valueChanged,
            self.seed_spin.valueChanged,
            self.seed_lock.toggled,
            self.count_spin.valueChanged,
            self.source_box.currentIndexChanged,
            *self.add_ons.changed_signals(),
        ):
            changed.connect(lambda *_value: self._save_settings())
        self.model_box.currentIndexChanged.connect(lambda _index: self._on_model_picked())

    def _on_model_picked(self) -> None:
        self._restored_model = None  # the user's pick replaces the last session's
        self._save_settings()

    def _save_settings(self) -> None:
        krita = Krita.instance()
        for key, text in self.settings().to_stored().items():
            krita.writeSetting(GROUP, key, text)

    # --- starting and following jobs ------------------------------------------------------------

    def options(self, kind: str) -> dict[str, Any]:
        """The request options the docker's fields say for the button `kind` (draws a new seed
        unless it is locked)."""
        if not self.seed_lock.isChecked():
            self.seed_spin.setValue(random.randint(0, MAX_SEED))
        steps = self.steps_spin.value()
        return {
            "negative_prompt": self.negative_edit.text(),
            "strength": self.strength_of(kind),
            "preset": self.preset_box.currentData(),
            "steps": None if steps == PRESET_STEPS else steps,  # None: the preset's
            "seed": self.seed_spin.value(),
            "count": self.count_spin.value(),
            "model": self.chosen_model(),
            "preview_interval": 1,
            **self.add_ons.request_options(),
        }

    def start(self, kind: str) -> Job | None:
        """Queue an edit of the active document; show why when it cannot start."""
        document = Krita.instance().activeDocument()
        if document is None:
            self.show_message("Open an image first.")
            return None
        if self._server_has_models is False:  # the next step, not the server's error
            self.show_message(NO_MODEL_STEP)
            return None
        try:
            client = api.default_client()
            mode = KINDS[kind]
            # The picked guides go with the buttons that take them, as GIMP's procedures have
            # them: a control layer with Inpaint, Transform and Generate, a style with those and
            # Instruct; Remove paints no picture of its own.
            control = self.guides.control() if mode in CONTROLLED_MODES else None
            style = self.guides.style() if mode in (*CONTROLLED_MODES, Mode.EDIT) else None
            guides = api.guides_reader(document, control, style, client)
            edit = edits.prepare(
                document,
                mode,
                self.prompt_edit.toPlainText().strip(),
                visible=bool(self.source_box.currentData()),
                guides=guides,
                **self.options(kind),
            )
            job = job_queue.submit(edit, client)
        except InlayerError as error:
            self.show_message(str(error))
            return None
        job.finished.connect(lambda: self._on_own_job_finished(job))
        self.show_message("")
        return job

    def show_message(self, text: str) -> None:
        self.message_label.setText(text)

    def cancel_running(self) -> None:
        if job_queue.running is not None:
            job_queue.running.cancel()

    def _cancel_item(self, item: QtWidgets.QListWidgetItem) -> None:
        job = item.data(QtCore.Qt.ItemDataRole.UserRole)
        if job is not None:
            job.cancel()

    def _on_job_added(self, job: Job) -> None:
        item = QtWidgets.QListWidgetItem(job.edit.label)
        item.setData(QtCore.Qt.ItemDataRole.UserRole, job)
        self.queue_list.addItem(item)
        job.changed.connect(lambda: self._on_job_changed(job, item))
        job.finished.connect(lambda: self._on_job_finished(job, item))
        self._on_job_changed(job, item)

    def _on_job_changed(self, job: Job, item: QtWidgets.QListWidgetItem) -> None:
        item.setText(f"{job.edit.label} — {job.state.value}")
        if job.state != JobState.RUNNING:
            return
        self.cancel_button.setEnabled(True)
        self.progress_bar.setRange(0, max(job.total, 1))
        self.progress_bar.setValue(job.step)
        if job.preview is not None:
            pixmap = QtGui.QPixmap.fromImage(to_qimage(job.preview))
            self.preview_label.setPixmap(
                pixmap.scaled(
                    PREVIEW_SIDE,
                    PREVIEW_SIDE,
                    QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                    QtCore.Qt.TransformationMode.SmoothTransformation,
                )
            )

    def _on_job_finished(self, job: Job, item: QtWidgets.QListWidgetItem) -> None:
        self.queue_list.takeItem(self.queue_list.row(item))
        self.cancel_button.setEnabled(job_queue.running is not None)
        self.progress_bar.setValue(self.progress_bar.maximum() if job.result else 0)
        self.preview_label.clear()

    def _on_own_job_finished(self, job: Job) -> None:
        """Results of jobs this docker started (scripts apply their own): one image becomes a
        layer at once; several wait as thumbnails for the user to pick."""
        if job.error is not None:
            self.show_message(str(job.error))
            return
        if job.result is None:
            return
        if len(job.result.images) == 1:
            self._apply(job.edit, job.result, None)
            return
        self._variations = (job.edit, job.result)
        self.variation_list.clear()
        for image in job.result.images:
            icon = QtGui.QIcon(QtGui.QPixmap.fromImage(to_qimage(image.image)))
            item = QtWidgets.QListWidgetItem(icon, f"seed {image.seed}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, image)
            self.variation_list.addItem(item)
        self.show_message(f"{len(job.result.images)} variations: pick one or more to apply.")

    def apply_variations(self) -> None:
        if self._variations is None:
            return
        edit, result = self._variations
        chosen = [
            item.data(QtCore.Qt.ItemDataRole.UserRole)
            for item in self.variation_list.selectedItems()
        ]
        if chosen:
            self._apply(edit, result, chosen)

    def _apply(self, edit: edits.Edit, result: Any, images: list[Any] | None) -> None:
        try:
            layers = edits.apply(edit, result, images)
        except InlayerError as error:
            self.show_message(str(error))
            return
        self.show_message(f"Added {len(layers)} layer(s) to {edit.document.name()}.")

    # --- history --------------------------------------------------------------------------------

    def _on_history_added(self, entry: HistoryEntry) -> None:
        item = QtWidgets.QListWidgetItem(f"{entry.layer} — {entry.model or 'fill'}")
        item.setToolTip(json.dumps(entry.parameters, indent=1))
        item.setData(QtCore.Qt.ItemDataRole.UserRole, entry)
        self.history_list.insertItem(0, item)

    def _reuse_history(self, item: QtWidgets.QListWidgetItem) -> None:
        entry: HistoryEntry = item.data(QtCore.Qt.ItemDataRole.UserRole)
        self.prompt_edit.setPlainText(entry.prompt)
        self.negative_edit.setText(str(entry.parameters.get("negative_prompt", "")))
        self.seed_spin.setValue(entry.seed)
        self.seed_lock.setChecked(True)
        # The result's parameters hold what the server resolved: the same steps and preset again.
        kind = next(
            (k for k, mode in KINDS.items() if mode.value == entry.parameters.get("mode")), ""
        )
        if kind in self.strength_sliders:
            strength = float(entry.parameters.get("strength", self.strength_of(kind)))
            self.strength_sliders[kind].setValue(round(strength * 100))
        self.steps_spin.setValue(int(entry.parameters.get("steps") or PRESET_STEPS))
        preset_index = self.preset_box.findData(entry.parameters.get("preset", ""))
        self.preset_box.setCurrentIndex(max(preset_index, 0))
