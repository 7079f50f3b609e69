"""`seam run --backend local` on the real tiny round: rows, resume, report, faults, SIGKILL + rerun."""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli import app
from manifests import scan_round
from manifests.io import write_manifest
from pipeline.model_loading import load_model
from tests.faultfiles import copy_round, plant_malicious_model, truncate_model

pytestmark = pytest.mark.slow
FAST = ["--set", "max_forget_epochs=5", "--set", "max_recover_epochs=3"]  # real SEAM, capped epochs


def rows_by_model(results: Path) -> dict[str, dict]:
    rows = [pq.read_table(p).to_pylist()[0] for p in sorted(results.glob("round=*/method=*/*.parquet"))]
    by_id = {r["model_id"]: r for r in rows}
    assert len(by_id) == len(rows), "a model has more than one row"
    return by_id


def model_ids(round_dir: Path) -> list[str]:
    return sorted(p.name for p in round_dir.glob("id-*"))


def seam(*args: str):
    return CliRunner().invoke(app, list(args))


def test_local_run_rows_report_and_resume(tiny_image_round, tmp_path):
    results = tmp_path / "results"
    args = ["run", str(tiny_image_round), "--results", str(results), "--backend", "local", "--json",
            "--save-models", *FAST]
    first = seam(*args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    rows = rows_by_model(results)
    assert sorted(rows) == model_ids(tiny_image_round)
    assert (summary["ran"], summary["failed"], summary["skipped"]) == (4, 0, 0)
    for row in rows.values():
        assert (row["status"], row["attempts"], row["method"]) == ("ok", 1, "seam")
        assert row["config_hash"] == summary["config_hash"] and row["finished_at"] is not None
        assert 0.0 <= row["acc_before"] <= 1.0 and 0.0 <= row["acc_after"] <= 1.0
        assert row["seconds_wall"] >= row["seconds_load"] + row["seconds_repair"] + row["seconds_eval"] - 1e-6
        saved = Path(row["repaired_model_path"])
        assert saved.parent.parent == results / f"round={row['round']}" / f"method=seam-{row['config_hash']}"
        assert load_model(saved).training is False  # a loadable whole-model pickle, beside the rows
    assert not list(results.rglob("*.partial")) and not list(results.rglob(".*tmp*"))

    report = json.loads(seam("report", str(results), "--format", "json").stdout)
    overall = next(r for r in report if r["architecture"] == "*")
    poisoned = [r for r in rows.values() if r["poisoned"]]
    assert (overall["models"], overall["ok"], overall["poisoned"]) == (4, 4, len(poisoned))
    assert overall["acc_before"] == pytest.approx(statistics.mean(r["acc_before"] for r in rows.values()))
    assert overall["acc_after"] == pytest.approx(statistics.mean(r["acc_after"] for r in rows.values()))
    assert overall["asr_after"] == pytest.approx(statistics.mean(r["asr_after"] for r in poisoned))
    assert overall["fid"] == pytest.approx(statistics.mean(r["fid"] for r in poisoned))
    assert overall["seconds_total"] == pytest.approx(sum(r["seconds_wall"] for r in rows.values()))
    per_arch = {r["architecture"]: r["models"] for r in report if r["architecture"] != "*"}
    assert per_arch == dict(Counter(r["architecture"] for r in rows.values()))
    answer = seam("query", "SELECT count(*) AS n, count(DISTINCT model_id) AS ids FROM results",
                  "--results", str(results), "--format", "json")
    assert json.loads(answer.stdout) == {"n": 4, "ids": 4}

    mtimes = {p: p.stat().st_mtime_ns for p in results.rglob("id-*.parquet")}
    again = seam(*args)
    assert again.exit_code == 0, again.output
    assert (json.loads(again.stdout)["ran"], json.loads(again.stdout)["skipped"]) == (0, 4)
    assert {p: p.stat().st_mtime_ns for p in results.rglob("id-*.parquet")} == mtimes


def test_local_faults_get_error_rows_and_retry_failed_reruns_them(tiny_image_round, tmp_path, monkeypatch):
    round_dir = copy_round(tiny_image_round, tmp_path / "round")
    corrupt = truncate_model(round_dir / "id-00000000")
    marker = tmp_path / "pwned"
    malicious = plant_malicious_model(round_dir / "id-00000001", marker)
    monkeypatch.setenv("SEAM_FAULTS", json.dumps({"id-00000002": "raise"}))
    results = tmp_path / "results"
    args = ["run", str(round_dir), "--results", str(results), "--backend", "local", "--json", *FAST]
    result = seam(*args)
    assert result.exit_code == 1, result.output
    rows = rows_by_model(results)
    assert {m: r["status"] for m, r in rows.items()} == {
        "id-00000000": "error", "id-00000001": "error", "id-00000002": "error", "id-00000003": "ok"}
    assert str(corrupt) in rows["id-00000000"]["error"]
    assert str(malicious) in rows["id-00000001"]["error"] and "system" in rows["id-00000001"]["error"]
    assert not marker.exists(), "the malicious pickle ran its command"
    assert "injected fault" in rows["id-00000002"]["error"]

    ok_file = next(results.rglob("id-00000003.parquet"))
    ok_mtime = ok_file.stat().st_mtime_ns
    monkeypatch.delenv("SEAM_FAULTS")
    retry = seam(*args, "--retry-failed")
    assert retry.exit_code == 1, retry.output  # the two broken files still fail
    rows = rows_by_model(results)
    assert json.loads(retry.stdout)["ran"] == 3
    assert [rows[m]["status"] for m in sorted(rows)] == ["error", "error", "ok", "ok"]
    assert ok_file.stat().st_mtime_ns == ok_mtime


def test_manifest_problems_become_error_rows_without_running(tiny_image_round, tmp_path):
    rows = scan_round(tiny_image_round)
    for row in rows:
        row["problems"] = [f"clean_example_data missing in {row['model_dir']}"]
    manifest = write_manifest(rows, tmp_path / "manifest.parquet")
    result = seam("run", str(manifest), "--results", str(tmp_path / "results"), "--backend", "local", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["workers"] == 0  # no backend was started for nothing to run
    out = rows_by_model(tmp_path / "results")
    assert sorted(out) == model_ids(tiny_image_round)
    assert all(r["status"] == "error" and "clean_example_data missing" in r["error"] and r["attempts"] == 0
               for r in out.values())


def test_usage_errors_exit_2(tiny_image_round, tmp_path):
    base = ["run", str(tiny_image_round), "--results", str(tmp_path / "r")]
    assert seam("run", str(tmp_path / "nope"), "--results", str(tmp_path / "r")).exit_code == 2
    assert seam(*base, "--method", "no-such-method").exit_code == 2
    assert seam(*base, "--backend", "slurm").exit_code == 2
    assert seam(*base, "--set", "no_such_option=1").exit_code == 2
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("id-*.parquet"))


def _wait_for_rows(results: Path, driver: subprocess.Popen, more_than: int) -> None:
    deadline = time.monotonic() + 300
    while len(list(results.glob("round=*/method=*/*.parquet"))) <= more_than:
        assert driver.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_sigint_drains_sigkill_loses_nothing_and_rerun_gives_one_row_per_model(tiny_image_round, tmp_path):
    results = tmp_path / "results"
    cmd = [str(Path(sys.executable).parent / "seam"), "run", str(tiny_image_round), "--results", str(results),
           "--backend", "local", "--json", *FAST]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    env.pop("SEAM_FAULTS", None)

    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _wait_for_rows(results, driver, 0)
    driver.send_signal(signal.SIGINT)  # drain: the model in progress finishes and gets its row
    out, _ = driver.communicate(timeout=300)
    summary = json.loads(out)
    assert driver.returncode == 130 and summary["interrupted"]
    after_sigint = rows_by_model(results)
    assert summary["ran"] == len(after_sigint) < 4 and {r["status"] for r in after_sigint.values()} == {"ok"}

    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_rows(results, driver, len(after_sigint))
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    done_before = set(rows_by_model(results))
    assert len(after_sigint) < len(done_before) <= 4

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = json.loads(rerun.stdout)
    assert (summary["skipped"], summary["ran"]) == (len(done_before), 4 - len(done_before))
    rows = rows_by_model(results)
    assert sorted(rows) == model_ids(tiny_image_round) and {r["status"] for r in rows.values()} == {"ok"}
    answer = seam("query", "SELECT count(*) AS n, count(DISTINCT model_id) AS ids FROM results",
                  "--results", str(results), "--format", "json")
    assert json.loads(answer.stdout) == {"n": 4, "ids": 4}
