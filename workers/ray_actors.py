"""The ``ray`` backend: one long-lived actor per GPU (or CPU actors), driven by workers/driver.py.

The only module that imports ray. Actors are restartable (``max_restarts=-1``) but Ray never
re-runs a call (``max_task_retries=0``): the driver counts attempts itself, so a model that kills its
process deterministically ends as a ``crashed`` row instead of looping (PIPELINE-NOTES §1.4).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Hashable

from workers.driver import Job, Outcome
from workers.execute import WorkSpec, configure_threads, execute


class ModelWorker:
    """Runs one model at a time; torch is imported once per process, after the thread budget is set."""

    def __init__(self, spec: WorkSpec, threads: int, use_gpu: bool):
        configure_threads(threads)
        self.spec, self.device = spec, "cuda" if use_gpu else "cpu"

    def ready(self) -> int:
        return os.getpid()

    def run(self, row: dict[str, Any], save_path: str | None) -> dict[str, Any]:
        out = execute(row, self.spec, save_path, self.device)
        if self.device == "cuda":
            import gc

            import torch

            gc.collect()
            torch.cuda.empty_cache()  # long-lived actors otherwise keep every model's cache
        return out


def start_ray(address: str | None) -> tuple[bool, float]:
    """Connect (``--address`` / ``RAY_ADDRESS``) or start an embedded instance; reuse one already up.

    Returns (whether this call started Ray and so must shut it down, seconds it took).
    """
    import time

    import ray

    t0 = time.monotonic()
    if ray.is_initialized():
        return False, 0.0
    address = address or os.environ.get("RAY_ADDRESS")
    if address:  # inside `ray job submit` or against a cluster: no resource arguments allowed
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(address="local", include_dashboard=False, log_to_driver=False,
                 object_store_memory=256 * 2**20)  # models travel as paths: a small store suffices
    return True, time.monotonic() - t0


@dataclass(frozen=True)
class Placement:
    workers: int
    gpus_per_worker: float
    cpus_per_worker: int


def plan_placement(workers: int | None, gpus_per_worker: float) -> Placement:
    """One actor per GPU share when the cluster has GPUs, else CPU actors; cores split evenly."""
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = float(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    if gpus > 0:
        n = workers or max(1, int(gpus // gpus_per_worker))
        return Placement(n, gpus_per_worker, max(1, cpus // n))
    n = workers or 1
    return Placement(n, 0.0, max(1, cpus // n))


class RayBackend:
    """Actors are handed work only once they answer ``ready()``: after a crash or a kill the same
    handle is re-pinged until its new process is up, so restart time never counts against the next
    model's deadline and a call never lands on a process that is still restarting."""

    def __init__(self, spec: WorkSpec, placement: Placement):
        import ray

        remote = ray.remote(ModelWorker).options(
            num_gpus=placement.gpus_per_worker, num_cpus=placement.cpus_per_worker,
            max_restarts=-1, max_task_retries=0)
        use_gpu = placement.gpus_per_worker > 0
        self._ray = ray
        self._actors = [remote.remote(spec, placement.cpus_per_worker, use_gpu) for _ in range(placement.workers)]
        self._idle: list[Any] = []
        self._busy: dict[Any, Any] = {}  # ObjectRef of a model -> actor
        self._warming: dict[Any, Any] = {}  # ObjectRef of a ready() ping -> actor
        for actor in self._actors:
            self._ping(actor)

    def _ping(self, actor: Any) -> None:
        self._warming[actor.ready.remote()] = actor

    def free_slots(self) -> int:
        return len(self._idle)

    def submit(self, job: Job) -> Hashable:
        actor = self._idle.pop()
        ref = actor.run.remote(dict(job.row), job.save_path)
        self._busy[ref] = actor
        return ref

    def wait(self, timeout: float) -> list[tuple[Hashable, Outcome]]:
        from ray.exceptions import ActorDiedError, RayActorError, RayTaskError

        pending = [*self._busy, *self._warming]
        if not pending:
            raise RuntimeError("no Ray workers left (every actor died for good); see `ray list actors`")
        ready, rest = self._ray.wait(pending, num_returns=1, timeout=timeout)
        if ready and rest:  # collect everything else that is already done, without waiting
            ready += self._ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        done = []
        for ref in ready:
            if ref in self._warming:
                actor = self._warming.pop(ref)
                try:
                    self._ray.get(ref)
                    self._idle.append(actor)
                except ActorDiedError:
                    self._actors.remove(actor)
                except RayActorError:  # still restarting: ask again shortly
                    time.sleep(0.2)
                    self._ping(actor)
                continue
            actor = self._busy.pop(ref)
            try:
                done.append((ref, Outcome("row", self._ray.get(ref))))
                self._idle.append(actor)
            except RayActorError as exc:
                done.append((ref, Outcome("crashed", error=f"worker process died ({type(exc).__name__})")))
                self._ping(actor)  # Ray restarts the same handle; use it once it answers
            except RayTaskError as exc:  # execute() catches model errors; this is the wrapper itself
                done.append((ref, Outcome("crashed", error=f"worker failed: {exc}")))
                self._idle.append(actor)
        return done

    def expire(self, handle: Hashable) -> None:
        actor = self._busy.pop(handle)
        self._ray.kill(actor, no_restart=False)  # a fresh process takes the next model
        self._ping(actor)

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor, no_restart=True)
        self._idle.clear()
        self._busy.clear()
        self._warming.clear()
