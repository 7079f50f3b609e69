"""Rounds 5/6 sentiment: text -> frozen round transformer -> cached ``[N, 1, H]`` summary -> the head.

Only the head (the loaded ``model.pt``) is what a method trains, exactly as in the rounds, so the
transformer runs once per distinct text of the round (see ``embed_cache``), never per epoch.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from manifests.examples import Example, list_examples
from pipeline.safe_pickle import safe_torch_load
from pipeline.tasks.base import Split, index_batches, select_triggered, trigger_targets
from pipeline.tasks.embed_cache import CACHE_ENV, EmbeddingCache, summary_vectors
from pipeline.tasks.text_insertions import insertion_copies, vocabulary

CACHE_DIRNAME = ".seam-cache"


def read_text(path: str) -> str:
    """One review per file, read verbatim (reference: ``fh.read()``)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def round_root(row: Mapping[str, Any]) -> Path | None:
    """The round directory holding ``embeddings/`` (where the per-round cache lives)."""
    emb = row.get("embedding_file")
    return Path(emb).resolve().parent.parent if emb else None


def cache_root(row: Mapping[str, Any], override: str | os.PathLike | None = None) -> Path | None:
    if override or os.environ.get(CACHE_ENV):
        return Path(override or os.environ[CACHE_ENV])
    root = round_root(row)
    return root / CACHE_DIRNAME if root else None


class SentimentTask:
    """Adapter for sentiment rounds: inputs are ``[N, 1, H]`` float summaries of the round's embedding."""

    name = "sentiment"

    def __init__(self, cache_dir: str | os.PathLike | None = None, device: torch.device | None = None):
        self.cache_dir = cache_dir
        self.device = device or torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
        self._encoder: tuple[str, Any, Any] | None = None  # (embedding file, embedding, tokenizer), loaded on demand
        self._row: Mapping[str, Any] | None = None  # the model whose clean examples were loaded (for new texts)

    def _load_encoder(self, row: Mapping[str, Any]) -> tuple[Any, Any]:
        emb_file, tok_file = row.get("embedding_file"), row.get("tokenizer_file")
        if not emb_file or not tok_file:
            raise ValueError("sentiment model without embedding_file/tokenizer_file in its manifest row")
        if self._encoder is None or self._encoder[0] != emb_file:
            embedding = safe_torch_load(emb_file, map_location="cpu")
            tokenizer = safe_torch_load(tok_file, map_location="cpu")
            for module in embedding.parameters():
                module.requires_grad_(False)
            self._encoder = (emb_file, embedding, tokenizer)
        return self._encoder[1], self._encoder[2]

    def embed(self, texts: Sequence[str], row: Mapping[str, Any], group: str | None = None) -> torch.Tensor:
        """``[N, H]`` summaries of ``texts`` under the row's embedding, through the round cache (``group``: a
        separate cache for texts only one model asks for)."""
        cls_first = bool(row.get("cls_token_is_first"))
        cache = EmbeddingCache.for_files(cache_root(row, self.cache_dir), row["embedding_file"], row["tokenizer_file"],
                                         cls_first, group)

        def compute(batch: Sequence[str]) -> torch.Tensor:
            embedding, tokenizer = self._load_encoder(row)
            return summary_vectors(embedding, tokenizer, batch, cls_first, self.device,
                                   name=f"{row.get('embedding')} {row.get('embedding_flavor')}")

        return cache.vectors(list(texts), compute)

    def _split(self, examples: list[Example], labels: list[int], row: Mapping[str, Any]) -> Split:
        if not examples:
            return Split(torch.empty(0, 1, 0), torch.empty(0, dtype=torch.long))
        texts = [read_text(e.path) for e in examples]
        return Split(self.embed(texts, row).unsqueeze(1), torch.tensor(labels, dtype=torch.long), texts=texts)

    def load_clean(self, folder: str | None, row: Mapping[str, Any]) -> Split:
        _, examples = list_examples(Path(folder) if folder else None)
        self._row = row
        return self._split(examples, [e.label for e in examples], row)

    def with_insertions(self, split: Split, copies: int, seed: int) -> Split:
        """``split`` followed by ``copies`` copies of each of its texts with random insertions and the text's
        label (``text_insertions``). The copies are cached apart from the round's shared cache, one group per
        (texts, copies, seed): no other model asks for them, and 8 per example would make the shared cache,
        which every lookup reads whole, nine times larger. Reruns and other methods still find them."""
        if copies <= 0 or not len(split):
            return split
        if split.texts is None or self._row is None:
            raise ValueError("insertion copies need the clean texts: load them with this adapter first")
        # the tokenizer alone: when the copies are cached, the transformer need not be loaded at all
        tokenizer = self._encoder[2] if self._encoder is not None else safe_torch_load(self._row["tokenizer_file"],
                                                                                        map_location="cpu")
        texts = insertion_copies(split.texts, copies, seed, vocabulary(tokenizer))
        group = hashlib.sha256("\n".join([*split.texts, str(copies), str(seed)]).encode("utf-8")).hexdigest()[:16]
        vectors = self.embed(texts, self._row, group).unsqueeze(1)
        labels = split.labels.repeat_interleave(copies)
        return Split(torch.cat([split.inputs, vectors]), torch.cat([split.labels, labels]), texts=split.texts + texts)

    def load_triggered(self, folder: str | None, row: Mapping[str, Any]) -> Split | None:
        """Triggered reviews from the source classes, labelled with the target class (for ASR)."""
        _, examples = list_examples(Path(folder) if folder else None)
        fallback = next(iter(trigger_targets(row).values()), None)

        def target_of(e: Example, default: int | None) -> int | None:
            return e.target if e.target is not None else (fallback if default is None else default)

        keep, labels = select_triggered(examples, row, target_of)
        return self._split(keep, labels, row) if keep else None

    def batches(self, split: Split, labels: torch.Tensor, batch_size: int, device: torch.device,
                generator: torch.Generator | None = None, augment: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in index_batches(len(split), batch_size, generator):
            yield split.inputs[idx].to(device), labels[idx].to(device)

    def logits(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return model(inputs)
