"""``seam make-round``: build a whole synthetic TrojAI round, resumably and reproducibly by seed."""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.synth.build_model import Reporter, build_model
from pipeline.synth.layout import read_config, write_root_files
from pipeline.synth.plan import plan_model
from pipeline.synth.presets import ImagePreset, resolve_preset
from pipeline.synth.sources import get_source

SUPPORTED_TASKS = ("image",)
OPTIONS_FILE = "make_round.json"


class UnsupportedTaskError(ValueError):
    """Only image rounds can be generated so far."""


class RoundMismatchError(ValueError):
    """OUT already holds a round made with other options; resuming it would mix two rounds."""


@dataclass(frozen=True)
class RoundOptions:
    """The options of one ``make-round`` call (all but ``threads`` define the round's content)."""

    out: Path
    task: str = "image"
    models: int | None = None
    seed: int = 0
    preset: str = "tiny"
    source: str = "signs"
    image_size: int | None = None
    threads: int = max(1, min(2, os.cpu_count() or 1))


@dataclass
class RoundResult:
    out: Path
    preset: ImagePreset
    configs: dict[str, dict[str, Any]]  # model id -> config.json content
    built: list[str]  # ids trained by this call (the rest were already complete)
    wall_time_sec: float


class SilentReporter:
    def start(self, model_id: str, description: str, epochs: int, attempt: int) -> None:
        pass

    def epoch(self, model_id: str, done: int, epochs: int, loss: float) -> None:
        pass

    def finish(self, model_id: str, config: dict[str, Any]) -> None:
        pass


def _check_options(out: Path, options: RoundOptions, preset: ImagePreset) -> None:
    """Record the round-defining options; refuse to resume a round made with different ones."""
    wanted = {"task": options.task, "seed": options.seed, "preset": options.preset, "source": options.source,
              "image_size": preset.image_size, "preset_digest": _digest(preset)}
    path = out / OPTIONS_FILE
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        found.setdefault("preset_digest", wanted["preset_digest"])  # rounds started before digests existed
        if {k: found.get(k) for k in wanted} != wanted:
            raise RoundMismatchError(f"{out} holds a round made with {found}, not {wanted}; use another OUT")
    else:
        path.write_text(json.dumps({**wanted, "source_tool": "seam make-round"}, indent=2), encoding="utf-8")


def _digest(preset: ImagePreset) -> str:
    """Fingerprint of everything in the preset but the model count (a changed preset must not resume)."""
    fields = {k: v for k, v in asdict(preset).items() if k != "models"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _reference_acc(configs: dict[str, dict[str, Any]], arch: str) -> float | None:
    accs = [c["final_clean_data_test_acc"] for c in configs.values()
            if not c["poisoned"] and c["model_architecture"] == arch and c.get("gate_passed")]
    return sum(accs) / len(accs) if accs else None


def make_round(options: RoundOptions, reporter: Reporter | None = None) -> RoundResult:
    """Build (or finish building) the round; complete model folders are kept as they are."""
    import torch

    if options.task not in SUPPORTED_TASKS:
        raise UnsupportedTaskError(f"--task {options.task} is not yet supported by the image round generator "
                                   f"(it makes: {', '.join(SUPPORTED_TASKS)})")
    start = time.perf_counter()
    reporter = reporter or SilentReporter()
    preset = resolve_preset(options.preset, options.source, options.models, options.image_size)
    source = get_source(options.source)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_options(out, options, preset)
    torch.set_num_threads(options.threads)
    configs: dict[str, dict[str, Any]] = {}
    built: list[str] = []
    raw: Any = None
    for index in range(preset.models):
        plan = plan_model(preset, options.seed, index)
        done = out / plan.model_id
        if (done / "config.json").is_file():
            configs[plan.model_id] = read_config(done)
            reporter.finish(plan.model_id, configs[plan.model_id])
            continue
        if raw is None:
            raw = source.load()
        ref = _reference_acc(configs, plan.architecture) if plan.poisoned else None
        configs[plan.model_id] = build_model(out, plan, preset, source, raw, options.seed, ref, reporter)
        built.append(plan.model_id)
        write_root_files(out, configs)
    others = {d.name: read_config(d) for d in out.glob("id-*") if d.name not in configs and (d / "config.json").is_file()}
    write_root_files(out, {**others, **configs})  # METADATA.csv lists every complete model folder
    return RoundResult(out, preset, configs, built, time.perf_counter() - start)


def options_dict(options: RoundOptions) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}
