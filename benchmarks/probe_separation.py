"""Does seam-adv's NER probe tell poisoned models from clean ones? The probe alone, no repair.

    python benchmarks/probe_separation.py ROUND [--seed N ...] [--variant NAME:KEY=VALUE,...] [--models all]
        [--ids id-00000000 ...] [--out FILE.jsonl]

For each NER model, exactly what ``seam-adv`` runs before forgetting (``token_adversary``: the real-token
phrase searched on the original model over the clean repair split that repair seed N draws) and the flip
rate that decides whether the phrase is held. The ground-truth trigger is printed beside it for this
report only. The summary gives, per variant, how many poisoned models would hold a phrase, the clean
models' highest flip rate (the room the threshold has) and the probe's seconds: a probe variant can be
screened on every model of a round in a fraction of a repair's time.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from manifests.io import load_manifest
from pipeline.bench import MODEL_FILTERS, JsonLines, parse_variant
from pipeline.methods.recovery_adversary import token_adversary
from pipeline.methods.token_adversary import entity_type
from pipeline.model_loading import load_model
from pipeline.per_model import split_eval
from pipeline.registry import method_config
from pipeline.tasks import RepairData, adapter_for


def probe_row(row: dict, overrides: dict, seed: int) -> dict:
    """The probe's outcome on one model, as ``seam-adv`` would draw it with repair seed ``seed``."""
    device = torch.device("cpu")
    task = adapter_for(row["task"])
    model = load_model(row["model_file"], device)
    repair_data, _ = split_eval(task, row, task.load_clean(row["clean_example_dir"], row), seed)
    cfg = method_config("seam-adv", {"adv_token_search": "probe", **overrides}, row["task"])
    trace: dict = {}
    token_adversary(model, RepairData(task=task, num_classes=int(row["num_classes"]), clean=repair_data,
                                      device=device, seed=seed), cfg, trace)
    return {"model_id": row["model_id"], "poisoned": bool(row.get("poisoned")), "trigger": row.get("trigger_text") or "",
            "seed": seed,
            "phrase": trace.get("adv_phrase_warmup"), "flip": trace.get("adv_phrase_flip_warmup"),
            "flips": trace.get("adv_phrase_flip_restarts"), "held": trace.get("adv_phrase_held"),
            "type": trace.get("adv_phrase_type_warmup"), "source_types": source_types(row),
            "seconds": round(trace.get("seconds_adv_probe", 0.0), 1)}


def source_types(row: dict) -> list[int]:
    """The trigger's source entity types as a per-type probe numbers them: report only."""
    return sorted(set(entity_type(torch.tensor(row.get("source_classes") or [], dtype=torch.long)).tolist()))


def summary(name: str, rows: list[dict]) -> str:
    poisoned = [r for r in rows if r["poisoned"]]
    clean = [r for r in rows if not r["poisoned"]]
    clean_max = max((r["flip"] or 0.0 for r in clean), default=float("nan"))
    poisoned_min = min((r["flip"] or 0.0 for r in poisoned), default=float("nan"))
    return (f"| {name} | {sum(bool(r['held']) for r in poisoned)}/{len(poisoned)} | {poisoned_min:.3f} | "
            f"{sum(bool(r['held']) for r in clean)}/{len(clean)} | {clean_max:.3f} | "
            f"{statistics.mean(r['seconds'] for r in rows):.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("round")
    ap.add_argument("--seed", type=int, action="append", help="repair seeds (default 0); each draws its own split")
    ap.add_argument("--variant", action="append", help="NAME:KEY=VALUE,... seam-adv overrides (default: as is)")
    ap.add_argument("--models", choices=("all", "poisoned", "clean"), default="all")
    ap.add_argument("--ids", nargs="*", help="only these model ids")
    ap.add_argument("--out", type=Path, help="append one JSON line per model and variant")
    args = ap.parse_args()
    rows = [r for r in load_manifest(args.round) if not r["problems"] and r["task"] == "ner"
            and MODEL_FILTERS[args.models](r) and (not args.ids or r["model_id"] in args.ids)]
    lines = ["| variant | poisoned held | poisoned min flip | clean held | clean max flip | probe s |",
             "|---|---|---|---|---|---|"]
    with JsonLines(args.out) as sink:
        for text in args.variant or ["default:"]:
            name, overrides = parse_variant(text, "seam-adv")
            results = []
            for seed in args.seed or [0]:
                for row in rows:
                    results.append({"variant": name, **probe_row(row, overrides, seed)})
                    print(json.dumps(results[-1]), flush=True)
                    sink.write(results[-1])
            lines.append(summary(name, results))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
