"""``seam scan`` through Typer's CliRunner: JSON output, broken models, exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from manifests import NotARoundError, scan_round
from manifests.io import load_manifest
from tests import roundfixtures as rf

# defect name -> words the problem text must contain
PROBLEM_WORDS = (("missing_model", ("missing model file", "model.pt")),
                 ("unreadable_config", ("unreadable", "config.json")),
                 ("no_clean_examples", ("no clean examples",)),
                 ("class_mismatch", ("3 classes", "5 distinct")))


@pytest.fixture(scope="module")
def broken_round(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str | None]]:
    root = tmp_path_factory.mktemp("broken")
    return root, rf.make_broken_round(root)


def _scan_json(args: list[str]) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["scan", *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_json_matches_the_built_round(tmp_path: Path) -> None:
    expected = rf.make_r4_round(tmp_path)
    code, doc = _scan_json([str(tmp_path)])
    assert code == 0
    got = {m["model_id"]: (m["task"], m["num_classes"], m["poisoned"], m["n_clean_examples"], m["n_poisoned_examples"])
           for m in doc["models"]}
    assert got == {mid: (e.task, e.num_classes, e.poisoned, e.n_clean, e.n_poisoned) for mid, e in expected.items()}
    assert doc["summary"]["models"] == len(expected)
    assert doc["summary"]["poisoned"] == sum(e.poisoned for e in expected.values())
    assert doc["summary"]["with_problems"] == 0


def test_broken_round_lists_every_model_and_exits_1(broken_round) -> None:
    root, defects = broken_round
    code, doc = _scan_json([str(root)])
    assert code == 1
    problems = {m["model_id"]: m["problems"] for m in doc["models"]}
    assert sorted(problems) == sorted(defects)
    assert doc["summary"]["with_problems"] == sum(d is not None for d in defects.values())
    by_defect = {d: problems[mid] for mid, d in defects.items()}
    assert by_defect[None] == []
    for defect, words in PROBLEM_WORDS:
        text = " ".join(by_defect[defect])
        assert all(w in text for w in words), (defect, text)


def test_broken_round_human_output_names_the_broken_models(broken_round) -> None:
    root, defects = broken_round
    result = CliRunner().invoke(app, ["scan", str(root)])
    assert result.exit_code == 1
    for mid, defect in defects.items():
        assert (mid in result.stdout) is (defect is not None)


def test_out_writes_a_readable_manifest(broken_round, tmp_path: Path) -> None:
    root, defects = broken_round
    out = tmp_path / "sub" / "manifest.parquet"
    result = CliRunner().invoke(app, ["scan", str(root), "--out", str(out)])
    assert result.exit_code == 1
    rows = load_manifest(out)
    assert sorted(r["model_id"] for r in rows) == sorted(defects)
    assert not list(out.parent.glob(".*tmp*"))


@pytest.mark.parametrize("make", [lambda p: (p / "notes.txt").write_text("hello"),
                                  lambda p: (p / "models" / "not-an-id").mkdir(parents=True)],
                         ids=["plain-folder", "models-without-ids"])
def test_not_a_round_gives_one_error_and_exit_2(tmp_path: Path, make) -> None:
    make(tmp_path)
    with pytest.raises(NotARoundError):
        scan_round(tmp_path)
    result = CliRunner().invoke(app, ["scan", str(tmp_path), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    message = " ".join(result.stderr.split())
    assert message.startswith("error:") and "not a TrojAI round" in message and str(tmp_path) in message
    assert "Traceback" not in result.stderr


def test_missing_directory_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["scan", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "not a directory" in " ".join(result.stderr.split())
