"""Write and read manifests (Parquet, schema from ``schemas``), and summarise them."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from manifests.scan import scan_round
from schemas import MANIFEST_SCHEMA, table_from_rows


def write_manifest(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table_from_rows(rows, MANIFEST_SCHEMA), tmp)
    os.replace(tmp, path)
    return path


def load_manifest(source: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows from a manifest Parquet file, or a fresh scan when ``source`` is a round directory."""
    source = Path(source)
    if source.is_dir():
        return scan_round(source)
    return pq.read_table(source, schema=MANIFEST_SCHEMA).to_pylist()


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per task / architecture / problem, as printed by ``seam scan``."""
    problems: Counter[str] = Counter()
    for row in rows:
        for p in row["problems"]:
            problems[_problem_kind(p)] += 1
    return {
        "models": len(rows),
        "with_problems": sum(1 for r in rows if r["problems"]),
        "poisoned": sum(1 for r in rows if r["poisoned"]),
        "clean": sum(1 for r in rows if r["poisoned"] is False),
        "by_task": dict(Counter(str(r["task"]) for r in rows)),
        "by_architecture": dict(Counter(str(r["architecture"]) for r in rows)),
        "by_problem": dict(problems),
    }


def _problem_kind(problem: str) -> str:
    """Group problems by their leading words (paths and numbers differ per model)."""
    words = []
    for word in problem.split():
        if "/" in word or any(ch.isdigit() for ch in word):
            break
        words.append(word)
    return " ".join(words) or problem[:40]
