"""Run edits with the core in this Python: the client for scripts and tests that have torch.

`connect()` returns it when INLAYER_TRANSPORT=inprocess. It is not part of the standard-library
client folder the plug-ins carry, because it needs the engine.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import __version__
from .client.base import Client
from .client.protocol import (
    AddOnInfo,
    Cancelled,
    EditRequest,
    EditResult,
    InlayerError,
    JobState,
    JobStatus,
    ModelInfo,
    Progress,
    ProgressCallback,
    ServerHealth,
)

if TYPE_CHECKING:
    from .engine import Engine


@dataclass
class _LocalJob:
    request: EditRequest
    state: JobState = JobState.QUEUED
    progress: Progress | None = None
    preview_step: int = -1
    result: EditResult | None = None
    error: InlayerError | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


class InProcessClient(Client):
    """Runs edits with the core in this Python (which needs torch and diffusers).

    `run` calls the engine in the caller's thread; `submit` runs jobs one at a time in a
    background thread, like the server's queue.
    """

    def __init__(self, engine: Engine | None = None) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._engine_lock = threading.Lock()  # one edit at a time on the device
        self._jobs: dict[str, _LocalJob] = {}

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                # Here, not at the top: the engine imports torch, which takes seconds.
                from .engine import Engine
                from .settings import load_settings

                self._engine = Engine(load_settings().model_registry())
            return self._engine

    def health(self) -> ServerHealth:
        with self._lock:
            waiting = sum(
                j.state in (JobState.QUEUED, JobState.RUNNING) for j in self._jobs.values()
            )
        return ServerHealth(version=__version__, device=self.engine.device, queue_length=waiting)

    def models(self) -> list[ModelInfo]:
        return list(self.engine.registry.list())

    def add_ons(self) -> list[AddOnInfo]:
        return self.engine.registry.add_ons()

    def image_models(self) -> dict[str, list[str]]:
        from .restoration_models import ModelSource

        return ModelSource(self.engine.registry).names_by_field()

    def run(
        self,
        request: EditRequest,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        poll_interval: float = 0.1,
    ) -> EditResult:
        engine = self.engine
        with self._engine_lock:
            return engine.run(request, on_progress, cancel)

    def submit(self, request: EditRequest) -> str:
        request.validate()
        job_id = uuid.uuid4().hex
        job = _LocalJob(request)
        with self._lock:
            self._jobs[job_id] = job
        threading.Thread(target=self._work, args=(job,), name="inlayer-job", daemon=True).start()
        return job_id

    def cancel(self, job_id: str) -> None:
        self._job(job_id).cancel.set()

    def _job(self, job_id: str) -> _LocalJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise InlayerError(f"Job {job_id} is unknown to this process.")
        return job

    def status(self, job_id: str, preview_after: int = -1, revision: int = 0) -> JobStatus:
        job = self._job(job_id)  # answers at once (revision 0): the caller's loop paces itself
        with self._lock:
            progress = job.progress or Progress(0, 0)
            error = job.error
            return JobStatus(
                job_id=job_id,
                state=job.state,
                step=progress.step,
                total=progress.total,
                variation=progress.variation,
                preview=progress.preview if job.preview_step > preview_after else None,
                result=job.result,
                error=error.message if error else "",
                error_code=error.code if error else "",
                error_field=error.field if error else "",
            )

    def _work(self, job: _LocalJob) -> None:
        def on_progress(progress: Progress) -> None:
            with self._lock:
                if progress.preview is None and job.progress is not None:
                    progress = Progress(
                        progress.step, progress.total, progress.variation, job.progress.preview
                    )
                elif progress.preview is not None:
                    job.preview_step = progress.step
                job.progress = progress

        with self._engine_lock:
            if job.cancel.is_set():
                job.state = JobState.CANCELLED
                return
            job.state = JobState.RUNNING
            try:
                result = self.engine.run(job.request, on_progress, job.cancel)
            except Cancelled:
                job.state = JobState.CANCELLED
            except InlayerError as error:
                job.error, job.state = error, JobState.FAILED
            except Exception as error:  # keep the plug-in alive; report what broke
                job.error, job.state = InlayerError(f"internal error: {error!r}"), JobState.FAILED
            else:
                job.result, job.state = result, JobState.DONE
