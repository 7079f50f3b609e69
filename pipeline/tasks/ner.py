"""Round 7 NER: word files -> sub-tokens with labels on each word's first sub-token, -100 elsewhere.

Alignment is NIST's ``manual_tokenize_and_align_labels`` (what round 7 trained with): ``[CLS]``, then
each word's sub-tokens (first one labelled), truncated to ``max_len - 1``, then ``[SEP]``. The whole
``NerLinearModel`` (transformer + linear) is what a method trains, as round 7 did.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from manifests.examples import Example, list_examples
from pipeline.safe_pickle import safe_torch_load
from pipeline.tasks.base import Split, index_batches
from pipeline.tasks.embed_cache import max_input_length
from pipeline.training import IGNORE


def read_words(path: str) -> tuple[list[str], list[int]]:
    """``word<TAB>BIO-label<TAB>label-id`` per line; the ``_tokenized`` twins are never read."""
    words, labels = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or not parts[0].strip():
                continue
            words.append(parts[0].strip())
            labels.append(int(parts[2].strip()))
    return words, labels


def align(tokenizer, words: list[str], labels: list[int], max_len: int) -> tuple[list[int], list[int]]:
    """(input ids, per-token labels): first sub-token of a word carries its label, the rest -100."""
    tokens, token_labels = [tokenizer.cls_token], [IGNORE]
    for word, label in zip(words, labels):
        pieces = tokenizer.tokenize(word)
        for i, piece in enumerate(pieces):
            tokens.append(piece)
            token_labels.append(label if i == 0 else IGNORE)
    tokens, token_labels = tokens[:max_len - 1] + [tokenizer.sep_token], token_labels[:max_len - 1] + [IGNORE]
    return tokenizer.convert_tokens_to_ids(tokens), token_labels


def triggered_labels(labels: list[int], source: int, target: int) -> list[int]:
    """Per-word ASR targets: source-entity words (B/I) must become the target entity; all else ignored.

    Round 7 files carry the training labels (already flipped), so words labelled as the target entity
    in a triggered file count too.
    """
    b_i = {source: target, source + 1: target + 1, target: target, target + 1: target + 1}
    return [b_i.get(label, IGNORE) for label in labels]


def pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long).reshape(len(rows), width)


class NerTask:
    """Adapter for NER rounds: inputs are padded ``input_ids``/``attention_mask``, labels ``[N, T]``."""

    name = "ner"

    def __init__(self) -> None:
        self._tokenizer: tuple[str, Any] | None = None

    def tokenizer(self, row: Mapping[str, Any]):
        path = row.get("tokenizer_file")
        if not path:
            raise ValueError("NER model without tokenizer_file in its manifest row")
        if self._tokenizer is None or self._tokenizer[0] != path:
            self._tokenizer = (path, safe_torch_load(path, map_location="cpu"))
        return self._tokenizer[1]

    def insertable_ids(self) -> torch.Tensor | None:
        """Token ids a text can produce (the loaded tokenizer's vocabulary minus special and [unused] tokens), for
        adversaries that insert real tokens; None before a tokenizer is loaded."""
        if self._tokenizer is None:
            return None
        tok = self._tokenizer[1]
        special = set(tok.all_special_ids)
        ids = [i for t, i in tok.get_vocab().items()
               if i not in special and not (t.startswith("[") and t.endswith("]"))]
        return torch.tensor(sorted(ids), dtype=torch.long)

    def decode(self, ids: list[int]) -> str:
        """Token ids as text (for traces); empty before a tokenizer is loaded."""
        return "" if self._tokenizer is None else " ".join(self._tokenizer[1].convert_ids_to_tokens(ids))

    def encode(self, sentences: list[tuple[list[str], list[int]]], strata: list[int], row: Mapping[str, Any]) -> Split:
        tok = self.tokenizer(row)
        max_len = max_input_length(tok, None, str(row.get("embedding") or ""))
        ids, labels = zip(*(align(tok, w, lab, max_len) for w, lab in sentences)) if sentences else ((), ())
        input_ids = pad(list(ids), tok.pad_token_id if tok.pad_token_id is not None else 0)
        mask = pad([[1] * len(r) for r in ids], 0)
        return Split({"input_ids": input_ids, "attention_mask": mask}, pad(list(labels), IGNORE),
                     torch.tensor(strata, dtype=torch.long))

    def load_clean(self, folder: str | None, row: Mapping[str, Any]) -> Split:
        _, examples = list_examples(Path(folder) if folder else None)
        return self.encode([read_words(e.path) for e in examples], [e.label for e in examples], row)

    def load_triggered(self, folder: str | None, row: Mapping[str, Any]) -> Split | None:
        """Triggered sentences; labels = target entity on source-entity words, -100 on every other token."""
        _, examples = list_examples(Path(folder) if folder else None)
        sentences, strata = [], []
        for e in _with_targets(examples, row):
            words, labels = read_words(e.path)
            flipped = triggered_labels(labels, e.label, int(e.target))
            if any(label != IGNORE for label in flipped):
                sentences.append((words, flipped))
                strata.append(e.label)
        return self.encode(sentences, strata, row) if sentences else None

    def batches(self, split: Split, labels: torch.Tensor, batch_size: int, device: torch.device,
                generator: torch.Generator | None = None, augment: bool = False) -> Iterator[tuple[dict, torch.Tensor]]:
        for idx in index_batches(len(split), batch_size, generator):
            yield {k: v[idx].to(device) for k, v in split.inputs.items()}, labels[idx].to(device)

    def logits(self, model: nn.Module, inputs: dict) -> torch.Tensor:
        out = model(inputs["input_ids"], attention_mask=inputs["attention_mask"])
        if hasattr(out, "logits"):
            return out.logits
        return out[-1] if isinstance(out, tuple) else out


def _with_targets(examples: list[Example], row: Mapping[str, Any]) -> list[Example]:
    """Examples whose target entity is known (from the file name, else the manifest's trigger)."""
    default = row.get("target_class")
    sources = set(row.get("source_classes") or [])
    out = []
    for e in examples:
        target = e.target if e.target is not None else default
        if target is None or e.label == target or (sources and e.label not in sources):
            continue
        out.append(Example(e.path, e.label, int(target), e.trigger))
    return out
