"""Mention replacement for NER recovery: each entity mention may be swapped for another mention of its type.

Twenty clean sentences per class are few; round-7 models trained on hundreds. Replacing a mention by
another mention of the same type from the clean repair sentences (Dai & Adel 2020, "mention
replacement") keeps every label true and recombines contexts with names, so recovery sees many
more distinct sentences. Works on aligned token ids: a mention is a ``B-X`` token, its sub-tokens
(``IGNORE``) and its ``I-X`` tokens, in round 7's label layout (O = 0, then B/I pairs: B odd, I = B + 1).
Blind: only the clean repair split and its true labels are read.
"""
from __future__ import annotations

import torch

from pipeline.training import IGNORE

Span = tuple[int, int, int]  # start, end (exclusive), B label


def mentions(labels: list[int], length: int) -> list[Span]:
    """Entity mentions among the first ``length`` tokens (the caller leaves out the closing [SEP])."""
    spans, i = [], 0
    while i < length:
        label = labels[i]
        if label > 0 and label % 2 == 1:
            j = i + 1
            while j < length and labels[j] in (IGNORE, label + 1):
                j += 1
            spans.append((i, j, label))
            i = j
        else:
            i += 1
    return spans


class MentionPool:
    """Every mention of a split (token ids and labels), by B label."""

    def __init__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> None:
        self.by_label: dict[int, list[tuple[list[int], list[int]]]] = {}
        for ids, mask, labs in zip(input_ids.tolist(), attention_mask.tolist(), labels.tolist()):
            for start, end, label in mentions(labs, sum(mask) - 1):
                self.by_label.setdefault(label, []).append((ids[start:end], labs[start:end]))

    def draw(self, label: int, generator: torch.Generator | None) -> tuple[list[int], list[int]] | None:
        pool = self.by_label.get(label)
        if not pool:
            return None
        return pool[int(torch.randint(len(pool), (1,), generator=generator))]


def swap_mentions(input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor, pool: MentionPool,
                  share: float, pad_id: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                        torch.Tensor]:
    """Each mention replaced with probability ``share`` by a pool mention of its type; a sentence that would
    outgrow the batch width keeps its own mentions."""
    width = input_ids.shape[1]
    out_ids, out_mask, out_labels = input_ids.clone(), attention_mask.clone(), labels.clone()
    for row, (ids, mask, labs) in enumerate(zip(input_ids.tolist(), attention_mask.tolist(), labels.tolist())):
        length = sum(mask)
        new_ids, new_labs, last = [], [], 0
        for start, end, label in mentions(labs, length - 1):
            donor = pool.draw(label, generator) if float(torch.rand((), generator=generator)) < share else None
            if donor is None:
                continue
            new_ids += ids[last:start] + donor[0]
            new_labs += labs[last:start] + donor[1]
            last = end
        if last == 0:
            continue
        new_ids += ids[last:length]
        new_labs += labs[last:length]
        if len(new_ids) > width:
            continue
        pad = width - len(new_ids)
        out_ids[row] = torch.tensor(new_ids + [pad_id] * pad)
        out_mask[row] = torch.tensor([1] * len(new_ids) + [0] * pad)
        out_labels[row] = torch.tensor(new_labs + [IGNORE] * pad)
    return out_ids, out_mask, out_labels
