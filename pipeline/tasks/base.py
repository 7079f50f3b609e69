"""What every repair method receives: the task adapter, the clean data split, and a blind phase hook."""
from __future__ import annotations

from dataclasses import dataclass, field
import json
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

import torch
from torch import nn


@dataclass
class Split:
    """Examples and their true labels; ``inputs`` is whatever the adapter batches (tensors indexed on dim 0)."""

    inputs: Any
    labels: torch.Tensor
    strata: torch.Tensor | None = None  # one class per example for balancing when labels are per token (NER)
    texts: list[str] | None = None  # the raw texts behind ``inputs`` where they are summaries (sentiment)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def classes(self) -> torch.Tensor:
        """One class per example: what class-balanced draws stratify on."""
        return self.labels if self.strata is None else self.strata

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(_index(self.inputs, index), self.labels[index], None if self.strata is None else self.strata[index],
                     None if self.texts is None else [self.texts[i] for i in index.tolist()])


def _index(inputs: Any, index: torch.Tensor) -> Any:
    if isinstance(inputs, dict):
        return {k: v[index] for k, v in inputs.items()}
    return inputs[index]


class TaskAdapter(Protocol):
    """Task-specific pieces of the shared training loop (train_one_epoch / evaluate).

    Adapters whose examples are texts behind fixed summaries (sentiment) also offer
    ``with_insertions(split, copies, seed) -> Split``: SEAM's ``insert_copies`` looks for it.
    """

    name: str

    def load_clean(self, folder: str | None, row: Mapping[str, Any]) -> Split:
        """All examples of a clean folder with their true labels."""
        ...

    def load_triggered(self, folder: str | None, row: Mapping[str, Any]) -> Split | None:
        """Triggered examples from the source classes, labelled with the trigger's target (for ASR)."""
        ...

    def batches(self, split: Split, labels: torch.Tensor, batch_size: int, device: torch.device,
                generator: torch.Generator | None = None, augment: bool = False) -> Iterator[tuple[Any, torch.Tensor]]: ...

    def logits(self, model: nn.Module, inputs: Any) -> torch.Tensor: ...


PhaseHook = Callable[[str, nn.Module], None]


@dataclass
class RepairData:
    """Inputs of ``repair(model, data, config)``.

    ``clean`` is the only data a method may learn from (the clean example folder minus any held-out
    evaluation split). ``on_phase_end`` lets the caller log ACC/ASR after each phase; it returns
    nothing, so no method can use ASR to decide anything.
    """

    task: TaskAdapter
    num_classes: int
    clean: Split
    device: torch.device
    seed: int = 0
    on_phase_end: PhaseHook = field(default=lambda phase, model: None)


@dataclass
class EvalSets:
    """Held-out data for metrics only: clean ACC and ASR (triggered inputs labelled with the target)."""

    acc: Split
    acc_source: str
    asr: Split | None
    asr_source: str | None


def index_batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Index tensors of each batch: shuffled with ``generator``, in order without one."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def trigger_targets(row: Mapping[str, Any]) -> dict[int, int]:
    """Trigger index -> target class, from the manifest's trigger list."""
    triggers = json.loads(row["triggers_json"]) if row.get("triggers_json") else []
    out = {}
    for i, trig in enumerate(triggers or []):
        if isinstance(trig, dict) and trig.get("target_class") is not None:
            out[int(trig.get("trigger_number", i))] = int(trig["target_class"])
    return out


def select_triggered(examples: Iterable[Any], row: Mapping[str, Any],
                     target_of: Callable[[Any, int | None], int | None]) -> tuple[list[Any], list[int]]:
    """Triggered examples whose class is a source class (and not the target), with their target labels.

    ``target_of(example, default_target)`` says which class the trigger of that example aims at.
    """
    default_target = row.get("target_class")
    sources = set(row.get("source_classes") or [])
    keep, labels = [], []
    for e in examples:
        target = target_of(e, default_target)
        if target is None or e.label == target or (sources and e.label not in sources):
            continue
        keep.append(e)
        labels.append(int(target))
    return keep, labels
