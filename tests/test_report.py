"""DuckDB views, the Table 4 report, status and query over a result store written by the store."""
from __future__ import annotations

import csv
import io
import json
import statistics

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli import app
from pipeline.store import RunStore, write_manifest_snapshot

ROWS = [  # model, arch, poisoned, status, acc_before, asr_before, acc_after, asr_after, seconds
    ("m1", "resnet18", True, "ok", 0.90, 0.95, 0.88, 0.10, 10.0),
    ("m2", "resnet18", False, "ok", 0.80, None, 0.79, None, 12.0),
    ("m3", "vgg11_bn", True, "ok", 0.70, 1.00, 0.60, 0.30, 14.0),
    ("m4", "vgg11_bn", True, "error", None, None, None, None, 1.0),
    ("m5", "vgg11_bn", True, "timeout", None, None, None, None, None),
]


@pytest.fixture()
def store(tmp_path):
    run = RunStore(tmp_path, "r9", "seam", "abc123")
    for mid, arch, poisoned, status, ab, sb, aa, sa, sec in ROWS:
        fid = (aa - sa) / ab if sa is not None else None
        run.write_row({"round": "r9", "model_id": mid, "method": "seam", "config_hash": "abc123", "status": status,
                       "architecture": arch, "poisoned": poisoned, "acc_before": ab, "asr_before": sb,
                       "acc_after": aa, "asr_after": sa, "fid": fid, "seconds_wall": sec, "attempts": 1})
    manifest = [{"round": "r9", "model_id": f"m{i}", "model_dir": f"/x/m{i}", "problems": []} for i in range(1, 8)]
    write_manifest_snapshot(tmp_path, "r9", manifest)
    return tmp_path


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_report_json_counts_and_means_match_the_rows(store):
    report = json.loads(_invoke("report", str(store), "--format", "json"))
    overall = next(r for r in report if r["architecture"] == "*")
    ok = [r for r in ROWS if r[3] == "ok"]
    ok_poisoned = [r for r in ok if r[2]]
    assert (overall["round"], overall["method"], overall["config_hash"]) == ("r9", "seam", "abc123")
    assert (overall["models"], overall["ok"], overall["error"], overall["timeout"], overall["crashed"]) == (5, 3, 1, 1, 0)
    assert overall["poisoned"] == 4
    assert overall["acc_before"] == pytest.approx(statistics.mean(r[4] for r in ok))
    assert overall["acc_after"] == pytest.approx(statistics.mean(r[6] for r in ok))
    assert overall["asr_before"] == pytest.approx(statistics.mean(r[5] for r in ok_poisoned))
    assert overall["asr_after"] == pytest.approx(statistics.mean(r[7] for r in ok_poisoned))
    assert overall["fid"] == pytest.approx(statistics.mean((r[6] - r[7]) / r[4] for r in ok_poisoned))
    assert overall["seconds_total"] == pytest.approx(sum(r[8] for r in ROWS if r[8] is not None))
    per_arch = {r["architecture"]: r for r in report if r["architecture"] != "*"}
    assert set(per_arch) == {"resnet18", "vgg11_bn"}
    assert (per_arch["vgg11_bn"]["models"], per_arch["vgg11_bn"]["ok"]) == (3, 1)
    assert per_arch["vgg11_bn"]["asr_after"] == pytest.approx(0.30)


def test_report_formats_agree(store):
    as_json = json.loads(_invoke("report", str(store), "--format", "json"))
    as_csv = list(csv.DictReader(io.StringIO(_invoke("report", str(store), "--format", "csv"))))
    markdown = _invoke("report", str(store), "--format", "markdown").splitlines()
    assert [r["architecture"] for r in as_csv] == [r["architecture"] for r in as_json]
    assert float(as_csv[0]["acc_before"]) == pytest.approx(as_json[0]["acc_before"])
    assert len(markdown) == 2 + len(as_json) and markdown[0].startswith("| round | task | method")
    assert "resnet18" in _invoke("report", str(store))


def test_report_puts_rounds_of_different_tasks_in_one_table(tmp_path):
    for rnd, task, arch, fid in (("sent", "sentiment", "GruLinear", 0.5), ("ner", "ner", "NerLinear", 0.9)):
        RunStore(tmp_path, rnd, "seam", "abc123").write_row(
            {"round": rnd, "task": task, "model_id": "m1", "method": "seam", "config_hash": "abc123", "status": "ok",
             "architecture": arch, "poisoned": True, "acc_before": 1.0, "asr_before": 1.0, "acc_after": 0.9,
             "asr_after": 0.9 - fid, "fid": fid, "seconds_wall": 1.0, "attempts": 1})
    rows = json.loads(_invoke("report", str(tmp_path), "--format", "json"))
    overall = {r["task"]: r["fid"] for r in rows if r["architecture"] == "*"}
    assert overall == pytest.approx({"ner": 0.9, "sentiment": 0.5})


