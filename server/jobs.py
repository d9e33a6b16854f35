"""The job queue: first in, first out, bounded, with one worker thread per engine it drives:
one by default (the local engine), one per Ray Serve replica with `inlayer serve --backend ray`.

HTTP handlers only touch `Job` records under the queue's lock (microseconds): they never wait
for the engine, so health and progress answer while a job runs. A status request may wait for
the job's next change (`changed`): every change a client can see raises the job's `revision` and
wakes those waits, so clients learn of progress and of the end at once without asking in a tight
loop (a waiting request holds no thread: it awaits on the server's event loop).

Finished jobs are kept for `keep_seconds` (and at most `keep_finished` of them) so that a client
that lost its connection can still fetch its result.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from inlayer.core.client.protocol import (
    Cancelled,
    EditRequest,
    EditResult,
    InlayerError,
    JobState,
    JobStatus,
    Progress,
    ProgressCallback,
    RGBAImage,
)

log = logging.getLogger("inlayer.server")

PREVIEW_MAX_SIDE = 256  # previews travel on every poll: keep them small
MAX_STATUS_WAIT_SECONDS = 30.0  # the longest a status request may wait for the job's next change
_FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class Runner(Protocol):
    """What the worker drives: `core.engine.Engine` (or anything with its `run`)."""

    def run(
        self,
        request: EditRequest,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult: ...


class QueueFull(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Job:
    job_id: str
    request: EditRequest
    source: str  # "v1" or "a1111": which API submitted it
    state: JobState = JobState.QUEUED
    step: int = 0
    total: int = 0
    variation: int = 0
    preview: RGBAImage | None = None
    preview_step: int = 0  # the step the preview shows (clients skip previews they have)
    result: EditResult | None = None
    error: str = ""  # why it failed (without the field it names) or was cancelled
    error_code: str = ""  # for FAILED, the `InlayerError.code`
    error_field: str = ""  # for FAILED, the request field the error names
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float = 0.0
    finished_at: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    revision: int = 1  # raised by every change a client can see (state, step, preview, place)
    watchers: list[Callable[[], None]] = field(default_factory=list)  # woken on each change

    def eta_seconds(self) -> float | None:
        """Seconds left, extrapolated from the steps done so far."""
        if self.state != JobState.RUNNING or self.step == 0 or self.total == 0:
            return None
        elapsed = time.monotonic() - self.started_at
        return elapsed / self.step * (self.total - self.step)


def downscale_preview(image: RGBAImage, max_side: int = PREVIEW_MAX_SIDE) -> RGBAImage:
    """Nearest-neighbour shrink so that no side exceeds `max_side` (previews are rough anyway)."""
    factor = -(-max(image.width, image.height) // max_side)  # ceiling division
    if factor <= 1:
        return image
    width, height = -(-image.width // factor), -(-image.height // factor)
    row_bytes = image.width * 4
    rows = []
    for y in range(0, image.height, factor):
        row = image.data[y * row_bytes : (y + 1) * row_bytes]
        # Every `factor`-th pixel: slice the 4 channels with a stride, then interleave them.
        pixels = bytearray(width * 4)
        for c in range(4):
            pixels[c::4] = row[c :: 4 * factor]
        rows.append(bytes(pixels))
    return RGBAImage(width, height, b"".join(rows))


class JobQueue:
    def __init__(
        self,
        runner_factory: Callable[[], Runner],
        *,
        workers: int = 1,
        max_queued: int = 8,
        keep_seconds: float = 600.0,
        keep_finished: int = 32,
    ) -> None:
        """`runner_factory` builds the engine inside each of the `workers` threads, which then
        owns it. `max_queued` bounds the jobs waiting for any worker."""
        self._runner_factory = runner_factory
        self.max_queued = max_queued
        self.keep_seconds = keep_seconds
        self.keep_finished = keep_finished
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._waiting: collections.deque[Job] = collections.deque()
        self._jobs: dict[str, Job] = {}
        self._running: list[Job] = []  # in the order they started
        self._stopping = False
        self._step_seconds = 1.0  # recent seconds per step, for Retry-After
        self._threads = [
            threading.Thread(target=self._work, name=f"inlayer-worker-{index}", daemon=True)
            for index in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel everything and let the worker finish its current step."""
        with self._lock:
            self._stopping = True
            for job in self._waiting:
                self._finish(job, JobState.CANCELLED, error="the server is shutting down")
            self._waiting.clear()
            for job in self._running:
                job.cancel.set()
            self._wakeup.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    # ---- called from HTTP handlers -----------------------------------------------------------

    def submit(self, request: EditRequest, source: str = "v1") -> Job:
        with self._lock:
            self._forget_old()
            if len(self._waiting) >= self.max_queued:
                raise QueueFull(self._retry_after())
            job = Job(job_id=uuid.uuid4().hex, request=request, source=source)
            self._jobs[job.job_id] = job
            self._waiting.append(job)
            self._wakeup.notify()
            return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    async def changed(self, job: Job, seen_revision: int, timeout: float) -> None:
        """Return once `job` is past `seen_revision` (at once when it already is), or after
        `timeout` s. Awaits on the caller's event loop: the worker threads wake it."""
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:
            # RuntimeError: the server shut its loop down meanwhile, and no one waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(woken.set)

        with self._lock:
            if job.revision > seen_revision:
                return
            job.watchers.append(wake)
        try:
            await asyncio.wait_for(woken.wait(), timeout)
        except TimeoutError:
            pass  # no change meanwhile: the caller answers with the state as it is
        finally:
            with self._lock:
                job.watchers.remove(wake)

    def status(self, job: Job, *, preview_after: int = -1) -> JobStatus:
        """What clients learn of `job` (the one place that says it); the preview only when it
        is newer than step `preview_after`."""
        with self._lock:
            position = 0
            if job.state == JobState.QUEUED:
                position = self._waiting.index(job) + 1 + len(self._running)
            return JobStatus(
                job_id=job.job_id,
                state=job.state,
                step=job.step,
                total=job.total,
                variation=job.variation,
                queue_position=position,
                preview=job.preview if job.preview_step > preview_after else None,
                result=job.result,
                error=job.error,
                error_code=job.error_code,
                error_field=job.error_field,
                revision=job.revision,
            )

    def cancel(self, job: Job) -> None:
        with self._lock:
            if job.state == JobState.QUEUED:
                self._waiting.remove(job)
                self._finish(job, JobState.CANCELLED, error="cancelled before it started")
                self._moved_up()
            elif job.state == JobState.RUNNING:
                job.cancel.set()

    def running(self) -> Job | None:
        """The running job that started first."""
        with self._lock:
            return self._running[0] if self._running else None

    def latest(self, source: str) -> Job | None:
        """The running job, else the most recently submitted one from `source`."""
        with self._lock:
            if self._running:
                return self._running[0]
            candidates = [j for j in self._jobs.values() if j.source == source]
            return max(candidates, key=lambda j: j.submitted_at, default=None)

    def queue_length(self) -> int:
        """Jobs waiting plus the ones running."""
        with self._lock:
            return len(self._waiting) + len(self._running)

    # ---- the worker --------------------------------------------------------------------------

    def _work(self) -> None:
        runner = self._runner_factory()
        while True:
            with self._lock:
                while not self._waiting and not self._stopping:
                    self._wakeup.wait()
                if self._stopping:
                    return
                job = self._waiting.popleft()
                job.state = JobState.RUNNING
                job.started_at = time.monotonic()
                self._running.append(job)
                self._changed(job)
                self._moved_up()
            self._run(runner, job)
            with self._lock:
                self._running.remove(job)
                self._moved_up()

    def _run(self, runner: Runner, job: Job) -> None:
        def on_progress(progress: Progress) -> None:
            preview = downscale_preview(progress.preview) if progress.preview else None
            with self._lock:
                job.step, job.total, job.variation = (
                    progress.step,
                    progress.total,
                    progress.variation,
                )
                if preview is not None:
                    job.preview, job.preview_step = preview, progress.step
                self._changed(job)

        try:
            result = runner.run(job.request, on_progress, job.cancel)
        except Cancelled:
            with self._lock:
                self._finish(job, JobState.CANCELLED, error="cancelled")
        except InlayerError as error:
            with self._lock:
                self._fail(job, error)
        except Exception as error:  # a bug or a torch failure: report it, keep serving
            log.exception("job %s failed", job.job_id)
            with self._lock:
                self._fail(job, InlayerError(f"internal error: {error!r}"))
        else:
            with self._lock:
                job.result = result
                if job.total:
                    run_seconds = time.monotonic() - job.started_at
                    self._step_seconds = run_seconds / job.total
                job.step = job.total
                self._finish(job, JobState.DONE)

    # ---- bookkeeping (lock held) -------------------------------------------------------------

    def _changed(self, job: Job) -> None:
        job.revision += 1
        for wake in job.watchers:
            wake()

    def _moved_up(self) -> None:
        """A job left the queue: every job still waiting has a new place in it."""
        for job in self._waiting:
            self._changed(job)

    def _finish(self, job: Job, state: JobState, *, error: str = "") -> None:
        job.state, job.error = state, error
        job.finished_at = time.monotonic()
        job.finished.set()
        self._changed(job)

    def _fail(self, job: Job, error: InlayerError) -> None:
        job.error_code, job.error_field = error.code, error.field
        self._finish(job, JobState.FAILED, error=error.message)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in _FINISHED]
        finished.sort(key=lambda j: j.finished_at)
        now = time.monotonic()
        expired = len(finished) - self.keep_finished
        for index, job in enumerate(finished):
            if index < expired or now - job.finished_at > self.keep_seconds:
                del self._jobs[job.job_id]

    def _retry_after(self) -> int:
        """Seconds until a queue slot is likely free: about one job's worth of steps."""
        running = self._running[0] if self._running else None
        steps = running.total - running.step if running and running.total else 20
        return max(1, round(steps * self._step_seconds))
