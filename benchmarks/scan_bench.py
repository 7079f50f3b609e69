"""Time ``seam scan`` over a generated round of many model folders (issue 2: 2,000 folders < 10 s).

Usage (from the repository root, so that ``tests.roundfixtures`` imports):
    python -m benchmarks.scan_bench [--models 2000] [--dir bench-out/scan-round] [--keep]

The round is round-4 shaped (jsonpickle config.json, ground_truth.csv, a tiny real ``model.pt``,
clean and, for poisoned models, poisoned example PNGs), so the scanner does its full per-model work.
The timed command is the real console script in a fresh process, as a user would run it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests import roundfixtures as rf


def generate(root: Path, n_models: int, n_classes: int = 3, per_class: int = 2) -> None:
    """Write ``n_models`` folders; the model and PNG bytes are made once and copied."""
    root.mkdir(parents=True, exist_ok=True)
    model_path = rf.save_pickle(torch.nn.Linear(4, n_classes), root / ".tiny-model.pt")
    model_bytes = model_path.read_bytes()
    model_path.unlink()
    png = rf.png_bytes(8)
    for i in range(n_models):
        mdir = root / rf.model_id(i)
        poisoned = i % 2 == 1
        mdir.mkdir(exist_ok=True)
        (mdir / "model.pt").write_bytes(model_bytes)
        rf.write_ground_truth(mdir, poisoned)
        rf.write_json(mdir / "config.json", rf.r4_config(poisoned, n_classes, per_class, 0, n_classes - 1))
        rf.write_images(mdir / "clean_example_data", rf.clean_image_names(n_classes, per_class), png)
        if poisoned:
            rf.write_images(mdir / "poisoned_example_data", rf.poisoned_image_names([0], per_class), png)


def time_scan(root: Path) -> tuple[float, dict]:
    seam = shutil.which("seam")
    cmd = [seam, "scan", str(root), "--json"] if seam else [sys.executable, "-m", "cli", "scan", str(root), "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"seam scan failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed, json.loads(proc.stdout)["summary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=Path("bench-out/scan-round"))
    parser.add_argument("--keep", action="store_true", help="keep the generated round")
    args = parser.parse_args()
    if args.dir.exists():
        shutil.rmtree(args.dir)
    start = time.perf_counter()
    generate(args.dir, args.models)
    print(f"generated {args.models} model folders in {time.perf_counter() - start:.1f} s under {args.dir}")
    elapsed, summary = time_scan(args.dir)
    assert summary["models"] == args.models and summary["with_problems"] == 0, summary
    print(f"seam scan: {summary['models']} models ({summary['poisoned']} poisoned) in {elapsed:.2f} s "
          f"({1000 * elapsed / args.models:.2f} ms/model, process start included) -> "
          f"{'PASS' if elapsed < 10 else 'FAIL'} (budget 10 s)")
    if not args.keep:
        shutil.rmtree(args.dir)


if __name__ == "__main__":
    main()
