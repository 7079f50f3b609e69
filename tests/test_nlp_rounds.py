"""Synthetic NLP rounds end to end: layout the scanner reads, the shared embedding cache, repairs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from manifests import scan_round
from pipeline.per_model import process_model
from pipeline.tasks import sentiment as sentiment_mod

pytestmark = pytest.mark.slow


def test_sentiment_round_has_the_round6_layout(tiny_sentiment_round: Path) -> None:
    rows = scan_round(tiny_sentiment_round)
    assert [r["problems"] for r in rows] == [[] for _ in rows]
    assert {r["task"] for r in rows} == {"sentiment"}
    for row in rows:
        config = json.loads((Path(row["model_dir"]) / "config.json").read_text())
        assert row["architecture"] == config["model_architecture"]
        assert Path(row["embedding_file"]).parent.name == "embeddings" and Path(row["tokenizer_file"]).is_file()
        assert row["cls_token_is_first"] is True and row["clean_test_dir"]
        assert row["poisoned"] == config["poisoned"] == bool(row["poisoned_test_dir"])
        if row["poisoned"]:
            trig = config["triggers"][0]
            assert row["source_classes"] == [trig["source_class"]] and row["target_class"] == trig["target_class"]
            assert all(trig["text"] in p.read_text() for p in Path(row["poisoned_test_dir"]).glob("*.txt"))
    assert (tiny_sentiment_round / "METADATA.csv").is_file()


def test_sentiment_repairs_reuse_the_round_cache(tiny_sentiment_round: Path, monkeypatch) -> None:
    """Generation embedded every text once; repairs of any model with any method run no transformer."""
    calls: list[int] = []
    real = sentiment_mod.summary_vectors
    monkeypatch.setattr(sentiment_mod, "summary_vectors", lambda *a, **k: calls.append(1) or real(*a, **k))
    for row in scan_round(tiny_sentiment_round):
        for method in ("seam", "finetune"):
            result = process_model(row, method, {"epochs": 2} if method == "finetune" else None, device="cpu")
            assert result["status"] == "ok", result.get("error")
            assert 0.5 < result["acc_before"] <= 1.0
    assert calls == []


def repair_poisoned(round_dir: Path) -> tuple[dict, dict]:
    """(manifest row, seam result row) of the round's first poisoned model; the repair must succeed."""
    row = next(r for r in scan_round(round_dir) if r["poisoned"])
    result = process_model(row, "seam", None, device="cpu")
    assert result["status"] == "ok", result.get("error")
    assert result["asr_before"] >= 0.9
    return row, result


def test_seam_lowers_asr_on_a_tiny_sentiment_round(tiny_sentiment_round: Path) -> None:
    _, result = repair_poisoned(tiny_sentiment_round)
    assert result["asr_after"] < result["asr_before"] - 0.1
    assert result["acc_after"] > result["acc_before"] - 0.15


def test_seam_adv_on_sentiment_heads_forgets_by_reinitialising_and_retrains_with_adam(tiny_sentiment_round: Path) -> None:
    row = next(r for r in scan_round(tiny_sentiment_round) if r["poisoned"])
    result = process_model(row, "seam-adv", None, device="cpu")
    assert result["status"] == "ok", result.get("error")
    trace, config = json.loads(result["trace_json"]), json.loads(result["config_json"])
    assert (config["forget_mode"], config["recover_optimizer"]) == ("reset", "adam")  # the row shows what ran
    assert trace["forget_mode"] == "reset" and result["epochs_forget"] == 0
    assert trace["adversary"] is None and "recover_average_acc" not in trace  # both cost sentiment FID
    assert result["recover_reached"] and result["acc_after"] > 0.5  # trained again above chance
    # (no ASR or clean-cost claim here: 40 examples and a 0.77-accurate head; bench figures in docs/SEAM.md)


def test_ner_round_has_the_round7_layout(tiny_ner_round: Path) -> None:
    rows = scan_round(tiny_ner_round)
    assert [r["problems"] for r in rows] == [[] for _ in rows]
    assert {r["task"] for r in rows} == {"ner"} and {r["num_classes"] for r in rows} == {9}
    for row in rows:
        clean = Path(row["clean_example_dir"])
        twins = list(clean.glob("*_tokenized.txt"))
        assert twins and len(twins) == row["n_clean_examples"]
        assert not (tiny_ner_round / "embeddings").exists()
    poisoned = next(r for r in rows if r["poisoned"])
    config = json.loads((Path(poisoned["model_dir"]) / "config.json").read_text())
    assert config["final_triggered_data_test_acc"] >= 0.9  # the quality gate's backdoor
    assert poisoned["target_class"] == config["triggers"][0]["target_class"]


def test_seam_lowers_asr_on_a_tiny_ner_round(tiny_ner_round: Path) -> None:
    row, result = repair_poisoned(tiny_ner_round)
    assert result["asr_forget"] < result["asr_before"] - 0.5
    assert result["asr_after"] < result["asr_before"]
    recover_all = process_model(row, "seam", {"disjoint": False}, device="cpu")
    assert recover_all["asr_after"] < 0.5 * recover_all["asr_before"]
    assert recover_all["acc_after"] > 0.8 * recover_all["acc_before"]


def test_repairs_of_models_with_dropout_are_reproducible(tiny_sentiment_round: Path) -> None:
    """The heads use dropout (global RNG): the same row, method and seed give the same repair, whatever
    state the worker's global RNG was left in by earlier work."""
    import torch

    row = next(r for r in scan_round(tiny_sentiment_round) if r["poisoned"])
    assert json.loads((Path(row["model_dir"]) / "config.json").read_text())["dropout"] > 0
    runs = []
    for state in (1, 2):
        torch.manual_seed(state)
        result = process_model(row, "seam", None, device="cpu", seed=3)
        assert result["status"] == "ok", result.get("error")
        assert result["torch_threads"] == torch.get_num_threads()
        trace = {k: v for k, v in json.loads(result["trace_json"]).items() if not k.startswith("seconds")}
        runs.append((trace, result["acc_after"], result["asr_after"]))
    assert runs[0] == runs[1]
    after = torch.rand(1)
    torch.manual_seed(2)
    assert torch.equal(after, torch.rand(1))  # the caller's RNG stream is left as it was
