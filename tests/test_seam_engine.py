"""SEAM and the baselines on a real (tiny) synthetic round: real models, real training, real metrics."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from manifests import scan_one, scan_round
from pipeline.methods.seam import forget_threshold
from pipeline.model_loading import load_model
from pipeline.per_model import process_model
from schemas import RESULT_SCHEMA, table_from_rows


@pytest.fixture(scope="module")
def tiny_rows(tiny_image_round: Path) -> list[dict]:
    return scan_round(tiny_image_round)


@pytest.fixture(scope="module")
def seam_results(tiny_rows: list[dict]) -> list[dict]:
    return [process_model(row, "seam") for row in tiny_rows]


def test_seam_lowers_asr_of_every_poisoned_model_and_keeps_accuracy(seam_results: list[dict]) -> None:
    assert all(r["status"] == "ok" for r in seam_results), [r["error"] for r in seam_results]
    poisoned = [r for r in seam_results if r["poisoned"]]
    assert poisoned, "the tiny round must contain poisoned models"
    for r in poisoned:
        assert r["asr_after"] < r["asr_before"], r["model_id"]
        assert r["fid"] == pytest.approx((r["acc_after"] - r["asr_after"]) / r["acc_before"])
    for r in seam_results:
        assert r["acc_after"] >= r["acc_before"] - 0.10, (r["model_id"], r["acc_before"], r["acc_after"])


def test_trace_follows_the_blind_stopping_rules(seam_results: list[dict]) -> None:
    for r in seam_results:
        trace = json.loads(r["trace_json"])
        threshold = forget_threshold(r["num_classes"])
        assert trace["forget_threshold"] == threshold
        forget = trace["forget_acc"]
        assert all(a >= threshold for a in forget[:-1])
        assert (forget[-1] < threshold) == trace["forget_reached"]
        recover = trace["recover_acc"]
        assert trace["recover_target"] == pytest.approx(0.97 * trace["recover_set_acc_before"])
        assert all(a <= trace["recover_target"] for a in recover[:-1])
        assert (recover[-1] > trace["recover_target"]) == trace["recover_reached"]
        assert r["epochs_forget"] == len(forget) and r["epochs_recover"] == len(recover)
        assert r["acc_forget"] is not None  # measured right after forgetting, for the trace
        if r["poisoned"]:
            assert r["asr_forget"] is not None


def test_result_rows_follow_the_result_schema(seam_results: list[dict]) -> None:
    table = table_from_rows(seam_results, RESULT_SCHEMA)
    assert table.num_rows == len(seam_results)
    assert set(table.column("acc_eval_source").to_pylist()) == {"clean_test_data"}


def test_stopping_never_looks_at_asr_data(tiny_rows: list[dict], seam_results: list[dict], tmp_path: Path) -> None:
    """Removing the triggered evaluation data changes the reported ASR source, never a training decision."""
    row = next(r for r in tiny_rows if r["poisoned"])
    before = next(r for r in seam_results if r["model_id"] == row["model_id"])
    blind = process_model({**row, "poisoned_test_dir": None, "poisoned_example_dir": None}, "seam")
    assert blind["asr_after"] is None
    t0, t1 = json.loads(before["trace_json"]), json.loads(blind["trace_json"])
    for key in ("forget_acc", "recover_acc", "epochs_forget", "epochs_recover", "n_forget", "n_recover"):
        assert t0[key] == t1[key], key
    assert blind["acc_after"] == pytest.approx(before["acc_after"])


def test_heldout_split_when_the_round_has_no_test_data(tiny_rows: list[dict]) -> None:
    row = {**next(r for r in tiny_rows if not r["poisoned"]), "clean_test_dir": None}
    res = process_model(row, "seam")
    assert res["status"] == "ok"
    assert res["acc_eval_source"] == "heldout_examples"
    assert res["n_acc_eval"] + res["n_forget"] + res["n_recover"] == row["n_clean_examples"]


@pytest.mark.parametrize("method, overrides", [("finetune", {"epochs": 2}), ("fineprune", {"epochs": 2}),
                                               ("nad", {"teacher_epochs": 1, "epochs": 2})])
def test_baselines_give_rows_of_the_same_schema(tiny_rows: list[dict], method: str, overrides: dict) -> None:
    row = next(r for r in tiny_rows if r["poisoned"])
    res = process_model(row, method, overrides)
    assert res["status"] == "ok", res["error"]
    assert res["acc_after"] is not None and res["asr_after"] is not None
    assert json.loads(res["config_json"])["epochs"] == 2
    table_from_rows([res], RESULT_SCHEMA)


def test_a_model_with_problems_becomes_an_error_row_naming_it(tiny_rows: list[dict]) -> None:
    row = {**tiny_rows[0], "problems": ["missing model file /x/model.pt"]}
    res = process_model(row, "seam")
    assert res["status"] == "error"
    assert row["model_id"] in res["error"] and "missing model file" in res["error"]


def test_repair_cli_saves_a_model_that_loads_and_scans(tiny_image_round: Path, tmp_path: Path) -> None:
    model_dir = next(p for p in sorted(tiny_image_round.glob("id-*")) if scan_one(p)["poisoned"])
    copy = tmp_path / "round" / model_dir.name
    shutil.copytree(model_dir, copy)
    saved = tmp_path / "repaired" / "model.pt"
    result = CliRunner().invoke(app, ["repair", str(copy), "--json", "--save", str(saved),
                                      "--set", "max_recover_epochs=3"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["status"] == "ok" and row["repaired_model_path"] == str(saved)
    assert row["epochs_recover"] <= 3
    model = load_model(saved)
    assert not model.training
    shutil.copy(saved, copy / "model.pt")  # a repaired model drops back into a round folder
    assert scan_one(copy)["problems"] == []


def test_repair_cli_rejects_unknown_settings(tiny_image_round: Path) -> None:
    model_dir = sorted(tiny_image_round.glob("id-*"))[0]
    result = CliRunner().invoke(app, ["repair", str(model_dir), "--set", "bogus=1"])
    assert result.exit_code == 2
    assert "bogus" in result.output


def test_bench_gives_finetune_seams_budget_and_summarizes(tiny_image_round: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.jsonl"
    result = CliRunner().invoke(app, ["bench", str(tiny_image_round), "--methods", "seam,finetune", "--limit", "2",
                                      "--out", str(out), "--json", "--set", "max_recover_epochs=5"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["method"] for r in rows] == ["seam", "finetune"] * 2
    for seam_row, ft_row in zip(rows[::2], rows[1::2]):
        assert seam_row["model_id"] == ft_row["model_id"]
        ft_cfg, seam_cfg = json.loads(ft_row["config_json"]), json.loads(seam_row["config_json"])
        assert ft_cfg["epochs"] == seam_row["epochs_forget"] + seam_row["epochs_recover"]
        assert (ft_cfg["lr"], ft_cfg["batch_size"]) == (seam_cfg["recover_lr"], seam_cfg["batch_size"])
    summary = {s["method"]: s for s in json.loads(result.stdout)}
    assert set(summary) == {"seam", "finetune"} and summary["seam"]["models"] == 2
