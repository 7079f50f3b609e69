"""Pieces several methods share: optimiser fields, seeding, timing."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import torch

from pipeline.training import OptimConfig


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
