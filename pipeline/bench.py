"""``seam bench``: every method on every model of a round, on the same clean data and epoch budget.

SEAM runs first on each model; the baselines then get the epochs SEAM used on that model
(fine-tuning: all of them; fine-pruning: all of them after pruning; NAD: split between teacher and
student), SEAM's recovery optimiser and batch size, and the same clean examples.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping

from rich.console import Console

from pipeline.per_model import process_model
from pipeline.registry import get_method, method_config, parse_overrides

# which manifest rows a screening script keeps (``--models``)
MODEL_FILTERS: Mapping[str, Callable[[Mapping[str, Any]], bool]] = {
    "all": lambda r: True, "poisoned": lambda r: bool(r["poisoned"]), "clean": lambda r: not r["poisoned"]}


def parse_variant(text: str, method: str = "seam") -> tuple[str, dict]:
    """``"NAME:KEY=VALUE,KEY=VALUE"`` -> (name, typed overrides of ``method``'s config)."""
    name, _, assignments = text.partition(":")
    return name, parse_overrides(method, [a for a in assignments.split(",") if a])


def budget_overrides(method: str, seam_row: Mapping[str, Any], seam_overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides that give ``method`` SEAM's epoch budget, recovery optimiser and batch size.

    Only the knobs the method's config has are passed: a data-free method (``clp``) gets none.
    """
    seam_cfg = method_config("seam", seam_overrides)
    total = max(1, int(seam_row.get("epochs_forget") or 0) + int(seam_row.get("epochs_recover") or 0))
    offered = {"optimizer": seam_cfg.optimizer, "lr": seam_cfg.recover_lr, "momentum": seam_cfg.momentum,
               "weight_decay": seam_cfg.weight_decay, "batch_size": seam_cfg.batch_size, "bn_mode": seam_cfg.bn_mode,
               "augment": seam_cfg.augment, "epochs": total}
    fields = {f.name for f in dataclasses.fields(get_method(method).config_cls)}
    if "teacher_epochs" in fields:  # a teacher is fine-tuned first (NAD): both stages share SEAM's epochs
        offered.update(teacher_epochs=max(1, total // 2), epochs=max(1, total - total // 2))
    return {k: v for k, v in offered.items() if k in fields}


def run_bench(rows: Iterable[Mapping[str, Any]], methods: Iterable[str], seam_overrides: Mapping[str, Any] | None = None,
              seed: int = 0, on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """SEAM then each baseline on every model; returns all result rows."""
    methods = [m for m in methods if m != "seam"]
    results = []
    for row in rows:
        seam_row = process_model(row, "seam", seam_overrides, seed=seed)
        results.append(seam_row)
        if on_result:
            on_result(seam_row)
        for method in methods:
            overrides = budget_overrides(method, seam_row, seam_overrides or {}) if seam_row["status"] == "ok" else None
            res = process_model(row, method, overrides, seed=seed)
            results.append(res)
            if on_result:
                on_result(res)
    return results


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summarize(results: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Table-2-style rows per method: FID/ASR on poisoned models, ACC drop on clean ones, time."""
    out = []
    for method in dict.fromkeys(r["method"] for r in results):
        rows = [r for r in results if r["method"] == method and r["status"] == "ok"]
        poisoned = [r for r in rows if r.get("poisoned")]
        clean = [r for r in rows if r.get("poisoned") is False]
        fids = [r["fid"] for r in poisoned if r.get("fid") is not None]
        out.append({
            "method": method,
            "models": len(rows),
            "failed": sum(1 for r in results if r["method"] == method and r["status"] != "ok"),
            "fid_mean": _mean(fids),
            "fid_min": min(fids) if fids else None,
            "acc_before_poisoned": _mean([r["acc_before"] for r in poisoned]),
            "acc_after_poisoned": _mean([r["acc_after"] for r in poisoned]),
            "asr_before": _mean([r["asr_before"] for r in poisoned]),
            "asr_after": _mean([r["asr_after"] for r in poisoned]),
            "clean_acc_drop": _mean([r["acc_before"] - r["acc_after"] for r in clean]),
            "seconds_repair": _mean([r["seconds_repair"] for r in rows]),
            "repair_over_training": _mean([r["seconds_repair"] / r["training_wall_time_s"] for r in rows
                                           if r.get("training_wall_time_s")]),
        })
    return out


class JsonLines:
    """Rows appended to a JSON Lines file as they come (flushed: a long screen can be read, or killed, midway);
    a no-op without a path."""

    def __init__(self, path: Path | None, mode: str = "a"):
        self.path, self.mode = path, mode
        self._sink: IO[str] | None = None

    def __enter__(self) -> "JsonLines":
        self._sink = open(self.path, self.mode, encoding="utf-8") if self.path else None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sink:
            self._sink.close()

    def write(self, row: Mapping[str, Any]) -> None:
        if self._sink:
            self._sink.write(json.dumps(row, default=str) + "\n")
            self._sink.flush()


class ResultLog(JsonLines):
    """Progress line per result on ``console``, and every row written to a JSON Lines file if given."""

    def __init__(self, console: Console, path: Path | None = None):
        super().__init__(path, "w")
        self.console = console

    def __call__(self, row: Mapping[str, Any]) -> None:
        self.console.print(f"{row['model_id']} {row['method']:<9} {row['status']} acc {_fmt(row.get('acc_before'))} -> "
                           f"{_fmt(row.get('acc_after'))} asr {_fmt(row.get('asr_before'))} -> "
                           f"{_fmt(row.get('asr_after'))} ({row.get('seconds_repair') or 0:.1f} s)", highlight=False)
        self.write(row)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
