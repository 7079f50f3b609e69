"""Human output of ``make-round``: a rich progress bar per model (stderr) and the ACC/ASR distribution."""
from __future__ import annotations

import statistics
from typing import Any, Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.render import table


class RichReporter:
    """One bar per model (epochs); restarts the bar on a retrain; complete models show as skipped."""

    def __init__(self, console: Console):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> "RichReporter":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, model_id: str, description: str, epochs: int, attempt: int) -> None:
        note = "" if attempt == 1 else f"retrain {attempt}"
        if model_id in self.tasks:
            self.progress.reset(self.tasks[model_id], total=epochs, note=note)
        else:
            self.tasks[model_id] = self.progress.add_task(description, total=epochs, note=note)

    def epoch(self, model_id: str, done: int, epochs: int, loss: float) -> None:
        self.progress.update(self.tasks[model_id], completed=done, note=f"loss {loss:.3f}")

    def finish(self, model_id: str, config: Mapping[str, Any]) -> None:
        note = _verdict(config)
        if model_id in self.tasks:
            self.progress.update(self.tasks[model_id], note=note)
        else:
            self.progress.add_task(f"{model_id} {config['model_architecture']} (already built)", total=1,
                                   completed=1, note=note)


def _verdict(config: Mapping[str, Any]) -> str:
    asr = config.get("final_triggered_data_test_acc")
    text = f"ACC {config['final_clean_data_test_acc']:.3f}" + ("" if asr is None else f" ASR {asr:.3f}")
    return text + ("" if config.get("gate_passed") else " GATE FAILED")


def _trigger(config: Mapping[str, Any]) -> str:
    trig = (config.get("triggers") or [None])[0]
    if not trig:
        return "-"
    option = trig.get("polygon_side_count") or str(trig.get("instagram_filter_type")).replace("FilterXForm", "")
    sources = trig["source_class"] if isinstance(trig["source_class"], list) else [trig["source_class"]]
    return f"{trig['type']}:{option} {','.join(map(str, sources))}->{trig['target_class']}"


def model_rows(configs: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    return [[mid, c["model_architecture"], "poisoned" if c["poisoned"] else "clean", _trigger(c),
             c["final_clean_data_test_acc"], c.get("final_triggered_data_test_acc"), c.get("gate_passed"),
             c.get("gate_attempts"), c.get("training_wall_time_sec")] for mid, c in sorted(configs.items())]


def _stats(values: list[float]) -> list[Any]:
    if not values:
        return [0, None, None, None, None]
    return [len(values), min(values), statistics.median(values), statistics.mean(values), max(values)]


def distribution_rows(configs: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    """min / median / mean / max of ACC (clean and poisoned models) and ASR, overall and per architecture."""
    groups: dict[str, list[Mapping[str, Any]]] = {"all": list(configs.values())}
    for c in configs.values():
        groups.setdefault(c["model_architecture"], []).append(c)
    rows = []
    for name, cs in groups.items():
        clean = [c["final_clean_data_test_acc"] for c in cs if not c["poisoned"]]
        pacc = [c["final_clean_data_test_acc"] for c in cs if c["poisoned"]]
        asr = [c["final_triggered_data_test_acc"] for c in cs if c["poisoned"]]
        for metric, values in (("ACC clean models", clean), ("ACC poisoned models", pacc), ("ASR", asr)):
            rows.append([name, metric, *_stats(values)])
    return rows


def print_summary(configs: Mapping[str, Mapping[str, Any]], built: list[str], wall: float, console: Console) -> None:
    console.print(table("models", ["model", "architecture", "kind", "trigger", "ACC", "ASR", "gate", "attempts",
                                   "train s"], model_rows(configs)))
    console.print(table("ACC / ASR distribution (held-out test data)",
                        ["group", "metric", "n", "min", "median", "mean", "max"], distribution_rows(configs)))
    failed = sum(1 for c in configs.values() if not c.get("gate_passed"))
    console.print(f"{len(configs)} models ({len(built)} built now, {len(configs) - len(built)} already complete), "
                  f"{failed} failing the quality gate; {wall:.0f} s")
