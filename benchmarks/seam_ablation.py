"""SEAM ablation: each ingredient switched on alone, same round, same seed, blind stopping throughout.

    python benchmarks/seam_ablation.py ROUND [--limit N] [--models poisoned|clean|all] [--method seam-adv]
        [--seed N] [--variant NAME:KEY=VALUE,KEY=VALUE ...] [--out FILE.jsonl]

Prints a markdown table: mean/min FID and ASR after repair over the poisoned models, mean ACC drop
over the clean models, mean repair seconds. Without --variant, the built-in list below is measured.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from manifests.io import load_manifest
from pipeline.bench import MODEL_FILTERS, JsonLines, parse_variant, summarize
from pipeline.per_model import process_model

DEFAULT_VARIANTS = (
    "textbook:",
    "overlap:disjoint=false",
    "bn-eval:bn_mode=eval",
    "bn-recalibrate:bn_mode=recalibrate",
    "distill:distill_weight=1.0",
    "gentle-forget:forget_lr=0.001",
    "gentle-recover:recover_lr=0.001",
    "freeze-30%:freeze_fraction=0.3,bn_mode=recalibrate",
    "reset-head:reset_head=true",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("round")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--variant", action="append")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--models", choices=("all", "poisoned", "clean"), default="all",
                    help="screen on the poisoned models only (FID), or the clean ones only (ACC drop)")
    ap.add_argument("--method", default="seam", help="the registered method the variants' overrides apply to")
    ap.add_argument("--seed", type=int, default=0, help="repair seed (outcomes vary with it: screen on more than one)")
    args = ap.parse_args()
    rows = [r for r in load_manifest(args.round) if not r["problems"] and MODEL_FILTERS[args.models](r)][: args.limit]
    lines = ["| variant | overrides | poisoned | mean FID | min FID | mean ASR after | clean | mean ACC drop | repair s |",
             "|---|---|---|---|---|---|---|---|---|"]
    with JsonLines(args.out) as sink:
        for name, overrides in (parse_variant(v, args.method) for v in args.variant or DEFAULT_VARIANTS):
            results = []
            for row in rows:
                results.append(process_model(row, args.method, overrides, seed=args.seed))
                sink.write({"variant": name, "seed": args.seed, "base_method": args.method, **results[-1]})
            s = summarize(results)[0]
            n_poisoned = sum(1 for r in results if r["poisoned"] and r["status"] == "ok")
            lines.append(f"| {name} | {json.dumps(overrides)} | {n_poisoned} | {_f(s['fid_mean'])} | {_f(s['fid_min'])} | "
                         f"{_f(s['asr_after'])} | {s['models'] - n_poisoned} | {_f(s['clean_acc_drop'])} | "
                         f"{_f(s['seconds_repair'], 1)} |")
            print(lines[-1], flush=True)
    print("\n".join(lines))


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
