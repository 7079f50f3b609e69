"""`seam run --backend ray` on the shared session Ray: real worker processes that die, hang or raise."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import app
from tests.faultfiles import copy_round, truncate_model
from tests.test_run_local import FAST, model_ids, rows_by_model

pytestmark = pytest.mark.slow


def test_ray_run_turns_exit_hang_and_corrupt_file_into_rows(ray_session, tiny_image_round, tmp_path, monkeypatch):
    round_dir = copy_round(tiny_image_round, tmp_path / "round")
    corrupt = truncate_model(round_dir / "id-00000002")
    monkeypatch.setenv("SEAM_FAULTS", json.dumps({"id-00000000": "exit", "id-00000001": "hang"}))
    results = tmp_path / "results"
    args = ["run", str(round_dir), "--results", str(results), "--backend", "ray", "--workers", "2",
            "--timeout-s", "60", "--max-attempts", "2", "--json", *FAST]  # 30 s timed the fine model
    # out once, in a CI run beside 8 repair jobs on the 2 cores (the clock can include an actor's restart)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert (summary["backend"], summary["workers"]) == ("ray", 2)
    rows = rows_by_model(results)
    assert sorted(rows) == model_ids(round_dir)
    crashed, hung, broken, fine = (rows[m] for m in model_ids(round_dir))
    assert (crashed["status"], crashed["attempts"]) == ("crashed", 2)  # retried once on a restarted actor
    assert (hung["status"], hung["attempts"]) == ("timeout", 1)
    assert "60 s" in hung["error"]
    assert broken["status"] == "error" and str(corrupt) in broken["error"]
    assert (fine["status"], fine["attempts"]) == ("ok", 1) and fine["host"]

    # the actors survived all that: a rerun with the faults gone repairs exactly the failed ones
    monkeypatch.delenv("SEAM_FAULTS")
    again = CliRunner().invoke(app, [*args, "--retry-failed"])
    assert again.exit_code == 1, again.output  # the truncated file still fails
    assert json.loads(again.stdout)["ran"] == 3
    statuses = {m: r["status"] for m, r in rows_by_model(results).items()}
    assert statuses == {"id-00000000": "ok", "id-00000001": "ok", "id-00000002": "error", "id-00000003": "ok"}
