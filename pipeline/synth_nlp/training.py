"""Train and judge one synthetic NLP model with the project's shared loop (pipeline.training)."""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from pipeline.synth.gate import Outcome, judge
from pipeline.synth.presets import Gate
from pipeline.tasks.base import Split, TaskAdapter
from pipeline.training import OptimConfig, accuracy, make_optimizer, train_one_epoch

OnEpoch = Callable[[int, int, float], None]


def fit(model: nn.Module, task: TaskAdapter, train: Split, optim: OptimConfig, epochs: int, batch_size: int,
        seed: int, on_epoch: OnEpoch) -> float:
    """Train in place for ``epochs``; returns the wall time in seconds."""
    start = time.perf_counter()
    opt = make_optimizer(model.parameters(), optim)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        loss = train_one_epoch(model, task, train, train.labels, opt, batch_size, torch.device("cpu"), gen, augment=False)
        on_epoch(epoch + 1, epochs, loss)
    model.eval()
    return time.perf_counter() - start


def evaluate(model: nn.Module, task: TaskAdapter, gate: Gate, test: Split, triggered: Split | None,
             reference_acc: float | None) -> Outcome:
    """Gate verdict on held-out data: ACC on clean test, ASR on triggered test (labels = the target)."""
    device = torch.device("cpu")
    acc = accuracy(model, task, test, device)
    asr = accuracy(model, task, triggered, device) if triggered is not None else None
    return judge(gate, acc, asr, reference_acc)


def reference_acc(configs: dict[str, dict], arch: str) -> float | None:
    """Mean test ACC of the round's clean models of ``arch`` that passed the gate."""
    accs = [c["final_clean_data_test_acc"] for c in configs.values()
            if not c["poisoned"] and c["model_architecture"] == arch and c.get("gate_passed")]
    return sum(accs) / len(accs) if accs else None