def test_status_counts_pending_models_from_the_manifest(store):
    (row,) = json.loads(_invoke("status", str(store), "--format", "json"))
    assert (row["models"], row["ok"], row["error"], row["timeout"], row["pending"]) == (7, 3, 1, 1, 2)


def test_query_answers_sql_over_results_and_manifest(store):
    lines = _invoke("query", "SELECT m.model_id, r.status FROM manifest m LEFT JOIN results r USING (model_id) "
                    "ORDER BY 1", "--results", str(store), "--format", "json").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["model_id"] for r in records] == [f"m{i}" for i in range(1, 8)]
    assert [r["status"] for r in records] == ["ok", "ok", "ok", "error", "timeout", None, None]
    out = _invoke("query", "SELECT method, method_config, count(*) AS n FROM results GROUP BY ALL",
                  "--results", str(store), "--format", "csv")
    assert out.splitlines() == ["method,method_config,n", "seam,seam-abc123,5"]


def test_query_errors_are_usage_errors(store):
    result = CliRunner().invoke(app, ["query", "SELEC nonsense", "--results", str(store)])
    assert result.exit_code == 2 and "query failed" in result.stderr
    assert CliRunner().invoke(app, ["report", str(store / "missing")]).exit_code == 2


def test_older_files_with_fewer_columns_and_stray_temp_files_are_read(store):
    old = store / "round=r9" / "method=seam-abc123" / "m6.parquet"
    pq.write_table(pa.table({"model_id": ["m6"], "status": ["ok"], "acc_before": [0.5]}), old)
    (old.parent / ".m7.x.partial").write_bytes(b"half")
    records = json.loads(_invoke("report", str(store), "--format", "json"))
    assert records[0]["models"] == 6 and records[0]["ok"] == 4


def test_a_column_that_no_file_has_yet_reads_as_null(tmp_path):
    """A result root written before a column was added (every file lacks it) still answers queries on it."""
    folder = tmp_path / "round=r1" / "method=seam-abc123"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"model_id": ["m1"], "status": ["ok"], "acc_before": [0.5]}), folder / "m1.parquet")
    out = _invoke("query", "SELECT model_id, torch_threads IS NULL AS missing FROM results",
                  "--results", str(tmp_path), "--format", "csv")
    assert out == "model_id,missing\nm1,True\n"


def test_a_root_without_a_writable_cache_reads_the_row_files(store, monkeypatch):
    """Read-only result roots: no cache file, the same columns (method_config included) from the row files."""
    import pipeline.report

    def read_only(*args, **kwargs):
        raise OSError("read-only file system")

    monkeypatch.setattr(pipeline.report, "write_table_atomic", read_only)
    out = _invoke("query", "SELECT DISTINCT method, method_config FROM results", "--results", str(store), "--format", "csv")
    assert out == "method,method_config\nseam,seam-abc123\n" and not (store / "_cache").exists()


def test_empty_store_reports_nothing(tmp_path):
    assert json.loads(_invoke("report", str(tmp_path), "--format", "json")) == []
    assert _invoke("query", "SELECT count(*) AS n FROM results", "--results", str(tmp_path), "--format", "csv") == "n\n0\n"


def test_plots_are_written_per_method_config(store, tmp_path):
    _invoke("report", str(store), "--format", "json", "--plots", str(tmp_path / "plots"))
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["acc_asr_seam-abc123.png", "fid_seam-abc123.png"]
    assert all((tmp_path / "plots" / n).read_bytes()[:4] == b"\x89PNG" for n in names)


def test_report_cache_is_refreshed_when_a_row_changes(store):
    before = json.loads(_invoke("report", str(store), "--format", "json"))[0]
    assert (store / "_cache").is_dir() and not list(store.rglob("_cache/*.parquet"))
    RunStore(store, "r9", "seam", "abc123").write_row(
        {"round": "r9", "model_id": "m5", "method": "seam", "config_hash": "abc123", "status": "ok",
         "architecture": "vgg11_bn", "poisoned": True, "acc_before": 0.5, "acc_after": 0.5, "asr_after": 0.0})
    after = json.loads(_invoke("report", str(store), "--format", "json"))[0]
    assert (before["ok"], before["timeout"]) == (3, 1) and (after["ok"], after["timeout"]) == (4, 0)
    assert after["acc_before"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.5) / 4)
