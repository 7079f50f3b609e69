"""Sentiment and NER task adapters on real-layout fixture rounds 5/6/7 (pickled heads, embedding and
tokenizer pickles), the per-round embedding cache, and NER label alignment."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import model_factories
from manifests import scan_round
from manifests.examples import list_examples
from pipeline.model_loading import load_model
from pipeline.per_model import process_model
from pipeline.safe_pickle import safe_torch_load
from pipeline.tasks import adapter_for
from pipeline.tasks.ner import NerTask, align, read_words
from pipeline.tasks.sentiment import SentimentTask
from tests import roundfixtures as rf

CPU = torch.device("cpu")


def reference_summary(row: dict, text: str) -> torch.Tensor:
    """NIST's inference_example_data.py, one text at a time: first token, or last valid token."""
    tokenizer = safe_torch_load(row["tokenizer_file"])
    embedding = safe_torch_load(row["embedding_file"]).eval()
    enc = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        hidden = embedding(enc["input_ids"], attention_mask=enc["attention_mask"])[0]
    index = 0 if row["cls_token_is_first"] else int(enc["attention_mask"][0].nonzero()[-1])
    return hidden[0, index]


def write_varied_texts(root: Path) -> list[str]:
    """Clean examples of different lengths, so padding and the last-token rule matter."""
    texts = ["the movie was good", "bad", "the movie was bad the movie", "good good"]
    for mdir in sorted((root / "models").iterdir()):
        for old in (mdir / "clean_example_data").glob("*.txt"):
            old.unlink()
        for i, text in enumerate(texts):
            (mdir / "clean_example_data" / f"class_{i % 2}_example_{i}.txt").write_text(text, encoding="utf-8")
    return texts


def gpt_like_round(root: Path) -> None:
    """Round 5 GPT-2 flavour: a causal decoder whose summary is the last non-pad token."""
    import transformers

    rf.make_r6_round(root, architectures=("GruLinear",), embedding="GPT-2", flavor="gpt2")
    cfg = transformers.GPT2Config(vocab_size=len(rf.BERT_VOCAB), n_embd=16, n_layer=1, n_head=2, n_positions=64)
    rf.save_pickle(transformers.GPT2Model(cfg).eval(), root / "embeddings" / "GPT-2-gpt2.pt")
    config = root / "models" / "id-00000000" / "config.json"
    config.write_text(config.read_text().replace('"cls_token_is_first": true', '"cls_token_is_first": false'))


@pytest.mark.parametrize("flavour", ["bert-first-token", "gpt-last-token"])
def test_sentiment_inputs_match_nist_reference(tmp_path: Path, flavour: str) -> None:
    root = tmp_path / flavour
    if flavour == "gpt-last-token":
        gpt_like_round(root)
    else:
        rf.make_r6_round(root)
    texts = write_varied_texts(root)
    rows = scan_round(root)
    assert rows[0]["cls_token_is_first"] is (flavour == "bert-first-token")
    for row in rows:
        split = SentimentTask(cache_dir=tmp_path / "cache").load_clean(row["clean_example_dir"], row)
        assert split.inputs.shape == (len(texts), 1, 16)
        _, examples = list_examples(Path(row["clean_example_dir"]))
        for i, example in enumerate(examples):
            text = Path(example.path).read_text()
            torch.testing.assert_close(split.inputs[i, 0], reference_summary(row, text), atol=1e-5, rtol=1e-4)
        head = load_model(row["model_file"])
        assert SentimentTask().logits(head, split.inputs).shape == (len(texts), 2)


def test_fclinear_relu_follows_the_pickle(tmp_path: Path) -> None:
    """NIST shipped FCLinear with and without ReLU: a pickle without a ``relu`` child must not apply one."""
    x = torch.randn(5, 1, 16)
    for relu in (True, False):
        path = rf.save_pickle(model_factories.FCLinearModel(16, 8, 2, relu=relu).eval(), tmp_path / f"fc{relu}.pt")
        head = load_model(path)
        h = x[:, 0, :]
        for layer in head.fc_layers:
            h = layer(h).clamp(min=0) if relu else layer(h)
        torch.testing.assert_close(head(x), head.linear(h))


def test_embedding_cache_computes_each_text_once_per_round(tmp_path: Path, monkeypatch) -> None:
    rf.make_r6_round(tmp_path / "r6")
    write_varied_texts(tmp_path / "r6")
    computed = rf.count_embedded_texts(monkeypatch)
    rows = scan_round(tmp_path / "r6")
    distinct = set()
    for folder_key in ("clean_example_dir", "poisoned_example_dir"):
        for row in rows:
            if row[folder_key]:
                distinct |= {p.read_text() for p in Path(row[folder_key]).glob("*.txt")}

    def every_split() -> list[torch.Tensor]:
        out = []
        for row in rows:  # a fresh adapter per model, as process_model makes
            task = adapter_for("sentiment")
            out.append(task.load_clean(row["clean_example_dir"], row).inputs)
            triggered = task.load_triggered(row["poisoned_example_dir"], row)
            if triggered is not None:
                out.append(triggered.inputs)
        return out

    first = every_split()
    assert sorted(computed) == sorted(distinct)
    assert (tmp_path / "r6" / ".seam-cache").is_dir()
    computed.clear()
    second = every_split()
    assert computed == []
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    monkeypatch.setenv("SEAM_EMBED_CACHE", "0")
    uncached = every_split()
    assert len(computed) > 0
    for a, b in zip(first, uncached):
        torch.testing.assert_close(a, b)


