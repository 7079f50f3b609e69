"""Pipeline benchmark for ``seam run``: overhead per model, models/hour per worker count, Ray start-up.

    python benchmarks/run_bench.py ROUND --out /tmp/bench-out --workers 1 2 [--backend ray] [--set KEY=VALUE]

For each worker count the round runs into a fresh result root. Per-model work is what the worker
measures (seconds_load + seconds_repair + seconds_eval); pipeline overhead is everything else the
run spent per model: actor start-up, scheduling, transfers, row writing, and idle tail time, i.e.
``(workers x loop seconds - sum of work) / models``. Embedded Ray start-up is reported apart; with one
worker, ``steady_overhead_s_per_model`` leaves out actor start-up too (gaps between rows minus work).
Prints one JSON document (and writes it to OUT/bench.json).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import pyarrow.parquet as pq


def _rows(results: Path) -> list[dict]:
    return [pq.read_table(p).to_pylist()[0] for p in sorted(results.glob("round=*/method=*/*.parquet"))]


class _Arrivals:
    """Progress hook: when each row was written, to measure steady-state overhead without start-up."""

    def __init__(self) -> None:
        self.times: list[tuple[float, dict]] = []

    def start(self, total: int, skipped: int) -> None:
        pass

    def update(self, row: dict) -> None:
        self.times.append((time.perf_counter(), row))


def _steady_overhead(arrivals: _Arrivals) -> float | None:
    """1 worker: gap between consecutive rows minus the later model's work (first model excluded)."""
    gaps = [(t1 - t0) - (r["seconds_load"] + (r["seconds_repair"] or 0) + r["seconds_eval"])
            for (t0, _), (t1, r) in zip(arrivals.times, arrivals.times[1:]) if r["status"] == "ok"]
    return round(statistics.mean(gaps), 4) if gaps else None


def bench_once(round_dir: Path, results: Path, backend: str, workers: int, overrides: dict, timeout_s: float) -> dict:
    from workers.run import RunOptions, run_round

    shutil.rmtree(results, ignore_errors=True)
    opts = RunOptions(results=results, backend=backend, workers=workers if backend == "ray" else None,
                      overrides=overrides, timeout_s=timeout_s)
    t0 = time.perf_counter()
    arrivals = _Arrivals()
    summary = run_round(round_dir, opts, arrivals)
    total = time.perf_counter() - t0
    rows = [r for r in _rows(results) if r["status"] == "ok"]
    n = len(rows)
    work = [r["seconds_load"] + (r["seconds_repair"] or 0) + r["seconds_eval"] for r in rows]
    inner = [r["seconds_wall"] - w for r, w in zip(rows, work)]
    loop = summary["seconds"]
    per_model_wall = workers * loop / n if n else float("nan")
    overhead = per_model_wall - statistics.mean(work) if n else float("nan")
    return {
        "backend": backend, "workers": workers, "models": summary["models"], "ok": n, "failed": summary["failed"],
        "ray_startup_s": summary["startup_s"], "loop_s": loop, "total_s": round(total, 3),
        "models_per_hour": round(3600 * n / loop, 1) if loop else None,
        "models_per_hour_incl_startup": round(3600 * n / total, 1),
        "per_model_wall_s": round(per_model_wall, 3),
        "per_model_work_s": round(statistics.mean(work), 3) if n else None,
        "per_model_overhead_s": round(overhead, 3),
        "overhead_fraction": round(overhead / per_model_wall, 4) if n else None,
        "in_worker_overhead_s": round(statistics.mean(inner), 4) if n else None,
        "steady_overhead_s_per_model": _steady_overhead(arrivals) if workers == 1 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("round", type=Path, help="round directory or manifest (e.g. seam make-round --preset bench)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backend", default="ray", choices=["ray", "local"])
    parser.add_argument("--set", dest="settings", action="append", default=[], help="method override KEY=VALUE")
    parser.add_argument("--timeout-s", type=float, default=3600)
    args = parser.parse_args()

    from pipeline.registry import parse_overrides

    overrides = parse_overrides("seam", args.settings)
    runs = [bench_once(args.round, args.out / f"results-{args.backend}-w{w}", args.backend, w, overrides,
                       args.timeout_s) for w in args.workers]
    report = {"round": str(args.round), "overrides": overrides, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
