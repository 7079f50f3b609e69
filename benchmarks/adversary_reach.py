"""Where do the recovery adversaries send clean images on the *original* model? A diagnostic, not a repair.

    python benchmarks/adversary_reach.py ROUND MODEL_ID [MODEL_ID ...] [--epochs 5] [--areas 0.1,0.2]

For each image model: the untargeted patch ascent (each area) and the L-inf 0.1 change climb the loss
on the clean example folder for a few epochs, then the three classes the changed examples are most
often predicted as are printed beside the attacker's target class (ground truth, read only for this
report). A backdoor is a universal shortcut, so when an adversary finds it the target dominates.
"""
from __future__ import annotations

import argparse
import collections
import json

import torch

from manifests.io import load_manifest
from pipeline.methods.adversarial import PatchAdversary, UniversalAdversary
from pipeline.model_loading import load_model
from pipeline.tasks import adapter_for


def reach(model, task, clean, adversary, apply, epochs: int) -> list[tuple[int, float]]:
    """Climb ``adversary`` on ``clean`` for ``epochs``; the 3 most predicted classes of the changed examples."""
    for epoch in range(epochs):
        for x, y in task.batches(clean, clean.labels, 32, torch.device("cpu"), torch.Generator().manual_seed(epoch), True):
            adversary(x, None, y)
    with torch.no_grad():
        preds = torch.cat([task.logits(model, apply(x)).argmax(-1)
                           for x, _ in task.batches(clean, clean.labels, 64, torch.device("cpu"), None, False)])
    return [(k, round(v / len(preds), 2)) for k, v in collections.Counter(preds.tolist()).most_common(3)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("round")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--areas", default="0.1,0.2", help="patch areas (shares of the image), comma-separated")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = {r["model_id"]: r for r in load_manifest(args.round)}
    for model_id in args.models:
        row = rows[model_id]
        task = adapter_for(row["task"])
        model = load_model(row["model_file"], torch.device("cpu")).eval()
        clean = task.load_clean(row["clean_example_dir"], row)
        sources = [t.get("source_class") for t in json.loads(row.get("triggers_json") or "[]")]
        print(f"{model_id} {row['architecture']} trigger {row.get('trigger_type')} target {row.get('target_class')} "
              f"sources {sources}", flush=True)
        for area in (float(a) for a in args.areas.split(",")):
            patch = PatchAdversary(model, task, area, 1.0, torch.Generator().manual_seed(0))
            top = reach(model, task, clean, patch, lambda x, p=patch: p.paste(x, p.pattern), args.epochs)
            print(f"  patch {area:.2f}: {top}", flush=True)
        linf = UniversalAdversary(model, task, 0.1)
        print(f"  linf 0.10:  {reach(model, task, clean, linf, lambda x: linf.apply(x, linf.params), args.epochs)}",
              flush=True)


if __name__ == "__main__":
    main()
