"""Result store: one Parquet file per (round, method-config, model), written atomically.

Layout (DESIGN.md "Result store")::

    ROOT/round=<r>/method=<m>-<cfghash>/<model_id>.parquet     one result row
    ROOT/round=<r>/method=<m>-<cfghash>/repaired/<model_id>.pt  repaired model (--save-models)
    ROOT/manifest/round=<r>/manifest.parquet                    manifest snapshot of the last run

Every file appears under its final name only complete: it is written to a temp name that does not
end in ``.parquet`` (DuckDB's ``**/*.parquet`` glob matches dot-files) and then renamed, so a driver
killed mid-write leaves at most a ``*.partial`` file that no reader sees. The driver is the single
writer of result rows; resume is a directory listing.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow.parquet as pq

from schemas import FAILED_STATUSES, MANIFEST_SCHEMA, RESULT_SCHEMA, table_from_rows

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
RESULTS_GLOB = "round=*/method=*/*.parquet"
MANIFEST_GLOB = "manifest/round=*/*.parquet"


def safe_name(value: str) -> str:
    """A path component that cannot escape its folder or break hive partitioning ('/', '=', spaces)."""
    cleaned = _UNSAFE.sub("_", str(value)).lstrip(".")
    return cleaned or "_"


def write_table_atomic(table: Any, path: Path) -> Path:
    """Write a pyarrow table to ``path`` via a ``.partial`` temp file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".partial")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


@dataclass(frozen=True)
class RunStore:
    """The folder of one (round, method, config) partition of a result root."""

    root: Path
    round: str
    method: str
    config_hash: str

    @property
    def folder(self) -> Path:
        return self.root / f"round={safe_name(self.round)}" / f"method={safe_name(self.method)}-{self.config_hash}"

    def row_path(self, model_id: str) -> Path:
        return self.folder / f"{safe_name(model_id)}.parquet"

    def model_path(self, model_id: str) -> Path:
        """Where the repaired model goes; the worker writes it atomically (pipeline.model_loading.save_model)."""
        return self.folder / "repaired" / f"{safe_name(model_id)}.pt"

    def write_row(self, row: Mapping[str, Any]) -> Path:
        return write_table_atomic(table_from_rows([row], RESULT_SCHEMA), self.row_path(str(row["model_id"])))

    def done(self) -> set[str]:
        """File stems of models that already have a (terminal) row: the resume set, by listing only."""
        if not self.folder.is_dir():
            return set()
        return {p.stem for p in self.folder.glob("*.parquet")}

    def statuses(self) -> dict[str, str]:
        """Stem -> status of every stored row (reads one column per file; used by --retry-failed)."""
        out: dict[str, str] = {}
        for path in sorted(self.folder.glob("*.parquet")) if self.folder.is_dir() else []:
            out[path.stem] = pq.read_table(path, columns=["status"]).column(0)[0].as_py()
        return out

    def todo(self, model_ids: Iterable[str], retry_failed: bool = False) -> tuple[list[str], list[str]]:
        """(models still to run, skipped models whose stored row is a failure).

        Still to run: models without a row, plus failed ones under ``retry_failed``.
        """
        model_ids = list(model_ids)
        status = self.statuses()
        rerun = (None, *FAILED_STATUSES) if retry_failed else (None,)
        todo = [m for m in model_ids if status.get(safe_name(m)) in rerun]
        queued = set(todo)
        failed = [m for m in model_ids if m not in queued and status.get(safe_name(m)) in FAILED_STATUSES]
        return todo, failed

def write_manifest_snapshot(root: Path, round_name: str, rows: list[Mapping[str, Any]]) -> Path:
    """Keep the manifest a run used next to its results, so ``status``/``report`` can join on it."""
    path = root / "manifest" / f"round={safe_name(round_name)}" / "manifest.parquet"
    return write_table_atomic(table_from_rows(rows, MANIFEST_SCHEMA), path)


def clean_partials(root: Path) -> int:
    """Delete temp files a killed writer left behind; returns how many."""
    count = 0
    for path in Path(root).rglob("*.partial"):
        path.unlink(missing_ok=True)
        count += 1
    return count
