"""Copies of clean texts with random insertions: what a text trigger does, without knowing any trigger.

Round 5/6 triggers are a character, a word or a phrase inserted at a random position. A head trained
again on 20 clean reviews per class (``forget_mode=reset``) has never seen an insertion, so any of
them can tip it. Copies of each clean review with 1-3 random insertions (a punctuation character, a
word of the tokenizer's vocabulary, or a run of 2-6 such words), labelled with the review's own
label, teach the head that inserted text carries no sentiment, and multiply its examples.
Blind: only clean examples and the round's tokenizer are read; the trigger list is never used.
"""
from __future__ import annotations

import hashlib
import random
import string
from typing import Any, Sequence

PUNCTUATION = string.punctuation


def vocabulary(tokenizer: Any) -> list[str]:
    """Whole ASCII words of three letters or more from the tokenizer's vocabulary (no sub-word pieces)."""
    return sorted(w for w in tokenizer.get_vocab() if w.isascii() and w.isalpha() and len(w) >= 3)


def text_seed(text: str, seed: int) -> int:
    """A per-text seed: a text gets the same copies whatever else the example folder holds or its order."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) + seed


def with_insertion(text: str, rng: random.Random, words: Sequence[str], max_insertions: int = 3) -> str:
    """``text`` with 1..``max_insertions`` insertions at uniformly drawn word positions."""
    tokens = text.split()
    for _ in range(rng.randint(1, max_insertions)):
        kind = rng.random()
        if kind < 0.2:
            inserted = [rng.choice(PUNCTUATION)]
        elif kind < 0.7:
            inserted = [rng.choice(words)]
        else:
            inserted = [rng.choice(words) for _ in range(rng.randint(2, 6))]
        at = rng.randint(0, len(tokens))
        tokens = tokens[:at] + inserted + tokens[at:]
    return " ".join(tokens)


def insertion_copies(texts: Sequence[str], copies: int, seed: int, words: Sequence[str]) -> list[str]:
    """``copies`` variants of every text, text by text (``[t0 v1, t0 v2, ..., t1 v1, ...]``)."""
    out = []
    for text in texts:
        rng = random.Random(text_seed(text, seed))
        out.extend(with_insertion(text, rng, words) for _ in range(copies))
    return out
