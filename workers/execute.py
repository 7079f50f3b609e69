"""The worker-side wrapper around ``pipeline.per_model.process_model`` shared by every backend.

It sets the thread budget, applies test-only faults, fills ``host``, and turns any exception that
escapes the per-model code into an ``error`` row: only process death and hangs reach the driver.
"""
from __future__ import annotations

import os
import socket
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping

from workers.faults import apply_fault


def configure_threads(threads: int) -> None:
    """Give torch this worker's share of the cores; idle OpenMP threads must not spin (shared hosts)."""
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["OMP_NUM_THREADS"] = str(max(1, threads))
    import torch

    torch.set_num_threads(max(1, threads))


@dataclass(frozen=True)
class WorkSpec:
    """Everything a worker needs besides the manifest row; the same for every model of a run."""

    method: str = "seam"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    faults: Mapping[str, str] = field(default_factory=dict)


def error_text(row: Mapping[str, Any], exc: BaseException) -> str:
    where = row.get("model_file") or row.get("model_dir") or row.get("model_id")
    tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return f"{row.get('model_id')} ({where}): {tail}"


def execute(row: Mapping[str, Any], spec: WorkSpec, save_path: str | None, device: str | None) -> dict[str, Any]:
    """Run one model; returns a result row (status ok or error)."""
    try:
        apply_fault(str(row["model_id"]), spec.faults)
        from pipeline.per_model import process_model

        out = dict(process_model(row, method=spec.method, overrides=dict(spec.overrides) or None,
                                 save_path=save_path, device=device, seed=spec.seed))
    except Exception as exc:  # per-model code should not raise; if it does, the batch still goes on
        out = {"round": row.get("round"), "model_id": row.get("model_id"), "status": "error",
               "error": error_text(row, exc)}
    out.setdefault("host", socket.gethostname())
    out["host"] = out["host"] or socket.gethostname()
    return out
