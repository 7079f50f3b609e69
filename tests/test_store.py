"""Result store: atomic one-row files, resume listing, --retry-failed selection."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from pipeline import store as store_mod
from pipeline.store import RunStore, clean_partials, safe_name
from schemas import RESULT_SCHEMA


def _row(model_id: str, status: str, **extra) -> dict:
    return {"round": "r9", "model_id": model_id, "method": "seam", "config_hash": "abc123", "status": status,
            "attempts": 1, **extra}


def test_row_round_trips_with_the_result_schema(tmp_path):
    run = RunStore(tmp_path, "r9", "seam", "abc123")
    path = run.write_row(_row("id-00000001", "ok", acc_before=0.9))
    assert path == tmp_path / "round=r9" / "method=seam-abc123" / "id-00000001.parquet"
    table = pq.read_table(path)
    assert table.schema.equals(RESULT_SCHEMA, check_metadata=True)
    assert table.to_pylist()[0]["acc_before"] == 0.9
    assert list(tmp_path.rglob("*.partial")) == []


def test_failed_write_leaves_neither_row_nor_temp_file(tmp_path, monkeypatch):
    run = RunStore(tmp_path, "r9", "seam", "abc123")

    def broken(table, where, **kw):
        open(where, "wb").write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(store_mod.pq, "write_table", broken)
    with pytest.raises(OSError):
        run.write_row(_row("id-00000001", "ok"))
    assert not run.row_path("id-00000001").exists()
    assert list(tmp_path.rglob("*")) == [run.folder.parent, run.folder]


def test_rewriting_a_row_replaces_it(tmp_path):
    run = RunStore(tmp_path, "r9", "seam", "abc123")
    run.write_row(_row("id-00000001", "crashed"))
    run.write_row(_row("id-00000001", "ok"))
    assert run.statuses() == {"id-00000001": "ok"}
    assert len(list(run.folder.glob("*.parquet"))) == 1


def test_todo_skips_terminal_rows_and_retry_failed_reruns_failures(tmp_path):
    run = RunStore(tmp_path, "r9", "seam", "abc123")
    for model_id, status in [("a", "ok"), ("b", "error"), ("c", "crashed"), ("d", "timeout")]:
        run.write_row(_row(model_id, status))
    ids = ["a", "b", "c", "d", "e"]
    todo, failed = run.todo(ids)
    assert (todo, failed) == (["e"], ["b", "c", "d"])
    todo, failed = run.todo(ids, retry_failed=True)
    assert (todo, failed) == (["b", "c", "d", "e"], [])
    assert RunStore(tmp_path, "r9", "seam", "other").todo(ids) == (ids, [])


def test_partition_names_cannot_escape_or_break_hive_keys(tmp_path):
    run = RunStore(tmp_path, "../r=1", "seam", "abc")
    path = run.row_path("x/../y")
    assert path.parent.parent.parent == tmp_path
    assert "/" not in safe_name("a/b") and "=" not in safe_name("a=b") and not safe_name("..").startswith(".")


def test_clean_partials_removes_only_temp_files(tmp_path):
    run = RunStore(tmp_path, "r9", "seam", "abc123")
    run.write_row(_row("a", "ok"))
    (run.folder / ".b.xyz.partial").write_bytes(b"junk")
    assert clean_partials(tmp_path) == 1
    assert [p.name for p in run.folder.iterdir()] == ["a.parquet"]
