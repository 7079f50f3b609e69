"""Make an N-model round for the scale benchmark by replicating an existing round's model folders.

    python benchmarks/scale_round.py SRC_ROUND OUT_ROUND --models 1000

Training 1,000 models would measure the generator, not the pipeline: this hard-links (or copies,
across file systems) the source models round-robin under new ids ``id-00000000`` ... so that
``seam run`` sees N independent model folders in the real TrojAI layout.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path


def _link_tree(src: Path, dst: Path) -> None:
    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link)


def replicate(src: Path, out: Path, models: int) -> list[str]:
    sources = sorted(p for p in src.iterdir() if p.is_dir() and p.name.startswith("id-"))
    if not sources:
        raise SystemExit(f"{src}: no id-* model folders")
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(models):
        dst = out / f"id-{i:08d}"
        if not dst.exists():
            _link_tree(sources[i % len(sources)], dst)
        made.append(dst.name)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--models", type=int, default=1000)
    args = parser.parse_args()
    print(f"{len(replicate(args.src, args.out, args.models))} model folders in {args.out}")


if __name__ == "__main__":
    main()
