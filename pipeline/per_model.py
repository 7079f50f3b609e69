"""Repair one model of a manifest: the pure per-model function every backend calls.

Loads the model through the allow-listed unpickler, splits the clean examples, measures ACC/ASR
before, after forgetting and after recovery on data the repair never sees, and returns one result
row. Model-level failures become an ``error`` row naming the model and file; nothing is raised.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import resource
import socket
import time
import traceback
from contextlib import contextmanager
from importlib import metadata
from typing import Any, Iterator, Mapping

import torch

from pipeline.model_loading import load_model, save_model
from pipeline.registry import config_hash, config_json, get_method, method_config
from pipeline.tasks import EvalSets, RepairData, Split, adapter_for
from pipeline.tasks.base import TaskAdapter
from pipeline.training import accuracy, balanced_split

HELDOUT_FRACTION = 0.25  # share of each class's clean examples kept for ACC when there is no clean_test_data


class ModelInputError(ValueError):
    """The manifest row says this model cannot be repaired (missing files, unreadable config, ...)."""


def default_device() -> torch.device:
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def package_version() -> str:
    try:
        return metadata.version("seam-repair")
    except metadata.PackageNotFoundError:
        return "unknown"


def split_eval(task: TaskAdapter, row: Mapping[str, Any], clean: Split, seed: int) -> tuple[Split, EvalSets]:
    """(repair data, evaluation sets): evaluation data is never part of the repair data."""
    if row.get("clean_test_dir"):
        acc, acc_source, repair_data = task.load_clean(row["clean_test_dir"], row), "clean_test_data", clean
    else:
        per_class = clean.classes
        smallest = int(torch.bincount(per_class[per_class >= 0]).min()) if len(per_class) else 0
        k = max(1, int(round(smallest * HELDOUT_FRACTION)))
        held, rest = balanced_split(per_class, k, torch.Generator().manual_seed(seed + 7), disjoint=True)
        acc, acc_source, repair_data = clean.subset(held), "heldout_examples", clean.subset(rest)
    asr, asr_source = None, None
    if row.get("poisoned"):
        for key, source in (("poisoned_test_dir", "poisoned_test_data"), ("poisoned_example_dir", "poisoned_examples")):
            if row.get(key):
                asr = task.load_triggered(row[key], row)
                if asr is not None:
                    asr_source = source
                    break
    return repair_data, EvalSets(acc, acc_source, asr, asr_source)


@contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG for one repair and restore it after, so the same model, method and seed
    give the same repair whatever ran before in this worker (and the caller's RNG stream is untouched)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def measure(model: torch.nn.Module, task: TaskAdapter, evals: EvalSets, device: torch.device) -> tuple[float, float | None]:
    """(clean ACC, ASR or None) of ``model`` on the evaluation sets."""
    acc = accuracy(model, task, evals.acc, device)
    asr = accuracy(model, task, evals.asr, device) if evals.asr is not None else None
    return acc, asr


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fid(acc_before: float | None, acc_after: float | None, asr_after: float | None) -> float | None:
    if None in (acc_before, acc_after, asr_after) or not acc_before or math.isnan(acc_before):
        return None
    return (acc_after - asr_after) / acc_before


def base_row(row: Mapping[str, Any], method: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Identity fields of a result row, valid even when the method or config is wrong."""
    out = {k: row.get(k) for k in ("round", "model_id", "task", "architecture", "num_classes", "poisoned",
                                   "training_wall_time_s")}
    out.update(method=method, host=socket.gethostname(), package_version=package_version(), status="error")
    try:
        out.update(config_hash=config_hash(method, overrides), config_json=config_json(method, overrides, row.get("task")))
    except KeyError:
        out.update(config_hash="invalid", config_json=json.dumps({"method": method, **dict(overrides or {})}))
    return out


def process_model(row: Mapping[str, Any], method: str = "seam", overrides: Mapping[str, Any] | None = None,
                  save_path: str | None = None, device: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Repair one manifest row and return its result row (status ok or error; never raises for the model)."""
    wall = time.perf_counter()
    result = base_row(row, method, overrides)
    dev = torch.device(device) if device else default_device()
    result["device"] = str(dev)
    # CPU kernels split their sums by thread count, so a row is reproducible only with the same count
    result["torch_threads"] = torch.get_num_threads()
    timings = {"seconds_load": 0.0, "seconds_eval": 0.0}
    try:
        if row.get("problems"):
            raise ModelInputError("; ".join(row["problems"]))
        spec, cfg = get_method(method), method_config(method, overrides, row["task"])
        task = adapter_for(row["task"])
        t0 = time.perf_counter()
        model = load_model(row["model_file"], dev)
        clean = task.load_clean(row["clean_example_dir"], row)
        repair_data, evals = split_eval(task, row, clean, seed)
        timings["seconds_load"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        result["acc_before"], result["asr_before"] = measure(model, task, evals, dev)
        timings["seconds_eval"] += time.perf_counter() - t0

        def on_phase_end(phase: str, current: torch.nn.Module) -> None:
            if phase != "forget":
                return
            t = time.perf_counter()
            result["acc_forget"], result["asr_forget"] = measure(current, task, evals, dev)
            timings["seconds_eval"] += time.perf_counter() - t

        data = RepairData(task=task, num_classes=int(row["num_classes"]), clean=repair_data, device=dev, seed=seed,
                          on_phase_end=on_phase_end)
        t0 = time.perf_counter()
        eval_before = timings["seconds_eval"]
        with seeded_global_rng(seed, dev):  # dropout draws from torch's global RNG
            model, trace = spec.fn(model, data, cfg)
        result["seconds_repair"] = time.perf_counter() - t0 - (timings["seconds_eval"] - eval_before)

        t0 = time.perf_counter()
        result["acc_after"], result["asr_after"] = measure(model, task, evals, dev)
        timings["seconds_eval"] += time.perf_counter() - t0
        result["fid"] = _fid(result["acc_before"], result["acc_after"], result["asr_after"])
        result.update(
            acc_eval_source=evals.acc_source, asr_eval_source=evals.asr_source, n_acc_eval=len(evals.acc),
            n_asr_eval=None if evals.asr is None else len(evals.asr),
            n_forget=trace.get("n_forget"), n_recover=trace.get("n_recover"),
            epochs_forget=trace.get("epochs_forget"), epochs_recover=trace.get("epochs_recover"),
            forget_reached=trace.get("forget_reached"), recover_reached=trace.get("recover_reached"),
            seconds_forget=trace.get("seconds_forget"), seconds_recover=trace.get("seconds_recover"),
            trace_json=json.dumps(trace, default=float),
        )
        if save_path:
            result["repaired_model_path"] = str(save_model(model, save_path))
        result["status"] = "ok"
    except Exception as exc:  # one model's failure is a row, never a crashed batch
        where = f"{row.get('model_id')} ({row.get('model_file') or row.get('model_dir')})"
        result["error"] = f"{where}: {type(exc).__name__}: {exc}"
        result["trace_json"] = json.dumps({"traceback": traceback.format_exc(limit=8)})
    result.update(timings)
    result["peak_memory_mb"] = _peak_memory_mb(dev)
    result["seconds_wall"] = time.perf_counter() - wall
    result["finished_at"] = dt.datetime.now(dt.timezone.utc)
    return result
