"""``seam make-round --task sentiment|ner``: build a synthetic NLP round, resumably and reproducibly by seed."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipeline.synth.build_model import Reporter
from pipeline.synth.generate import RoundMismatchError, SilentReporter
from pipeline.synth_nlp.presets import resolve

OPTIONS_FILE = "make_round.json"
Builder = Callable[..., tuple[dict, list[str]]]


@dataclass(frozen=True)
class NlpRoundOptions:
    out: Path
    task: str = "sentiment"
    preset: str = "tiny"
    models: int | None = None
    seed: int = 0
    threads: int = 1


@dataclass
class NlpRoundResult:
    out: Path
    preset: Any
    configs: dict[str, dict[str, Any]]
    built: list[str]
    wall_time_sec: float


def _builders() -> dict[str, Builder]:
    from pipeline.synth_nlp.ner_round import build_ner_round
    from pipeline.synth_nlp.sentiment_round import build_sentiment_round

    return {"sentiment": build_sentiment_round, "ner": build_ner_round}


def _check_options(out: Path, options: NlpRoundOptions) -> None:
    wanted = {"task": options.task, "seed": options.seed, "preset": options.preset}
    path = out / OPTIONS_FILE
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        if {k: found.get(k) for k in wanted} != wanted:
            raise RoundMismatchError(f"{out} holds a round made with {found}, not {wanted}; use another OUT")
    else:
        path.write_text(json.dumps({**wanted, "source_tool": "seam make-round"}, indent=2), encoding="utf-8")


def make_nlp_round(options: NlpRoundOptions, reporter: Reporter | None = None) -> NlpRoundResult:
    """Build (or finish) the round; complete model folders are kept as they are."""
    import torch

    builders = _builders()
    if options.task not in builders:
        raise ValueError(f"--task {options.task}: NLP tasks are {', '.join(builders)}")
    start = time.perf_counter()
    preset = resolve(options.task, options.preset, options.models)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_options(out, options)
    torch.set_num_threads(options.threads)
    configs, built = builders[options.task](out, preset, options.seed, reporter or SilentReporter())
    return NlpRoundResult(out, preset, configs, built, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.synth_nlp OUT --task sentiment --preset bench [--models N] [--seed S]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.synth_nlp", description=main.__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--task", choices=sorted(_builders()), default="sentiment")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--models", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    result = make_nlp_round(NlpRoundOptions(args.out, args.task, args.preset, args.models, args.seed, args.threads),
                            PrintReporter())
    ok = sum(bool(c.get("gate_passed")) for c in result.configs.values())
    print(f"{result.out}: {len(result.configs)} models ({len(result.built)} built now, {ok} passed the gate) "
          f"in {result.wall_time_sec:.0f} s")
    return 0


class PrintReporter:
    """One line per finished model (the CLI's rich progress is the image generator's)."""

    def start(self, model_id: str, description: str, epochs: int, attempt: int) -> None:
        print(f"{description}: training ({epochs} epochs, attempt {attempt})", flush=True)

    def epoch(self, model_id: str, done: int, epochs: int, loss: float) -> None:
        pass

    def finish(self, model_id: str, config: dict[str, Any]) -> None:
        print(f"{model_id}: acc {config['final_clean_data_test_acc']} asr {config['final_triggered_data_test_acc']} "
              f"gate {'passed' if config['gate_passed'] else 'FAILED ' + '; '.join(config['gate_failures'])}", flush=True)
