"""Clean sentiment models' test accuracy by how strongly the two lexicons confirm each test review.

    python benchmarks/sentiment_acc_by_margin.py ROUND

Asks whether a stricter lexicon filter on the test reviews (the generator keeps GI >= 2 and VADER >= 0.7)
would make the round's heads read more accurate, and so raise the FID ceiling. A diagnostic: it reads
ground truth (which models are clean) and the held-out test folders.
"""
from __future__ import annotations

import argparse
import functools
import statistics
from pathlib import Path

import torch

from manifests.examples import list_examples
from manifests.io import load_manifest
from pipeline.model_loading import load_model
from pipeline.synth_nlp import rt_data
from pipeline.tasks import adapter_for

FILTERS = ((2, 0.7), (3, 0.7), (3, 0.85), (4, 0.7), (4, 0.85))  # (GI margin, VADER minimum)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("round")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [r for r in load_manifest(args.round) if not r.get("problems") and not r["poisoned"]]
    if not rows or rows[0]["task"] != "sentiment":
        raise SystemExit(f"{args.round}: needs a sentiment round with clean models")
    task = adapter_for("sentiment")
    folder = rt_data.data_dir()
    pos, neg = rt_data.read_lexicon(folder)
    vader = rt_data.vader_scorer()

    @functools.cache  # models of a round share test reviews: score each text once
    def scores(text: str) -> tuple[int, float]:
        return rt_data.lexicon_score(text, pos, neg), vader(text)

    pairs: list[tuple[int, float, int]] = []  # (GI agreement, VADER agreement, correct)
    for row in rows:
        test_dir = Path(row["model_dir"]) / "clean_test_data"
        _, examples = list_examples(test_dir)
        split = task.load_clean(str(test_dir), row)
        with torch.no_grad():
            pred = task.logits(load_model(row["model_file"], torch.device("cpu")).eval(), split.inputs).argmax(-1)
        for example, p in zip(examples, pred.tolist()):
            text = Path(example.path).read_text(encoding="utf-8").strip()
            sign = 1 if example.label else -1
            gi, vd = scores(text)
            pairs.append((sign * gi, sign * vd, int(p == example.label)))
        print(f"{row['model_id']}: clean test ACC {float((pred == split.labels).float().mean()):.3f}", flush=True)
    for gi, vd in FILTERS:
        kept = [ok for g, v, ok in pairs if g >= gi and v >= vd]
        if kept:
            print(f"GI >= {gi}, VADER >= {vd}: {len(kept)} (model, review) pairs, ACC {statistics.mean(kept):.3f}")


if __name__ == "__main__":
    main()
