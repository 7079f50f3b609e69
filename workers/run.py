"""``seam run`` end to end: manifest -> resume plan -> backend -> driver loop -> summary.

Kept apart from cli.py so tests and benchmarks call the same code the command does.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from pipeline.store import RunStore, write_manifest_snapshot
from workers.driver import Backend, Job, NoBackend, RunInfo, run_jobs
from workers.execute import WorkSpec
from workers.faults import faults_from_env


class InfrastructureError(RuntimeError):
    """The execution backend itself could not be started or reached (exit code 4)."""


class UsageError(ValueError):
    """Bad options or input (exit code 2), as opposed to models that failed (exit code 1)."""


@dataclass(frozen=True)
class RunOptions:
    results: Path
    method: str = "seam"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    backend: str = "ray"
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 1.0
    timeout_s: float = 3600.0
    max_attempts: int = 2
    save_models: bool = False
    retry_failed: bool = False
    seed: int = 0


class Progress(Protocol):
    def start(self, total: int, skipped: int) -> None: ...
    def update(self, row: Mapping[str, Any]) -> None: ...


@dataclass
class Started:
    backend: Backend
    workers: int
    startup_s: float
    stop: Callable[[], None]


def _start_local(opts: RunOptions, spec: WorkSpec) -> Started:
    from workers.local import LocalBackend

    if opts.workers not in (None, 1):
        raise UsageError("--backend local runs one model at a time; use --backend ray for --workers > 1")
    backend = LocalBackend(spec, opts.timeout_s, threads=os.cpu_count() or 1)
    return Started(backend, 1, 0.0, backend.close)


def _start_ray(opts: RunOptions, spec: WorkSpec) -> Started:
    from workers.ray_actors import RayBackend, plan_placement, start_ray

    try:
        owned, startup_s = start_ray(opts.address)
    except Exception as exc:  # ray raises ConnectionError, TimeoutError, RuntimeError... depending on the cause
        where = opts.address or os.environ.get("RAY_ADDRESS") or "an embedded instance"
        raise InfrastructureError(f"could not start or reach Ray ({where}): {type(exc).__name__}: {exc}") from exc
    placement = plan_placement(opts.workers, opts.gpus_per_worker)
    backend = RayBackend(spec, placement)

    def stop() -> None:
        backend.close()
        if owned:
            import ray

            ray.shutdown()

    return Started(backend, placement.workers, startup_s, stop)


BACKENDS: dict[str, Callable[[RunOptions, WorkSpec], Started]] = {"local": _start_local, "ray": _start_ray}


def plan_jobs(rows: list[Mapping[str, Any]], opts: RunOptions, cfg_hash: str) -> tuple[list[Job], int, int]:
    """(jobs, skipped, skipped with a failed row): jobs are the models without a terminal row, or
    with a failed one under ``retry_failed``."""
    jobs, skipped, skipped_failed = [], 0, 0
    by_round: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_round.setdefault(str(row["round"]), []).append(row)
    for round_name, round_rows in by_round.items():
        store = RunStore(Path(opts.results), round_name, opts.method, cfg_hash)
        todo_list, failed = store.todo([str(r["model_id"]) for r in round_rows], opts.retry_failed)
        todo = set(todo_list)
        skipped, skipped_failed = skipped + len(round_rows) - len(todo), skipped_failed + len(failed)
        for row in round_rows:
            if str(row["model_id"]) in todo:
                save = str(store.model_path(str(row["model_id"]))) if opts.save_models else None
                jobs.append(Job(row=row, store=store, save_path=save))
    return jobs, skipped, skipped_failed


def load_rows(source: str | os.PathLike) -> list[dict[str, Any]]:
    from manifests import NotARoundError
    from manifests.io import load_manifest

    if not Path(source).exists():
        raise UsageError(f"{source}: no such round directory or manifest file")
    try:
        return load_manifest(source)
    except NotARoundError as exc:
        raise UsageError(str(exc)) from exc


def run_round(source: str | os.PathLike, opts: RunOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run every model of a round (directory or manifest) that has no terminal row yet."""
    from pipeline.per_model import package_version
    from pipeline.registry import config_hash, config_json

    if opts.backend not in BACKENDS:
        raise UsageError(f"unknown backend {opts.backend!r}; choose from {', '.join(BACKENDS)}")
    if opts.max_attempts < 1 or opts.timeout_s <= 0:
        raise UsageError("--max-attempts must be >= 1 and --timeout-s > 0")
    try:
        info = RunInfo(opts.method, config_hash(opts.method, opts.overrides),
                       config_json(opts.method, opts.overrides), package_version())
        faults = faults_from_env()
    except (KeyError, ValueError, TypeError) as exc:
        raise UsageError(str(exc).strip("'\"")) from exc
    rows = load_rows(source)
    for round_name in sorted({str(r["round"]) for r in rows}):
        write_manifest_snapshot(Path(opts.results), round_name, [r for r in rows if str(r["round"]) == round_name])
    jobs, skipped, skipped_failed = plan_jobs(rows, opts, info.config_hash)
    out: dict[str, Any] = {"source": str(source), "results": str(opts.results), "method": opts.method,
                           "config_hash": info.config_hash, "backend": opts.backend, "models": len(rows),
                           "rounds": sorted({str(r["round"]) for r in rows})}
    if progress:
        progress.start(len(jobs), skipped)
    t0 = time.monotonic()
    # Ray's driver prints worker-death notices on stdout, which carries data only (--json): send
    # whatever anything prints during the run to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        summary, started = _execute(jobs, opts, info, faults, progress)
    if summary.by_status:
        from pipeline.report import refresh_cache

        refresh_cache(opts.results)  # so the first `seam report` after a run reads one file, not one per model
    out.update(summary.as_dict())
    out.update(skipped=skipped, skipped_failed=skipped_failed, workers=started.workers if started else 0,
               startup_s=round(started.startup_s, 3) if started else 0.0, wall_s=round(time.monotonic() - t0, 3))
    return out


def _execute(jobs: list[Job], opts: RunOptions, info: RunInfo, faults: Mapping[str, str],
             progress: Progress | None) -> tuple[Any, Started | None]:
    started = None
    try:
        if any(not job.row.get("problems") for job in jobs):  # rows with problems need no worker
            started = BACKENDS[opts.backend](opts, WorkSpec(opts.method, dict(opts.overrides), opts.seed, faults))
        summary = run_jobs(jobs, started.backend if started else NoBackend(), info, timeout_s=opts.timeout_s,
                           max_attempts=opts.max_attempts, on_row=progress.update if progress else lambda row: None)
    finally:
        if started:
            started.stop()
    return summary, started

