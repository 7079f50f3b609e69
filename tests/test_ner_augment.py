"""Mention replacement for NER recovery: spans read from aligned labels, swaps keep every label true."""
from __future__ import annotations

import pytest
import torch

from pipeline.methods.seam import SeamConfig
from pipeline.tasks.ner import NerTask
from pipeline.tasks.base import Split
from pipeline.tasks.ner_augment import MentionPool, mentions, swap_mentions

I = -100  # noqa: E741  (IGNORE, short for the hand-written rows)
# [CLS] john smith lives in par ##is [SEP]    and    [CLS] ann visits new york [SEP] [PAD]
IDS = torch.tensor([[1, 10, 11, 12, 13, 14, 15, 2], [1, 20, 21, 22, 23, 2, 0, 0]])
MASK = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0]])
LABELS = torch.tensor([[I, 3, 4, 0, 0, 7, I, I], [I, 3, 0, 7, 8, I, I, I]])


def test_mentions_cover_sub_tokens_and_inside_words() -> None:
    """Hand-checked: B-PER + I-PER, then B-LOC with its ##is piece; [SEP] (left out by length) is not part of it."""
    assert mentions(LABELS[0].tolist(), 7) == [(1, 3, 3), (5, 7, 7)]
    assert mentions(LABELS[1].tolist(), 5) == [(1, 2, 3), (3, 5, 7)]
    assert mentions([I, 0, 0, I], 3) == []


def test_swapping_every_mention_keeps_labels_true_and_width() -> None:
    pool = MentionPool(IDS, MASK, LABELS)
    assert {k: len(v) for k, v in pool.by_label.items()} == {3: 2, 7: 2}
    seen = set()
    for seed in range(20):
        ids, mask, labels = swap_mentions(IDS, MASK, LABELS, pool, 1.0, 0, torch.Generator().manual_seed(seed))
        assert ids.shape == IDS.shape
        for row in range(2):
            n = int(mask[row].sum())
            got = list(zip(ids[row, :n].tolist(), labels[row, :n].tolist()))
            assert got[0] == (1, I) and got[-1] == (2, I)  # [CLS] ... [SEP] stay
            assert ids[row, n:].eq(0).all() and labels[row, n:].eq(I).all()  # padding
            # every token keeps the label it had where it came from: mentions carry their own labels
            spans = [tuple(zip(IDS[r, s:e].tolist(), LABELS[r, s:e].tolist()))
                     for r in range(2) for s, e, _ in mentions(LABELS[r].tolist(), int(MASK[r].sum()) - 1)]
            found = [tuple(got[s:e]) for s, e, _ in mentions(labels[row].tolist(), n - 1)]
            assert all(f in spans for f in found) and len(found) == 2
            seen.add((row, tuple(found)))
    assert len(seen) > 2  # the draws really vary


def test_no_swap_at_share_zero_and_outgrown_sentences_kept() -> None:
    pool = MentionPool(IDS, MASK, LABELS)
    same = swap_mentions(IDS, MASK, LABELS, pool, 0.0, 0, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(same, (IDS, MASK, LABELS)))
    # row 0 fills the width (8): a pool whose only mention is a 6-token LOC cannot fit, so the row is kept
    long_ids = torch.tensor([[1, 30, 31, 32, 33, 34, 35, 2]])
    long_pool = MentionPool(long_ids, torch.ones_like(long_ids), torch.tensor([[I, 7, I, I, I, I, I, I]]))
    for seed in range(5):
        ids, _, labels = swap_mentions(IDS[:1], MASK[:1], LABELS[:1], long_pool, 1.0, 0, torch.Generator().manual_seed(seed))
        assert torch.equal(ids, IDS[:1]) and torch.equal(labels, LABELS[:1])


def test_ner_batches_swap_only_when_asked() -> None:
    split = Split({"input_ids": IDS, "attention_mask": MASK}, LABELS, torch.tensor([3, 7]))
    task = NerTask()
    plain = list(task.batches(split, LABELS, 2, torch.device("cpu"), torch.Generator().manual_seed(0), True))
    assert torch.equal(plain[0][1], LABELS[torch.randperm(2, generator=torch.Generator().manual_seed(0))])
    changed = 0
    for seed in range(10):
        (inputs, labels), = task.batches(split, LABELS, 2, torch.device("cpu"), torch.Generator().manual_seed(seed),
                                         True, mention_swap=1.0)
        changed += not torch.equal(inputs["input_ids"].sort(0).values, IDS.sort(0).values)
        assert set(labels.unique().tolist()) <= {I, 0, 3, 4, 7, 8}
    assert changed > 0


def test_mention_swap_is_a_probability() -> None:
    with pytest.raises(ValueError, match="stall_mention_swap"):
        SeamConfig(stall_mention_swap=1.5)
