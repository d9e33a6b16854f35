"""Jobs on Ray Serve (`inlayer serve --backend ray`): the engine in N replicas of one Serve
deployment, on the GPUs (or CPUs) of this machine or of a Ray cluster.

The HTTP front stays the one of the local backend (app.py: the guard, /v1, the A1111 routes, the
job queue with its limits); only where a job runs changes. The queue runs one worker thread per
replica, and each drives a `ReplicaRunner`, which has the engine's `run` signature:

- the job goes through a Serve handle as a streaming call: the replica yields the job's progress
  (with downscaled previews) and at last its result or error;
- warm models: the handle names the job's model (Serve's model multiplexing, one model per
  replica as the engine keeps), and `WarmModelRouter` (Serve's request-router API) sends it to a
  free replica that holds that model, else to a free one holding fewest models, else any free
  one. A replica takes one job at a time (`max_ongoing_requests=1`), so "free" is exact;
- cancel: the front cancels the Serve call; in the replica that cancels the job's task, which
  sets the engine's cancel event, and the engine stops after its current step, as in the local
  backend;
- a replica that dies mid-job fails that job (no retry: a job that killed its replica, e.g. by
  running out of memory, would most likely kill the next one too) with an error that says so;
  Serve starts a new replica and the other jobs go on;
- `/v1/health` reads a small board actor to which every replica reports its device, models and
  whether it is busy, when that changes and every second (a replica that stops reporting is
  left out: it died). Asking the replicas themselves would wait behind their running job.

Ray is an optional extra (`pip install inlayer[ray]`): only this module imports it, and only
`inlayer serve --backend ray` imports this module.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any

import ray
import ray.exceptions
from ray import serve
from ray.serve.config import RequestRouterConfig
from ray.serve.exceptions import ReplicaUnavailableError
from ray.serve.request_router import (
    FIFOMixin,
    MultiplexMixin,
    PendingRequest,
    RequestRouter,
    RunningReplica,
)

from inlayer.core.client.protocol import (
    Cancelled,
    EditRequest,
    EditResult,
    InlayerError,
    Progress,
    ProgressCallback,
)
from inlayer.core.models import ModelRegistry
from inlayer.core.settings import Settings

from .jobs import downscale_preview
from .replicas import ReplicaInfo

log = logging.getLogger("inlayer.server")

APP_NAME = "inlayer"
BOARD_NAME = "inlayer-replica-board"
BOARD_NAMESPACE = "inlayer"
# A replica reports at once when it changes (busy, idle, another model) and otherwise this often:
# a heartbeat, which costs the replica and the board CPU that the engine could use.
REPORT_EVERY_S = 2.0
GONE_AFTER_S = 5.0  # a replica that has not reported for this long has died
BOARD_TIMEOUT_S = 5.0
_CANCEL_POLL_S = 0.1
# A replica sends a step's progress to the front at most this often (a preview and the last
# step always): each one is a message through Ray that costs the replica and the front CPU,
# and a small job's steps come faster than anyone reads them.
PROGRESS_EVERY_S = 0.25
# Ray Serve's bookkeeping in a Ray instance of the server's own (no --ray-address), where no
# dashboard reads its metrics: Serve's control loop runs 2 times a second instead of 10, and a
# replica hands its metrics on once a second instead of 10 times. On a small machine the
# replicas use every core, and this bookkeeping took about 4 % of one core from them
# (docs/benchmarks.md). A variable set in the environment wins; a joined cluster keeps its own.
LOCAL_SERVE_SETTINGS = {
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",
}


class ReplicaLost(InlayerError):
    """The replica running a job stopped (its process died, or its node left the cluster)."""

    code = "replica_lost"


class ReplicaJobError(InlayerError):
    """An error the engine raised in a replica, with the code and field it was raised with."""

    def __init__(self, code: str, field_name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field_name


@dataclass(frozen=True)
class ReplicaEvent:
    """What a replica streams back for a job: progress while it runs, then its outcome."""

    replica: ReplicaInfo  # who sent it (names the replica if it dies later)
    progress: Progress | None = None
    result: EditResult | None = None
    error_code: str = ""  # set when the job failed or was cancelled
    error_field: str = ""
    error: str = ""


@ray.remote(num_cpus=0)
class ReplicaBoard:
    """Where the replicas say how they are, for `/v1/health`."""

    def __init__(self) -> None:
        self._reports: dict[str, tuple[float, ReplicaInfo]] = {}

    def report(self, replica: ReplicaInfo) -> None:
        self._reports[replica.replica] = (time.monotonic(), replica)

    def replicas(self) -> list[ReplicaInfo]:
        """The replicas that reported lately (the others are forgotten)."""
        now = time.monotonic()
        self._reports = {
            key: (at, replica)
            for key, (at, replica) in self._reports.items()
            if now - at < GONE_AFTER_S
        }
        return sorted((replica for _, replica in self._reports.values()), key=lambda r: r.replica)


class WarmModelRouter(FIFOMixin, MultiplexMixin, RequestRouter):
    """Ranks the replicas for a job: those holding its model, then those holding fewest models,
    then the rest; the router takes the first rank with a free replica. Unlike Serve's default
    router it never waits for a busy warm replica while another one is free."""

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        if pending_request is None:
            return [candidate_replicas]
        # No replica free in any rank: back off before the router asks again.
        pending_request.routing_context.should_backoff = True
        model = pending_request.metadata.multiplexed_model_id
        if not model:
            return [candidate_replicas]
        ranks = self.rank_replicas_via_multiplex(candidate_replicas, model)
        return [rank for rank in ranks if rank]


class EngineReplica:
    """One Serve replica: an `Engine` over the models the server's settings name."""

    def __init__(self, settings: Settings) -> None:
        from inlayer.core.engine import Engine

        self._registry = settings.model_registry()
        self._engine = Engine(self._registry)
        self._id = serve.get_replica_context().replica_id.unique_id
        self._node = ray.util.get_node_ip_address()
        self._busy = False
        self._board = ray.get_actor(BOARD_NAME, namespace=BOARD_NAMESPACE)
        threading.Thread(target=self._keep_reporting, name="inlayer-report", daemon=True).start()

    def _info(self) -> ReplicaInfo:
        return ReplicaInfo(
            replica=self._id,
            device=self._engine.device,
            models=tuple(self._registry.loaded_models()),
            busy=self._busy,
            pid=os.getpid(),
            node=self._node,
        )

    def _report(self) -> None:
        self._board.report.remote(self._info())

    def _keep_reporting(self) -> None:
        while True:
            self._report()
            time.sleep(REPORT_EVERY_S)

    @serve.multiplexed(max_num_models_per_replica=1)
    async def _hold(self, model: str) -> str:
        """Tells Serve's router which model this replica holds. Called after each job with the
        model the engine has in memory then (it keeps one at a time, as
        `max_num_models_per_replica` says), not with the one a job asked for: a job that fails
        before loading its model leaves the previous one in memory."""
        return model

    async def _record_models(self) -> None:
        for model in self._registry.loaded_models():
            await self._hold(model)

    async def run(self, request: EditRequest) -> AsyncIterator[ReplicaEvent]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[ReplicaEvent | None] = asyncio.Queue()
        cancel = threading.Event()
        sent_at = -PROGRESS_EVERY_S

        def on_progress(progress: Progress) -> None:
            nonlocal sent_at
            now = time.monotonic()
            final = progress.step >= progress.total
            if progress.preview is None and not final and now - sent_at < PROGRESS_EVERY_S:
                return
            sent_at = now
            if progress.preview is not None:
                progress = Progress(
                    progress.step,
                    progress.total,
                    progress.variation,
                    downscale_preview(progress.preview),
                )
            event = ReplicaEvent(self._info(), progress=progress)
            loop.call_soon_threadsafe(events.put_nowait, event)

        self._busy = True
        self._report()
        finished = loop.run_in_executor(None, self._run, request, on_progress, cancel)
        finished.add_done_callback(lambda _future: events.put_nowait(None))
        try:
            while (event := await events.get()) is not None:
                yield event
        except asyncio.CancelledError:  # the front cancelled the call: stop after this step
            cancel.set()
            raise
        outcome = await finished
        await self._record_models()  # before the front learns the outcome and routes again
        yield outcome

    def _run(
        self, request: EditRequest, on_progress: ProgressCallback, cancel: threading.Event
    ) -> ReplicaEvent:
        """The job in the engine (in a thread: the replica's event loop keeps answering)."""
        try:
            outcome: dict[str, Any] = {"result": self._engine.run(request, on_progress, cancel)}
        except InlayerError as error:
            outcome = {"error_code": error.code, "error_field": error.field, "error": error.message}
        except Exception as error:  # a bug or a torch failure: report it, keep serving
            log.exception("a job failed in replica %s", self._id)
            outcome = {"error_code": InlayerError.code, "error": f"internal error: {error!r}"}
        self._busy = False
        self._report()
        return ReplicaEvent(self._info(), **outcome)