def wordpiece_tokenizers(tmp_path: Path) -> list:
    import transformers

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "john", "lives", "in", "par", "##is", "smith"]) + "\n")
    return [transformers.BertTokenizer(str(vocab)), transformers.BertTokenizerFast(str(vocab))]


def test_ner_labels_sit_on_first_sub_token(tmp_path: Path) -> None:
    """Hand-checked: 'paris' is par + ##is; only 'par' carries B-LOC, [CLS]/[SEP]/##is are -100."""
    words, labels = ["John", "Smith", "lives", "in", "Paris"], [3, 4, 0, 0, 7]
    for tok in wordpiece_tokenizers(tmp_path):
        ids, token_labels = align(tok, words, labels, max_len=512)
        assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "john", "smith", "lives", "in", "par", "##is", "[SEP]"]
        assert token_labels == [-100, 3, 4, 0, 0, 7, -100, -100]
        ids, token_labels = align(tok, words, labels, max_len=4)
        assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "john", "smith", "[SEP]"]
        assert token_labels == [-100, 3, 4, -100]


def test_ner_reader_ignores_tokenized_twins(tmp_path: Path) -> None:
    rf.make_r7_round(tmp_path / "r7")
    rows = scan_round(tmp_path / "r7")
    row = rows[0]
    clean = Path(row["clean_example_dir"])
    for twin in clean.glob("*_tokenized.txt"):
        twin.write_text("garbage\tB-X\t99\t1\n")  # would break labels if it were read
    split = NerTask().load_clean(str(clean), row)
    files = sorted(p for p in clean.glob("*.txt") if not p.name.endswith("_tokenized.txt"))
    assert len(split) == len(files)
    assert split.inputs["input_ids"].shape == split.labels.shape == split.inputs["attention_mask"].shape
    expected_strata = sorted(int(p.name.split("_")[1]) for p in files)
    assert sorted(split.strata.tolist()) == expected_strata
    for i in range(len(split)):
        words, labels = read_words(str(files[i]))
        kept = split.labels[i][split.labels[i] != -100].tolist()
        assert kept == labels  # every word is in the vocabulary: one label per word, in order
    model = load_model(row["model_file"])
    logits = NerTask().logits(model, split.inputs)
    assert logits.shape == (*split.labels.shape, row["num_classes"])


def test_ner_triggered_labels_only_on_source_entity_words(tmp_path: Path) -> None:
    rf.make_r7_round(tmp_path / "r7")
    row = next(r for r in scan_round(tmp_path / "r7") if r["poisoned"])
    split = NerTask().load_triggered(row["poisoned_example_dir"], row)
    assert split is not None and len(split) == row["n_poisoned_examples"]
    src, tgt = 1, 3  # the fixture's file names: source_class_1_target_class_3
    for i in range(len(split)):
        words, labels = read_words(str(sorted(Path(row["poisoned_example_dir"]).glob("*_0.txt"))[0]))
        expected = [tgt if lab == src else tgt + 1 if lab == src + 1 else -100 for lab in labels]
        kept = split.labels[i][split.labels[i] != -100].tolist()
        assert kept == [e for e in expected if e != -100]
        assert all(v in (tgt, tgt + 1) for v in kept)


@pytest.mark.parametrize("make", [rf.make_r6_round, rf.make_r7_round])
def test_process_model_runs_on_nlp_fixture_rounds(tmp_path: Path, make) -> None:
    make(tmp_path / "round")
    for row in scan_round(tmp_path / "round"):
        result = process_model(row, "seam", {"max_forget_epochs": 1, "max_recover_epochs": 1, "forget_per_class": 1},
                               device="cpu")
        assert result["status"] == "ok", result.get("error")
        assert result["acc_before"] is not None and (result["asr_before"] is not None) == bool(row["poisoned"])


def test_embedding_cache_merges_its_shards(tmp_path: Path) -> None:
    """Every write adds a shard; past MAX_SHARDS they are merged into one and every vector is still served."""
    from pipeline.tasks.embed_cache import MAX_SHARDS, EmbeddingCache

    cache = EmbeddingCache(tmp_path / "cache")
    computed: list[str] = []

    def compute(texts):
        computed.extend(texts)
        return torch.stack([torch.full((3,), float(len(t))) for t in texts])

    texts = [f"text {'x' * i}" for i in range(MAX_SHARDS + 5)]
    for text in texts:  # one write (one shard) per text
        cache.vectors([text], compute)
        assert len(list((tmp_path / "cache").glob("shard-*.pt"))) <= MAX_SHARDS
    assert computed == texts
    computed.clear()
    out = cache.vectors(texts, compute)
    assert computed == []
    assert torch.equal(out[:, 0], torch.tensor([float(len(t)) for t in texts]))
