"""The tuned sentiment encoder: what it is trained on, and that tuning really changes it."""
from __future__ import annotations

import torch
from transformers import BertConfig, BertModel

from pipeline.synth_nlp import sentiment_round
from pipeline.synth_nlp.encoder_tuning import EncoderTuning, tune_for_sentiment
from pipeline.synth_nlp.encoders import minilm
from pipeline.synth_nlp.rt_data import Review


def small_bert() -> BertModel:
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64), add_pooling_layer=False).eval()


def test_tuning_moves_the_weights_reproducibly_and_leaves_eval_mode() -> None:
    _, tokenizer = minilm().load()
    texts = ["a wonderful , moving film", "dull and lifeless", "funny and warm", "a tedious mess"] * 4
    labels = [1, 0, 1, 0] * 4
    tuning = EncoderTuning(snippets=len(texts), learning_rate=1e-3, batch_size=8)
    first, second, untouched = small_bert(), small_bert(), small_bert()
    tune_for_sentiment(first, tokenizer, texts, labels, tuning, seed=3)
    tune_for_sentiment(second, tokenizer, texts, labels, tuning, seed=3)
    a, b, c = (dict(m.named_parameters()) for m in (first, second, untouched))
    assert not first.training
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_tuning_never_sees_a_confirmed_review_and_names_its_flavor(monkeypatch) -> None:
    reviews = [Review(f"snippet {i}", i % 2, gi, vader) for i, (gi, vader) in
               enumerate([(3, 0.9), (0, 0.1), (-2, -0.5), (1, 0.2)] * 25)]
    clear = [r for r in reviews if r.agreement[0] >= 2 and r.agreement[1] >= 0.7]
    seen: list[list[str]] = []
    monkeypatch.setattr(sentiment_round, "tune_for_sentiment",
                        lambda model, tok, texts, labels, tuning, seed, on_batch: seen.append(list(texts)) or model)
    tuning = EncoderTuning(snippets=40)
    sentiment_round.tuned_encoder(object(), None, reviews, clear, tuning, seed=1)
    assert len(seen[0]) == 40 == len(set(seen[0]))
    assert not set(seen[0]) & {r.text for r in clear}
    assert tuning.flavor_suffix == "-rt-sentiment-tuned40" and EncoderTuning().flavor_suffix == ""
