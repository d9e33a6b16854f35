"""What `/v1/health` says of the engines that run jobs: one for the local backend, one per Ray
Serve replica with `--backend ray` (server/ray_backend.py)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LOCAL_BACKEND = "local"
RAY_BACKEND = "ray"


@dataclass(frozen=True)
class ReplicaInfo:
    """One engine: where it runs, what it holds, whether a job runs on it now."""

    replica: str  # "local", or the Ray Serve replica's id
    device: str  # the torch device its models run on
    models: tuple[str, ...]  # the models it has in memory (a job for one of them starts warm)
    busy: bool
    pid: int  # its process (Ray: the replica actor's)
    node: str = ""  # Ray: the node's IP address; "" for the local backend


def replica_to_json(replica: ReplicaInfo) -> dict[str, Any]:
    return {**dataclasses.asdict(replica), "models": list(replica.models)}


def describe_local(
    device: str, loaded_models: Callable[[], list[str]], busy: Callable[[], bool]
) -> Callable[[], list[ReplicaInfo]]:
    """The local backend's one engine, in this process, as `Service.describe_replicas` wants."""

    def describe() -> list[ReplicaInfo]:
        return [
            ReplicaInfo(
                replica=LOCAL_BACKEND,
                device=device,
                models=tuple(loaded_models()),
                busy=busy(),
                pid=os.getpid(),
            )
        ]

    return describe