class ReplicaRunner:
    """Runs a job on a replica, with the engine's `run` signature (what a `JobQueue` worker
    drives)."""

    def __init__(self, backend: RayBackend) -> None:
        self._backend = backend

    def run(
        self,
        request: EditRequest,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult:
        handle = self._backend.handle.options(
            stream=True, multiplexed_model_id=self._backend.model_of(request)
        )
        stream = handle.run.remote(request)
        finished = threading.Event()
        if cancel is not None:
            threading.Thread(
                target=_cancel_when_set, args=(stream, cancel, finished), daemon=True
            ).start()
        replica: ReplicaInfo | None = None
        try:
            for event in stream:
                replica = event.replica
                if event.progress is None:
                    return _outcome(event)
                if on_progress is not None:
                    on_progress(event.progress)
        except (
            ray.exceptions.RayError,
            ReplicaUnavailableError,
            asyncio.CancelledError,
            CancelledError,
        ) as error:
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled") from None
            if not isinstance(error, (ray.exceptions.RayActorError, ReplicaUnavailableError)):
                raise  # not a lost replica: the queue reports it as an internal error
            where = f" {replica.replica} (pid {replica.pid} on {replica.node})" if replica else ""
            raise ReplicaLost(
                f"the Ray Serve replica{where} running this job stopped before it finished "
                f"({type(error).__name__}); Ray Serve starts a new replica: submit the job again"
            ) from None
        finally:
            finished.set()
        raise ReplicaLost("the Ray Serve replica ended the job without a result")


def _cancel_when_set(stream: Any, cancel: threading.Event, finished: threading.Event) -> None:
    """Until the job finishes: once `cancel` is set, cancel its Serve call."""
    while not finished.is_set():
        if cancel.wait(_CANCEL_POLL_S):
            stream.cancel()
            return


def _outcome(event: ReplicaEvent) -> EditResult:
    if event.result is not None:
        return event.result
    if event.error_code == Cancelled.code:
        raise Cancelled(event.error)
    raise ReplicaJobError(event.error_code, event.error_field, event.error)


class RayBackend:
    """The Serve application of the engine replicas, and the front's handle on it."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        *,
        address: str | None,
        replicas: int | None,
        gpus_per_replica: float | None,
    ) -> None:
        """`address` None: start a Ray instance on this machine's loopback; else join that
        cluster. `replicas` None: one per GPU of the cluster, or one CPU replica without any.
        `gpus_per_replica` None: one GPU each where the cluster has GPUs, else none."""
        self.settings = settings
        self.address = address
        self._registry = registry  # the front's: it names the default models
        self._replicas = replicas
        self._gpus_per_replica = gpus_per_replica
        self.handle: Any = None
        self._board: Any = None
        self.replica_count = 0

    def start(self) -> None:
        """Start or join Ray, deploy the replicas and wait until they are up."""
        if self.address:
            ray.init(address=self.address, logging_level=logging.WARNING)
        else:
            # Ray's processes (raylet, Serve's controller, the replicas) take the environment
            # of the process that starts the instance.
            for name, value in LOCAL_SERVE_SETTINGS.items():
                os.environ.setdefault(name, value)
            ray.init(
                address="local",
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                logging_level=logging.WARNING,
                # Nothing reads Ray's metrics without a dashboard: do not collect them.
                _system_config={"enable_metrics_collection": False},
            )
        gpus, cpus, self.replica_count = self._placement(ray.cluster_resources())
        self._board = ReplicaBoard.options(
            name=BOARD_NAME, namespace=BOARD_NAMESPACE, get_if_exists=True
        ).remote()
        serve.start(proxy_location="Disabled")
        deployment = serve.deployment(EngineReplica).options(
            name="EngineReplica",
            num_replicas=self.replica_count,
            max_ongoing_requests=1,
            # Ray gives a replica as many torch threads as CPUs (unless OMP_NUM_THREADS is set).
            ray_actor_options={"num_cpus": cpus, "num_gpus": gpus},
            request_router_config=RequestRouterConfig(request_router_class=WarmModelRouter),
        )
        self.handle = serve.run(deployment.bind(self.settings), name=APP_NAME, route_prefix=None)

    def _placement(self, resources: dict[str, float]) -> tuple[float, int, int]:
        """GPUs and CPUs per replica and the number of replicas, checked against the cluster's
        resources (Serve would otherwise wait forever for replicas that cannot be placed). A
        GPU replica takes one CPU; CPU replicas share the CPUs out evenly."""
        cluster_gpus = resources.get("GPU", 0.0)
        cluster_cpus = resources.get("CPU", 0.0)
        gpus = self._gpus_per_replica
        if gpus is None:
            gpus = 1.0 if cluster_gpus >= 1 else 0.0
        if gpus < 0:
            raise InlayerError(f"--gpus-per-replica: {gpus:g} is negative; use 0 for the CPU")
        if gpus > 0 and cluster_gpus < gpus:
            raise InlayerError(
                f"--gpus-per-replica: {gpus:g} GPUs per replica, but the Ray cluster has "
                f"{cluster_gpus:g}; use 0 for CPU replicas"
            )
        count = self._replicas
        if count is None:
            count = int(cluster_gpus // gpus) if gpus > 0 else 1
        if count < 1:
            raise InlayerError(f"--replicas: {count} replicas; use 1 or more")
        if gpus > 0 and count * gpus > cluster_gpus:
            raise InlayerError(
                f"--replicas: {count} replicas of {gpus:g} GPUs need {count * gpus:g} GPUs, "
                f"but the Ray cluster has {cluster_gpus:g}"
            )
        if count > cluster_cpus:
            raise InlayerError(
                f"--replicas: {count} replicas need a CPU each, but the Ray cluster has "
                f"{cluster_cpus:g}"
            )
        cpus = 1 if gpus > 0 else max(1, int(cluster_cpus // count))
        return gpus, cpus, count

    def stop(self) -> None:
        """Remove the replicas; leave a cluster that was joined, stop one that was started."""
        if self.handle is not None:
            serve.delete(APP_NAME)
            if not self.address:
                serve.shutdown()
        ray.shutdown()

    def runner(self) -> ReplicaRunner:
        return ReplicaRunner(self)

    def model_of(self, request: EditRequest) -> str:
        """The model a job runs on (its own, or its mode's default): the router's key."""
        if request.model:
            return request.model
        try:
            return self._registry.default_for(request.mode)
        except InlayerError:
            return ""  # no model for it: the replica's engine says so

    def describe(self) -> list[ReplicaInfo]:
        """The replicas that reported lately (a dead one stops reporting)."""
        return ray.get(self._board.replicas.remote(), timeout=BOARD_TIMEOUT_S)
