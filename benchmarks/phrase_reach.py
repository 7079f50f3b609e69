"""How far do the NER adversaries push the *original* models? A diagnostic, not a repair.

    python benchmarks/phrase_reach.py ROUND [--models all|poisoned|clean] [--epochs 10] [--tokens 3]
        [--candidates 4] [--ids id-00000000 ...]

For each NER model, the discrete phrase search (``PhraseSearch``, real vocabulary tokens) and the soft
phrase (``TokenAdversary``) climb on the clean example folder; then each is inserted at a random word
position of the clean test sentences and the share of entity words labelled as *another* entity type
is printed beside the ground-truth trigger (read only for this report). An adversary that targets the
backdoor flips much more on poisoned models than on clean ones.
"""
from __future__ import annotations

import argparse
import json

import torch

from manifests.io import load_manifest
from pipeline.methods.adversarial import warm_up
from pipeline.methods.token_adversary import PhraseSearch, TokenAdversary
from pipeline.model_loading import load_model
from pipeline.tasks import adapter_for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("round")
    ap.add_argument("--models", default="all", choices=("all", "poisoned", "clean"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--ids", nargs="*", help="only these model ids (default: every model the --models filter keeps)")
    args = ap.parse_args()
    torch.manual_seed(0)
    for row in load_manifest(args.round):
        if args.models != "all" and bool(row.get("poisoned")) != (args.models == "poisoned"):
            continue
        if args.ids and row["model_id"] not in args.ids:
            continue
        task = adapter_for(row["task"])
        model = load_model(row["model_file"], torch.device("cpu")).eval()
        clean = task.load_clean(row["clean_example_dir"], row)
        test = task.load_clean(row.get("clean_test_dir") or row["clean_example_dir"], row)
        c = int(row["num_classes"])
        search = PhraseSearch(model, 1.0, torch.Generator().manual_seed(1), args.tokens, "type", c,
                              task.insertable_ids(), args.candidates)
        soft = TokenAdversary(model, 0.1, 1.0, torch.Generator().manual_seed(1), args.tokens, objective="type",
                              num_classes=c)
        for adversary in (search, soft):
            warm_up(adversary, model, task, clean, args.epochs, 32, torch.device("cpu"), torch.Generator().manual_seed(2))
        triggers = json.loads(row.get("triggers_json") or "null") or [{}]
        executor = triggers[0].get("trigger_executor") or {}
        text = triggers[0].get("text") or executor.get("trigger_text") or " ".join(executor.get("trigger_text_list") or [])
        print(f"{row['model_id']} poisoned={bool(row.get('poisoned'))} trigger={text!r} "
              f"phrase={task.decode(search.ids.tolist())!r} swaps={search.swaps} "
              f"flip discrete {search.flip_rate(task, test, torch.device('cpu')):.2f} "
              f"soft {soft.flip_rate(task, test, torch.device('cpu')):.2f}", flush=True)


if __name__ == "__main__":
    main()
