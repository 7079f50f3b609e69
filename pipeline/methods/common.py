"""Pieces several methods share: optimiser fields, seeding, timing."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from pipeline.training import OptimConfig


@dataclass(frozen=True)
class TrainingConfig:
    """Fine-tuning settings the baselines share; `seam bench` sets them to SEAM's recovery settings."""

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 32
    bn_mode: str = "train"
    augment: bool = True


def optim(name: str, lr: float, momentum: float, weight_decay: float) -> OptimConfig:
    return OptimConfig(name=name, lr=lr, momentum=momentum, weight_decay=weight_decay)


def generator(seed: int, salt: int) -> torch.Generator:
    """A CPU generator per (model seed, purpose): draws, wrong labels and batch order are reproducible."""
    return torch.Generator().manual_seed(seed * 1_000_003 + salt)


@contextmanager
def timed(trace: dict, key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        trace[key] = trace.get(key, 0.0) + time.perf_counter() - start
