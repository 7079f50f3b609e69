"""The backend-neutral driver loop: the single writer of result rows.

Backends (workers/local.py, workers/ray_actors.py) only start models and report how each ended;
this loop owns the per-model deadline, the retry budget for crashed workers, progress, SIGINT
draining and the writing of every row, so the semantics are the same with or without Ray.
"""
from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Hashable, Mapping, Protocol

from pipeline.store import RunStore
from schemas import FAILED_STATUSES


@dataclass(frozen=True)
class Job:
    """One model to run: its manifest row, the partition it is written to, and the save path."""

    row: Mapping[str, Any]
    store: RunStore
    save_path: str | None = None

    @property
    def model_id(self) -> str:
        return str(self.row["model_id"])


@dataclass(frozen=True)
class Outcome:
    """How a started model ended: ``row`` from the worker, or ``crashed``/``timeout`` seen by the backend."""

    kind: str  # "row" | "crashed" | "timeout"
    row: Mapping[str, Any] | None = None
    error: str = ""


class Backend(Protocol):
    def free_slots(self) -> int: ...
    def submit(self, job: Job) -> Hashable: ...
    def wait(self, timeout: float) -> list[tuple[Hashable, Outcome]]: ...
    def expire(self, handle: Hashable) -> None: ...
    def close(self) -> None: ...


class NoBackend:
    """For runs where nothing needs a worker (all done, or only rows with manifest problems)."""

    def free_slots(self) -> int:
        return 0

    def submit(self, job: Job) -> Hashable:
        raise RuntimeError("NoBackend cannot run models")

    def wait(self, timeout: float) -> list[tuple[Hashable, Outcome]]:
        raise RuntimeError("NoBackend cannot run models")

    def expire(self, handle: Hashable) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class RunInfo:
    """Fields of every row that the driver knows without the worker (failure rows are built from them)."""

    method: str
    config_hash: str
    config_json: str | None
    package_version: str | None


@dataclass
class RunSummary:
    total: int = 0
    skipped: int = 0
    by_status: Counter = field(default_factory=Counter)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.by_status[s] for s in FAILED_STATUSES)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "skipped": self.skipped, "ran": sum(self.by_status.values()),
                "failed": self.failed, "by_status": dict(self.by_status), "interrupted": self.interrupted,
                "seconds": round(self.seconds, 3)}


def failure_row(job: Job, status: str, error: str) -> dict[str, Any]:
    row = job.row
    return {"round": row.get("round"), "model_id": job.model_id, "status": status, "error": error,
            "task": row.get("task"), "architecture": row.get("architecture"),
            "num_classes": row.get("num_classes"), "poisoned": row.get("poisoned"),
            "training_wall_time_s": row.get("training_wall_time_s")}


def finish_row(row: Mapping[str, Any], job: Job, info: RunInfo, attempts: int) -> dict[str, Any]:
    """Fill the fields the driver owns; identity fields always come from the job, never the worker."""
    out = dict(row)
    out.update(round=job.row.get("round"), model_id=job.model_id, method=info.method,
               config_hash=info.config_hash, attempts=attempts, finished_at=datetime.now(timezone.utc))
    out.setdefault("config_json", info.config_json)
    out.setdefault("package_version", info.package_version)
    for key in ("task", "architecture", "num_classes", "poisoned"):
        if out.get(key) is None:
            out[key] = job.row.get(key)
    return out


class _Interrupts:
    """First SIGINT: stop submitting and drain; second: abort at once (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._old: Any = None

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def run_jobs(jobs: list[Job], backend: Backend, info: RunInfo, *, timeout_s: float, max_attempts: int,
             on_row: Callable[[Mapping[str, Any]], None] = lambda row: None) -> RunSummary:
    """Run ``jobs`` to one row each (or until SIGINT), writing rows as they finish."""
    summary, t0 = RunSummary(total=len(jobs)), time.monotonic()
    queue = list(jobs)
    attempts: Counter = Counter()
    inflight: dict[Hashable, tuple[Job, float]] = {}

    def write(job: Job, row: Mapping[str, Any]) -> None:
        final = finish_row(row, job, info, attempts[job.model_id])
        job.store.write_row(final)
        summary.by_status[final["status"]] += 1
        on_row(final)

    with _Interrupts() as interrupts:
        for job in [j for j in queue if j.row.get("problems")]:
            queue.remove(job)
            write(job, failure_row(job, "error", f"{job.model_id}: not run, manifest problems: "
                                   + "; ".join(job.row["problems"])))
        while (queue and not interrupts.stop.is_set()) or inflight:
            while queue and not interrupts.stop.is_set() and backend.free_slots() > 0:
                job = queue.pop(0)
                attempts[job.model_id] += 1
                inflight[backend.submit(job)] = (job, time.monotonic())
            for handle, outcome in backend.wait(timeout=0.5):
                job, _ = inflight.pop(handle)
                if outcome.kind == "crashed" and (attempts[job.model_id] < max_attempts or interrupts.stop.is_set()):
                    queue.append(job)  # retried on the replaced process; after Ctrl-C (which also reaches
                    continue           # the workers) left without a row, so the next run does it
                write(job, outcome.row if outcome.kind == "row" and outcome.row is not None
                      else failure_row(job, outcome.kind, f"{job.model_id}: {outcome.error}"))
            now = time.monotonic()
            for handle, (job, started) in list(inflight.items()):
                if now - started > timeout_s:
                    backend.expire(handle)
                    del inflight[handle]
                    write(job, failure_row(job, "timeout",
                                           f"{job.model_id}: no result after {timeout_s:g} s; worker killed"))
        summary.interrupted = interrupts.stop.is_set() and bool(queue)
    summary.seconds = time.monotonic() - t0
    return summary

