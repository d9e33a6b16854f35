"""What every client offers, whatever carries the jobs: the `Client` interface and its wait loop.

Standard library only. `HttpClient` (http_client.py) talks to a server; `InProcessClient`
(inlayer.core.inprocess) runs the engine in the caller's Python.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time

from .protocol import (
    AddOnInfo,
    Cancelled,
    EditRequest,
    EditResult,
    JobState,
    JobStatus,
    ModelInfo,
    Progress,
    ProgressCallback,
    ServerHealth,
)

CANCEL_CHECK_SECONDS = 0.05  # how soon a cancel asked for goes out while a status question waits


class Client(abc.ABC):
    """Runs edits somewhere: on a server (`HttpClient`) or in this process (`inprocess`)."""

    @abc.abstractmethod
    def health(self) -> ServerHealth: ...

    @abc.abstractmethod
    def models(self) -> list[ModelInfo]: ...

    @abc.abstractmethod
    def add_ons(self) -> list[AddOnInfo]:
        """The LoRAs and tiny autoencoders a request's `loras` and `vae` may name."""

    @abc.abstractmethod
    def image_models(self) -> dict[str, list[str]]:
        """The image models each request field that names one (`remover`, `restore_faces`,
        `denoise`, `colorize`) may take, by field."""

    @abc.abstractmethod
    def submit(self, request: EditRequest) -> str:
        """Queue `request`; return its job id at once."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> None:
        """Ask the job to stop (a running one stops after its current step)."""

    @abc.abstractmethod
    def status(self, job_id: str, preview_after: int = -1, revision: int = 0) -> JobStatus:
        """The job's state, its result once done, and its latest preview when that shows a
        step after `preview_after` (so that a poll does not carry the same preview twice).
        With `revision` (the last answer's), a client that can waits a moment for the job to
        change past it before answering."""

    def run(
        self,
        request: EditRequest,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        poll_interval: float = 0.1,
    ) -> EditResult:
        """Run `request` to the end; raises `Cancelled` when `cancel` was set."""
        return self.wait(self.submit(request), on_progress, cancel, poll_interval)

    def wait(
        self,
        job_id: str,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        poll_interval: float = 0.1,
    ) -> EditResult:
        """Follow a submitted job to its end (also one submitted before a lost connection)."""
        cancel = cancel or threading.Event()
        ended = threading.Event()
        # A status question may wait on the server for the job's next change: this thread sends
        # a cancel the moment it is asked for meanwhile. The loop below sends it too, in case
        # that failed (cancelling twice is harmless), and raises what that one meets.
        threading.Thread(
            target=self._cancel_when_set, args=(job_id, cancel, ended), daemon=True
        ).start()
        try:
            return self._follow(job_id, on_progress, cancel, poll_interval)
        finally:
            ended.set()

    def _cancel_when_set(
        self, job_id: str, cancel: threading.Event, ended: threading.Event
    ) -> None:
        while not ended.is_set():
            if cancel.wait(CANCEL_CHECK_SECONDS):
                with contextlib.suppress(Exception):  # the loop sends it again and reports
                    self.cancel(job_id)
                return

    def _follow(
        self,
        job_id: str,
        on_progress: ProgressCallback | None,
        cancel: threading.Event,
        poll_interval: float,
    ) -> EditResult:
        cancel_sent = False
        preview_step = -1
        reported_step = -1
        revision = 0
        while True:
            if cancel.is_set() and not cancel_sent:
                self.cancel(job_id)
                cancel_sent = True
            asked_at = time.monotonic()
            status = self.status(job_id, preview_step, revision)
            revision = status.revision
            fresh_preview = status.preview is not None
            if on_progress and status.total and (status.step != reported_step or fresh_preview):
                on_progress(Progress(status.step, status.total, status.variation, status.preview))
                reported_step = status.step
            if fresh_preview:
                preview_step = status.step
            if status.state == JobState.DONE and status.result is not None:
                return status.result
            if status.state == JobState.FAILED:
                raise status.failure()
            if status.state == JobState.CANCELLED:
                raise Cancelled(f"The edit was cancelled ({status.error or 'on request'}).")
            # A client that waits for changes (revision > 0) asked a question that was answered
            # when there was news: ask again at once, but not more often than `poll_interval`.
            pause = poll_interval - (time.monotonic() - asked_at) if revision else poll_interval
            if pause <= 0:
                continue
            if cancel_sent:  # the event stays set: waiting on it would poll without pause
                time.sleep(pause)
            else:
                cancel.wait(pause)
