"""Rounds 5/6 summary embeddings, computed as NIST's reference does, each distinct text once per round.

The transformer is frozen in these rounds, so a text's ``[H]`` summary vector depends only on the
embedding file, the tokenizer and the summary rule. Vectors are stored on disk in shards under
``<round>/.seam-cache/embeddings/<key>/`` (``SEAM_CACHE_DIR`` overrides the root) and shared by every
model and every method of the round; a file lock makes concurrent workers compute each text once.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

CACHE_ENV = "SEAM_CACHE_DIR"
DISABLE_ENV = "SEAM_EMBED_CACHE"  # "0" turns the on-disk cache off (benchmarks: repair time without it)
MAX_LENGTH_BY_FAMILY = {"gpt": 1024}  # fallback when a tokenizer pickle carries no usable model_max_length
DEFAULT_MAX_LENGTH = 512
MAX_SHARDS = 16  # beyond this many shard files, a write merges them all into one (every lookup reads every shard)

Embedder = Callable[[Sequence[str]], torch.Tensor]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def max_input_length(tokenizer, embedding, name: str = "") -> int:
    """The reference's ``max_model_input_sizes[...]``; newer pickles only carry ``model_max_length``."""
    length = getattr(tokenizer, "model_max_length", None)
    if not isinstance(length, int) or length > 100_000:
        length = next((v for k, v in MAX_LENGTH_BY_FAMILY.items() if k in name.lower()), DEFAULT_MAX_LENGTH)
    positions = getattr(getattr(embedding, "config", None), "max_position_embeddings", None)
    return min(length, positions) if isinstance(positions, int) else length


@torch.no_grad()
def summary_vectors(embedding: torch.nn.Module, tokenizer, texts: Sequence[str], cls_token_is_first: bool,
                    device: torch.device, batch_size: int = 32, name: str = "") -> torch.Tensor:
    """``[N, H]``: first token when ``cls_token_is_first``, else the last non-pad token (GPT-2), fp32.

    Right padding keeps each text's vectors equal to the reference's one-text-at-a-time result (a causal
    model would see shifted positions under left padding). Texts are batched by length for speed.
    """
    if getattr(tokenizer, "pad_token", None) is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    limit = max_input_length(tokenizer, embedding, name) - 2
    embedding.eval().to(device)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: torch.Tensor | None = None
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], max_length=limit, padding=True, truncation=True, return_tensors="pt")
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        hidden = embedding(ids, attention_mask=mask)[0].float()
        if cls_token_is_first:
            vec = hidden[:, 0, :]
        else:
            last = mask.shape[1] - 1 - mask.flip(1).int().argmax(dim=1)
            vec = hidden[torch.arange(hidden.shape[0], device=device), last]
        if out is None:
            out = torch.empty(len(texts), vec.shape[-1])
        out[torch.tensor(idx)] = vec.cpu()
    return out if out is not None else torch.empty(0, 0)


class EmbeddingCache:
    """On-disk ``text -> vector`` store for one (embedding file, tokenizer file, summary rule)."""

    def __init__(self, folder: Path | None):
        self.folder = folder  # None: no cache, every call computes

    @classmethod
    def for_files(cls, root: Path | None, embedding_file: str, tokenizer_file: str, cls_first: bool,
                  group: str | None = None) -> "EmbeddingCache":
        """The round's shared cache, or with ``group`` a separate one for texts only one model asks for (its
        insertion copies), so they neither grow nor slow the shared one."""
        if root is None or os.environ.get(DISABLE_ENV, "1") == "0":
            return cls(None)
        key = f"{file_sha256(embedding_file)[:24]}-{file_sha256(tokenizer_file)[:12]}-{'first' if cls_first else 'last'}"
        return cls(root / "embeddings" / key if group is None else root / "copies" / key / group)

    def _read(self) -> dict[str, torch.Tensor]:
        found: dict[str, torch.Tensor] = {}
        for shard in sorted(self.folder.glob("shard-*.pt")):
            data = torch.load(shard, map_location="cpu", weights_only=True)
            found.update(zip(data["keys"], data["vectors"]))
        return found

    def _write(self, keys: list[str], vectors: torch.Tensor) -> Path:
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
        path, tmp = self.folder / f"shard-{name}.pt", self.folder / f".shard-{name}.tmp-{os.getpid()}"
        torch.save({"keys": keys, "vectors": vectors.contiguous()}, tmp)
        os.replace(tmp, path)
        return path

    def _compact(self, found: dict[str, torch.Tensor]) -> None:
        """Merge every shard into one once there are more than ``MAX_SHARDS`` (under the lock), so a round's
        thousands of repairs, each adding a shard, keep lookups at a few file reads."""
        shards = sorted(self.folder.glob("shard-*.pt"))
        if len(shards) <= MAX_SHARDS:
            return
        keys = list(found)
        merged = self._write(keys, torch.stack([found[k] for k in keys]))
        for shard in shards:
            if shard != merged:
                shard.unlink()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def vectors(self, texts: Sequence[str], compute: Embedder) -> torch.Tensor:
        """``[N, H]`` for ``texts``; only texts never seen with this key are passed to ``compute``."""
        if not texts:
            return torch.empty(0, 0)
        if self.folder is None:
            return _dedup_compute(texts, compute)
        keys = [text_key(t) for t in texts]
        with self._locked():
            found = self._read()
            missing = list(dict.fromkeys(k for k in keys if k not in found))
            if missing:
                by_key = dict(zip(keys, texts))
                fresh = compute([by_key[k] for k in missing])
                self._write(missing, fresh)
                found.update(zip(missing, fresh))
                self._compact(found)
        return torch.stack([found[k] for k in keys])


def _dedup_compute(texts: Sequence[str], compute: Embedder) -> torch.Tensor:
    unique = list(dict.fromkeys(texts))
    vectors = compute(unique)
    pos = {t: i for i, t in enumerate(unique)}
    return vectors[torch.tensor([pos[t] for t in texts])]
