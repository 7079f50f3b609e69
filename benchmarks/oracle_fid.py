"""The FID ceiling of a round: what a repair would score if it turned a poisoned model into a clean one.

    python benchmarks/oracle_fid.py ROUND [--limit-clean N]

For every poisoned model, each clean model of the same round stands in for a perfect repair and is
measured on the poisoned model's own evaluation sets (the sets `seam run` uses), provided it has the
same classes (rounds 4-style image rounds draw each model's own sign classes, `class_foregrounds` in
config.json: there only clean models with the same list qualify, usually none): FID =
(ACC_clean_model - ASR_clean_model) / ACC_before. A clean model's "ASR" is its natural error rate on
triggered source-class inputs, which no repair can go below, so the mean is the ceiling a bar on mean
FID should be read against. A diagnostic: it reads ground truth (which models are clean).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from manifests.io import load_manifest
from pipeline.model_loading import load_model
from pipeline.per_model import measure, split_eval
from pipeline.tasks import adapter_for


def class_identity(row: dict) -> str | None:
    """What defines the model's classes beyond their count: the sign list of per-model image classes."""
    config = Path(row["model_dir"]) / "config.json"
    value = json.loads(config.read_text()).get("class_foregrounds") if config.is_file() else None
    return None if value is None else str(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("round")
    ap.add_argument("--limit-clean", type=int, help="use only the first N clean models as stand-ins")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dev = torch.device("cpu")
    rows = [r for r in load_manifest(args.round) if not r.get("problems")]
    clean_rows = [r for r in rows if not r["poisoned"]][: args.limit_clean]
    if not clean_rows:
        raise SystemExit(f"{args.round}: no clean model to stand in for a perfect repair")
    task = adapter_for(rows[0]["task"])
    models = [(class_identity(r), load_model(r["model_file"], dev).eval()) for r in clean_rows]
    means = []
    for row in (r for r in rows if r["poisoned"]):
        classes = class_identity(row)
        stand_ins = [model for identity, model in models if identity == classes]
        if not stand_ins:
            print(f"{row['model_id']}: no clean model of the round has its classes; no ceiling", flush=True)
            continue
        _, evals = split_eval(task, row, task.load_clean(row["clean_example_dir"], row), 0)
        acc_before, asr_before = measure(load_model(row["model_file"], dev).eval(), task, evals, dev)
        fids, asrs = [], []
        for model in stand_ins:
            acc, asr = measure(model, task, evals, dev)
            fids.append((acc - asr) / acc_before)
            asrs.append(asr)
        means.append(statistics.mean(fids))
        print(f"{row['model_id']} {row['architecture']} {row.get('trigger_type')}: ACC before {acc_before:.3f} "
              f"ASR before {asr_before:.3f} | {len(stand_ins)} clean stand-ins: ASR {statistics.mean(asrs):.3f} "
              f"oracle FID {means[-1]:.3f} ({min(fids):.3f}..{max(fids):.3f})", flush=True)
    if not means:
        raise SystemExit(f"{args.round}: no poisoned model shares its classes with a clean model")
    print(f"{args.round}: {len(means)} poisoned with a ceiling, {len(models)} clean models, "
          f"mean oracle FID {statistics.mean(means):.3f}, min {min(means):.3f}")


if __name__ == "__main__":
    main()
