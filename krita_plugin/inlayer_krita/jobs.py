"""Jobs run off Krita's GUI thread, one after another, in a small queue.

The client's calls block (HTTP to the server, or the engine itself in-process), so each job runs
in a `QThread`; Qt delivers its progress and result back to the GUI thread as queued signals.
Nothing here touches Krita's documents: the GUI thread applies results (`edits.apply`).
"""

from __future__ import annotations

import threading

from .edits import Edit
from .inlayer_client.base import Client
from .inlayer_client.protocol import (
    Cancelled,
    EditRequest,
    EditResult,
    InlayerError,
    JobState,
    Progress,
    RGBAImage,
    ServerBusy,
)
from .qt import QtCore, Signal

MAX_WAITING = 8  # jobs waiting behind the running one
_FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class _Worker(QtCore.QThread):
    progressed = Signal(object)  # Progress
    completed = Signal(object, object)  # EditResult or None, InlayerError or None

    def __init__(self, client: Client, request: EditRequest, cancel: threading.Event) -> None:
        super().__init__()
        self._client = client
        self._request = request
        self._cancel = cancel

    def run(self) -> None:
        try:
            result = self._client.run(self._request, self.progressed.emit, self._cancel)
        except InlayerError as error:
            self.completed.emit(None, error)
        except Exception as error:  # a bug must reach the user, not kill the thread silently
            self.completed.emit(None, InlayerError(f"Unexpected error: {error!r}"))
        else:
            self.completed.emit(result, None)


class Job(QtCore.QObject):
    """One edit on its way through the queue."""

    changed = Signal()  # state, progress or preview changed
    finished = Signal()  # done, failed or cancelled: `result` or `error` is set

    def __init__(self, edit: Edit, client: Client) -> None:
        super().__init__()
        self.edit = edit
        self.client = client
        self.state = JobState.QUEUED
        self.step = 0
        # Until the server reports progress: unknown (0) when the request leaves the steps to
        # the model's preset, or runs none (fill).
        self.total = (edit.request.steps or 0) * edit.request.count
        self.preview: RGBAImage | None = None
        self.result: EditResult | None = None
        self.error: InlayerError | None = None
        self._cancel = threading.Event()
        self._worker: _Worker | None = None

    @property
    def is_finished(self) -> bool:
        return self.state in _FINISHED

    def cancel(self) -> None:
        """Stop the job: at once while queued, after the server's current step while running."""
        if self.state == JobState.QUEUED:
            self._finish(JobState.CANCELLED, error=Cancelled("Cancelled before it started."))
        elif self.state == JobState.RUNNING:
            self._cancel.set()

    def start(self) -> None:
        self.state = JobState.RUNNING
        self._worker = _Worker(self.client, self.edit.request, self._cancel)
        self._worker.progressed.connect(self._on_progress)
        self._worker.completed.connect(self._on_completed)
        self._worker.start()
        self.changed.emit()

    def _on_progress(self, progress: Progress) -> None:
        self.step, self.total = progress.step, progress.total
        if progress.preview is not None:
            self.preview = progress.preview
        self.changed.emit()

    def _on_completed(self, result: EditResult | None, error: InlayerError | None) -> None:
        if self._worker is not None:
            self._worker.wait()
            self._worker = None
        if error is None:
            self._finish(JobState.DONE, result=result)
        elif isinstance(error, Cancelled):
            self._finish(JobState.CANCELLED, error=error)
        else:
            self._finish(JobState.FAILED, error=error)

    def _finish(
        self,
        state: JobState,
        *,
        result: EditResult | None = None,
        error: InlayerError | None = None,
    ) -> None:
        self.state, self.result, self.error = state, result, error
        self.changed.emit()
        self.finished.emit()


class JobQueue(QtCore.QObject):
    """Runs submitted jobs one at a time, in order."""

    job_added = Signal(object)  # Job

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[Job] = []  # unfinished jobs, the running one first

    @property
    def running(self) -> Job | None:
        return next((job for job in self.jobs if job.state == JobState.RUNNING), None)

    def submit(self, edit: Edit, client: Client) -> Job:
        if len(self.jobs) > MAX_WAITING:
            raise ServerBusy(f"{len(self.jobs)} jobs are queued already: wait for one to finish.")
        job = Job(edit, client)
        job.finished.connect(lambda: self._on_finished(job))
        self.jobs.append(job)
        self.job_added.emit(job)
        self._start_next()
        return job

    def _on_finished(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        self._start_next()

    def _start_next(self) -> None:
        if self.running is None and self.jobs:
            self.jobs[0].start()


job_queue = JobQueue()
