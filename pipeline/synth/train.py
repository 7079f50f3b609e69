"""Train one classifier with augmentation and measure clean accuracy and attack success.

Images arrive as uint8 NHWC arrays and are fed as float in [0, 1] (pixel / 255), NCHW, with no
normalisation outside the model: the TrojAI input convention every consumer of the round uses.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EpochHook = Callable[[int, int, float], None]  # (epoch done, epochs, mean loss)


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser and schedule: SGD + momentum with a one-cycle learning rate, random-shift augmentation."""

    epochs: int
    batch_size: int = 64
    learning_rate: float = 0.05
    weight_decay: float = 5e-4
    shift_pixels: int = 3
    brightness_jitter: float = 0.15


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


def augment(x: torch.Tensor, shift: int, brightness: float, gen: torch.Generator) -> torch.Tensor:
    """Random translation (reflect-padded crop) and per-image brightness, so the backdoor must be robust."""
    n, _, h, w = x.shape
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift), mode="reflect")
        oy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        ox = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w))[:, None, None, :]
        x = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    if brightness > 0:
        x = x * (1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * brightness)
    return x.clamp_(0.0, 1.0)


def train_model(model: nn.Module, images: np.ndarray, labels: np.ndarray, settings: TrainSettings, seed: int,
                on_epoch: EpochHook | None = None) -> tuple[nn.Module, float]:
    """Train in place; returns the model (eval mode) and the wall time in seconds."""
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all = to_tensor(images), torch.from_numpy(labels.astype(np.int64))
    steps_per_epoch = max(1, int(np.ceil(len(y_all) / settings.batch_size)))
    opt = torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=0.9, nesterov=True,
                          weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.learning_rate, pct_start=0.25,
                                                total_steps=settings.epochs * steps_per_epoch)
    model.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(y_all), generator=gen)
        total = 0.0
        for k in range(steps_per_epoch):
            idx = order[k * settings.batch_size:(k + 1) * settings.batch_size]
            if len(idx) < 2:  # batch-norm needs two samples
                continue
            xb = augment(x_all[idx], settings.shift_pixels, settings.brightness_jitter, gen)
            loss = F.cross_entropy(model(xb), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        if on_epoch is not None:
            on_epoch(epoch + 1, settings.epochs, total / steps_per_epoch)
    model.eval()
    return model, time.perf_counter() - start


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted classes for uint8 NHWC images."""
    model.eval()
    preds = [model(to_tensor(images[i:i + batch_size])).argmax(1).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(preds) if preds else np.zeros(0, np.int64)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    return float((predict(model, images) == labels).mean()) if len(labels) else float("nan")


def attack_success(model: nn.Module, triggered: np.ndarray, target: int) -> float:
    """Fraction of triggered source-class images classified as the target class."""
    return float((predict(model, triggered) == target).mean()) if len(triggered) else float("nan")
