"""A round's frozen encoder adapted to sentiment once, before any head is trained.

Why: the packaged MiniLM was trained for mean pooling, so its [CLS] vector (what round 5/6 heads
read) carries sentiment weakly, and heads on it reach only 0.85 on the confirmed test reviews: a
clean model then sends 13% of triggered negatives to "positive" by itself, which caps FID near 0.84,
below the paper's round-5 figure. Real round 5/6 heads read [CLS] of encoders that summarise long
IMDB/Amazon reviews well (~0.9). One short pass of supervised fine-tuning ([CLS] + a linear layer,
discarded afterwards) on snippets that are never test or example texts lifts the heads to 0.95;
kept light (2,500 snippets, one epoch) so that inserted triggers still move [CLS] enough to be
learned (the measurements are in docs/SEAM.md, "Sentiment rounds with a tuned encoder").
The encoder is then frozen like any round's, and every model of the round shares it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class EncoderTuning:
    """One epoch of AdamW over ``snippets`` texts; 0 snippets keeps the pretrained encoder."""

    snippets: int = 0
    learning_rate: float = 3e-5
    batch_size: int = 32
    max_length: int = 64
    weight_decay: float = 0.01

    @property
    def flavor_suffix(self) -> str:
        return f"-rt-sentiment-tuned{self.snippets}" if self.snippets else ""


def tune_for_sentiment(model: nn.Module, tokenizer, texts: Sequence[str], labels: Sequence[int],
                       tuning: EncoderTuning, seed: int,
                       on_batch: Callable[[int, int, float], None] | None = None) -> nn.Module:
    """``model`` fine-tuned in place on its first-token vector, returned in eval mode;
    ``on_batch(done, total, loss)`` reports progress (a few minutes on one CPU thread)."""
    torch.manual_seed(seed)
    hidden = int(model.config.hidden_size)
    head = nn.Linear(hidden, int(max(labels)) + 1)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=tuning.learning_rate, weight_decay=tuning.weight_decay)
    order = np.random.default_rng([seed, 7]).permutation(len(texts))
    model.train()
    starts = range(0, len(order), tuning.batch_size)
    for done, start in enumerate(starts, 1):
        idx = order[start:start + tuning.batch_size]
        enc = tokenizer([texts[i] for i in idx], max_length=tuning.max_length, padding=True, truncation=True,
                        return_tensors="pt")
        logits = head(model(**enc).last_hidden_state[:, 0])
        loss = nn.functional.cross_entropy(logits, torch.tensor([labels[i] for i in idx], dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if on_batch is not None:
            on_batch(done, len(starts), float(loss))
    return model.eval()
