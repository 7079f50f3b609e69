"""Insertion copies for sentiment recovery: only insertions, seeded per text, embedded like any text, blind."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from manifests import scan_round
from pipeline.methods.seam import SeamConfig
from pipeline.per_model import process_model
from pipeline.tasks import adapter_for
from pipeline.tasks.text_insertions import insertion_copies, vocabulary, with_insertion
from tests import roundfixtures as rf

WORDS = ["alpha", "bravo", "charlie"]


def is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(token in it for token in short)


def test_a_copy_is_the_text_plus_one_to_three_insertions() -> None:
    text = "the plot is thin but the acting is superb"
    for seed in range(50):
        copy = with_insertion(text, random.Random(seed), WORDS).split()
        assert is_subsequence(text.split(), copy)  # nothing removed or reordered
        added = len(copy) - len(text.split())
        assert 1 <= added <= 3 * 6
        assert all(t in WORDS or (len(t) == 1 and not t.isalnum()) for t in copy if t not in text.split())


def test_copies_are_seeded_per_text_and_seed() -> None:
    texts = ["a fine film", "a dull film"]
    first = insertion_copies(texts, 3, seed=0, words=WORDS)
    assert len(first) == 6 and all(c != t for c, t in zip(first, [texts[0]] * 3 + [texts[1]] * 3))
    assert first == insertion_copies(texts, 3, seed=0, words=WORDS)
    assert first[3:] == insertion_copies(texts[1:], 3, seed=0, words=WORDS)  # per text: order does not matter
    assert first != insertion_copies(texts, 3, seed=1, words=WORDS)


def test_vocabulary_keeps_whole_ascii_words() -> None:
    class Tok:
        def get_vocab(self):
            return {"[CLS]": 0, "##ing": 1, "film": 2, "to": 3, "café": 4, "plot": 5, "42abc": 6}

    assert vocabulary(Tok()) == ["film", "plot"]


def test_sentiment_adapter_adds_embedded_copies(tmp_path: Path, monkeypatch) -> None:
    rf.make_r6_round(tmp_path / "r6")
    row = scan_round(tmp_path / "r6")[0]
    task = adapter_for("sentiment")
    clean = task.load_clean(row["clean_example_dir"], row)
    computed = rf.count_embedded_texts(monkeypatch)
    more = task.with_insertions(clean, 2, seed=0)
    n = len(clean)
    assert len(more) == 3 * n and more.texts[:n] == clean.texts
    assert torch.equal(more.inputs[:n], clean.inputs)
    assert torch.equal(more.labels[n:], clean.labels.repeat_interleave(2))
    assert sorted(computed) == sorted(set(more.texts[n:]))  # each copy embedded once
    cache = next((tmp_path / "r6" / ".seam-cache" / "embeddings").iterdir())
    shards = sorted(cache.glob("shard-*.pt"))
    again = adapter_for("sentiment")
    again.load_clean(row["clean_example_dir"], row)
    computed.clear()
    assert torch.equal(again.with_insertions(clean, 2, seed=0).inputs, more.inputs)  # their own cache serves them
    assert computed == []
    assert sorted(cache.glob("shard-*.pt")) == shards  # and the round's shared cache never sees them
    assert len(list((tmp_path / "r6" / ".seam-cache" / "copies").rglob("shard-*.pt"))) == 1
    with pytest.raises(ValueError, match="clean texts"):
        adapter_for("sentiment").with_insertions(clean, 2, seed=0)


def test_seam_records_the_copies_on_sentiment_and_ignores_them_elsewhere(tmp_path: Path) -> None:
    rf.make_r6_round(tmp_path / "r6")
    rf.make_r7_round(tmp_path / "r7")
    quick = {"max_forget_epochs": 1, "max_recover_epochs": 1, "forget_per_class": 1, "insert_copies": 2}
    for round_dir, added in ((tmp_path / "r6", True), (tmp_path / "r7", False)):
        row = scan_round(round_dir)[0]
        result = process_model(row, "seam", quick, device="cpu")
        assert result["status"] == "ok", result.get("error")
        trace = json.loads(result["trace_json"])
        assert (trace["n_insertion_copies"] > 0) == added
    with pytest.raises(ValueError, match="insert_copies"):
        SeamConfig(insert_copies=-1)
