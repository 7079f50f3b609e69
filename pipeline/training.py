"""The shared loop every method uses, in the shape of torchvision's references: train_one_epoch, evaluate."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from pipeline.tasks.base import Split, TaskAdapter

IGNORE = -100


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser of one training phase; a fresh optimiser is built per phase."""

    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0


def make_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    builders = {
        "sgd": lambda p: torch.optim.SGD(p, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay),
        "adam": lambda p: torch.optim.Adam(p, lr=cfg.lr, weight_decay=cfg.weight_decay),
        "adamw": lambda p: torch.optim.AdamW(p, lr=cfg.lr, weight_decay=cfg.weight_decay),
    }
    if cfg.name not in builders:
        raise ValueError(f"unknown optimiser {cfg.name!r}; choose from {sorted(builders)}")
    return builders[cfg.name]([p for p in params if p.requires_grad])


BN_MODES = ("train", "eval", "recalibrate")


def set_train_mode(model: nn.Module, bn_mode: str) -> None:
    """Train mode, with BatchNorm updating its statistics ("train", "recalibrate") or frozen ("eval")."""
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode must be one of {BN_MODES}, not {bn_mode!r}")
    model.train()
    if bn_mode == "eval":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def label_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every labelled position (per example or per token), ``IGNORE`` skipped."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE)


def train_one_epoch(model: nn.Module, task: TaskAdapter, split: Split, labels: torch.Tensor,
                    optimizer: torch.optim.Optimizer, batch_size: int, device: torch.device,
                    generator: torch.Generator, augment: bool = True, bn_mode: str = "train",
                    extra_loss=None, bn_split: Split | None = None, clip_norm: float = 0.0,
                    sam_rho: float = 0.0) -> float:
    """One pass over ``split`` trained towards ``labels`` (true or deliberately wrong); mean loss.

    ``extra_loss(inputs, logits, target)`` adds a term computed from the same batch (distillation,
    adversarial recovery); it may return None to add nothing. With
    ``bn_mode="recalibrate"`` BatchNorm statistics are re-estimated on ``bn_split`` (default: ``split``)
    after the epoch. ``clip_norm`` > 0 clips the gradient's global norm before each step. ``sam_rho`` > 0 takes
    each step from the gradient at the worst weights within that L2 distance (sharpness-aware minimisation,
    Foret et al. 2021), which costs a second forward and backward per batch.
    """
    set_train_mode(model, bn_mode)
    clipped = [p for group in optimizer.param_groups for p in group["params"]] if clip_norm > 0 else []
    total, count = 0.0, 0
    for inputs, target in task.batches(split, labels, batch_size, device, generator, augment):
        if int((target != IGNORE).sum()) == 0:
            continue
        optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(model, task, inputs, target, extra_loss)
        loss.backward()
        if sam_rho > 0:
            sharpness_aware_gradient(model, task, inputs, target, extra_loss, sam_rho)
        if clipped:
            nn.utils.clip_grad_norm_(clipped, clip_norm)
        optimizer.step()
        total += float(loss.detach()) * len(target)
        count += len(target)
    if bn_mode == "recalibrate":
        recalibrate_bn(model, task, split if bn_split is None else bn_split, device)
    model.eval()
    return total / max(count, 1)


def batch_loss(model: nn.Module, task: TaskAdapter, inputs, target: torch.Tensor, extra_loss=None) -> torch.Tensor:
    """The batch's loss towards ``target`` plus ``extra_loss``'s term (when it gives one)."""
    logits = task.logits(model, inputs)
    loss = label_loss(logits, target)
    extra = None if extra_loss is None else extra_loss(inputs, logits, target)
    return loss if extra is None else loss + extra


def sharpness_aware_gradient(model: nn.Module, task: TaskAdapter, inputs, target: torch.Tensor, extra_loss,
                             rho: float) -> None:
    """Replace the gradients left by ``backward`` with those at ``w + rho * g / |g|`` (SAM's ascent step), weights
    restored. A backdoor's weights are where clean data alone leaves the loss sharp (FT-SAM, Zhu et al. 2023)."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    steps = [p.grad * (rho / (norm + 1e-12)) for p in params]
    with torch.no_grad():
        for p, e in zip(params, steps):
            p.add_(e)
    for p in params:
        p.grad = None
    try:
        batch_loss(model, task, inputs, target, extra_loss).backward()
    finally:
        with torch.no_grad():
            for p, e in zip(params, steps):
                p.sub_(e)


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, task: TaskAdapter, split: Split, device: torch.device, seed: int = 0) -> None:
    """Re-estimate BatchNorm running statistics on ``split`` (cumulative average, no gradient).

    After a few steps on ~100 examples the running statistics still describe the old weights (a
    handful of updates at momentum 0.1), so eval-mode accuracy swings from epoch to epoch; re-estimating
    them on the clean repair data makes the blind stopping rules read a stable accuracy.
    """
    bns = batchnorms(model)
    if not bns or len(split) == 0:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        for inputs, _ in task.batches(split, split.labels, 64, device, torch.Generator().manual_seed(seed), True):
            task.logits(model, inputs)
    finally:
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
        model.eval()


@torch.no_grad()
def predict(model: nn.Module, task: TaskAdapter, split: Split, device: torch.device, batch_size: int = 128) -> torch.Tensor:
    """Arg-max predictions in eval mode, same shape as ``split.labels``."""
    model.eval()
    preds = []
    for inputs, _ in task.batches(split, split.labels, batch_size, device, None, False):
        preds.append(task.logits(model, inputs).argmax(dim=-1).cpu())
    return torch.cat(preds) if preds else torch.empty_like(split.labels)


def accuracy(model: nn.Module, task: TaskAdapter, split: Split, device: torch.device,
             labels: torch.Tensor | None = None) -> float:
    """Share of labelled positions predicted as ``labels`` (default: the true labels)."""
    labels = split.labels if labels is None else labels
    if len(split) == 0:
        return float("nan")
    preds = predict(model, task, split, device)
    mask = labels != IGNORE
    return float((preds[mask] == labels[mask]).float().mean()) if bool(mask.any()) else float("nan")


def balanced_split(labels: torch.Tensor, first_per_class: int, generator: torch.Generator,
                   disjoint: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-balanced (first, second) index sets: ``first_per_class`` of each class go to the first set.

    With ``disjoint`` the second set is the rest (Algorithm 1); otherwise the second set is everything.
    """
    first, second = [], []
    for cls in torch.unique(labels):
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        k = min(first_per_class, len(idx) - 1) if disjoint and len(idx) > 1 else min(first_per_class, len(idx))
        first.append(idx[:k])
        second.append(idx[k:] if disjoint else idx)
    return torch.cat(first).sort().values, torch.cat(second).sort().values


def random_wrong_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform over the C-1 wrong classes for each labelled position; ignored positions stay ignored."""
    offset = torch.randint(1, num_classes, labels.shape, generator=generator)
    wrong = (labels + offset) % num_classes
    return torch.where(labels == IGNORE, labels, wrong)


def random_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform over all C classes (the true one included); ignored positions stay ignored."""
    drawn = torch.randint(0, num_classes, labels.shape, generator=generator)
    return torch.where(labels == IGNORE, labels, drawn)
