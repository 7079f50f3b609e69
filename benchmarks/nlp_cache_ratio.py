"""Sentiment repair time per model with the round's embedding cache vs without (SEAM_EMBED_CACHE=0).

Usage: python benchmarks/nlp_cache_ratio.py ROUND [METHOD]   (a sentiment round, e.g. from seam make-round --task
sentiment; METHOD defaults to seam: `seam-adv` also embeds its insertion copies)
"""
from __future__ import annotations

import os
import sys

import torch

from manifests import scan_round
from pipeline.per_model import process_model


def main(root: str, method: str = "seam") -> None:
    torch.set_num_threads(1)
    rows = scan_round(root)
    for row in rows:  # warm the round cache (generation normally already did)
        process_model(row, method, None, device="cpu")
    means = {}
    for mode in ("cache", "nocache"):
        if mode == "nocache":
            os.environ["SEAM_EMBED_CACHE"] = "0"
        times = [process_model(row, method, None, device="cpu")["seconds_wall"] for row in rows]
        means[mode] = sum(times) / len(times)
        print(mode, "seconds per model:", [round(t, 2) for t in times], flush=True)
    print(f"ratio without/with cache: {means['nocache'] / means['cache']:.1f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
