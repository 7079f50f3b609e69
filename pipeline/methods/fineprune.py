"""Fine-pruning (Liu, Dolan-Gavitt, Garg, RAID 2018) on the same clean data and budget as SEAM.

Channels of the last conv layer that stay dormant on clean inputs are pruned, most dormant first,
while accuracy on the clean repair data stays within ``max_acc_drop`` of the original; then the
pruned model is fine-tuned on the same data. Pruned channels stay zero (weights and BatchNorm
affine), so the saved model is an ordinary module.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline.methods.common import TrainingConfig, timed
from pipeline.methods.finetune import finetune_epochs
from pipeline.methods.layers import last_conv_with_bn
from pipeline.registry import register_method
from pipeline.tasks.base import RepairData
from pipeline.training import accuracy


@dataclass(frozen=True)
class FinePruneConfig(TrainingConfig):
    max_acc_drop: float = 0.05  # stop pruning when clean repair-set accuracy falls more than this
    step_fraction: float = 0.05  # share of channels pruned per step
    max_prune_fraction: float = 0.9
    epochs: int = 20


@torch.no_grad()
def mean_activation(model: nn.Module, data: RepairData, conv: nn.Conv2d) -> torch.Tensor:
    """Mean post-ReLU activation per output channel of ``conv`` over the clean data."""
    total = torch.zeros(conv.out_channels)
    count = 0

    def hook(_m, _i, out):
        nonlocal count
        total.add_(out.relu().mean(dim=(0, 2, 3)).cpu() * out.shape[0])
        count += out.shape[0]

    handle = conv.register_forward_hook(hook)
    model.eval()
    try:
        for inputs, _ in data.task.batches(data.clean, data.clean.labels, 128, data.device):
            data.task.logits(model, inputs)
    finally:
        handle.remove()
    return total / max(count, 1)


@torch.no_grad()
def apply_mask(conv: nn.Conv2d, bn: nn.Module | None, keep: torch.Tensor) -> None:
    mask = keep.to(conv.weight.device, conv.weight.dtype)
    conv.weight.mul_(mask.view(-1, 1, 1, 1))
    if conv.bias is not None:
        conv.bias.mul_(mask)
    if bn is not None and bn.affine:
        bn.weight.mul_(mask)
        bn.bias.mul_(mask)


def _keep_pruned_zero(conv: nn.Conv2d, bn: nn.Module | None, keep: torch.Tensor) -> list:
    """Gradient hooks so fine-tuning cannot revive pruned channels; removed afterwards."""
    handles = []
    params = [(conv.weight, (-1, 1, 1, 1)), (conv.bias, (-1,))]
    if bn is not None and bn.affine:
        params += [(bn.weight, (-1,)), (bn.bias, (-1,))]
    for p, shape in params:
        if p is not None:
            m = keep.to(p.device, p.dtype).view(shape)
            handles.append(p.register_hook(lambda g, m=m: g * m))
    return handles


@register_method("fineprune", FinePruneConfig)
def fineprune(model: nn.Module, data: RepairData, cfg: FinePruneConfig) -> tuple[nn.Module, dict]:
    """Prune dormant last-layer channels while clean accuracy holds, then fine-tune."""
    trace: dict = {"n_recover": len(data.clean)}
    conv, bn = last_conv_with_bn(model)
    with timed(trace, "seconds_forget"):
        original = accuracy(model, data.task, data.clean, data.device)
        order = torch.argsort(mean_activation(model, data, conv))  # most dormant first
        step = max(1, int(round(conv.out_channels * cfg.step_fraction)))
        keep = torch.ones(conv.out_channels)
        pruned = 0
        backup = {k: v.clone() for k, v in model.state_dict().items()}
        while pruned + step <= int(conv.out_channels * cfg.max_prune_fraction):
            trial = keep.clone()
            trial[order[pruned:pruned + step]] = 0
            apply_mask(conv, bn, trial)
            if accuracy(model, data.task, data.clean, data.device) < original - cfg.max_acc_drop:
                model.load_state_dict(backup)
                apply_mask(conv, bn, keep)
                break
            keep, pruned = trial, pruned + step
    trace.update(pruned_channels=pruned, channels=conv.out_channels, epochs_forget=0)
    data.on_phase_end("forget", model)
    handles = _keep_pruned_zero(conv, bn, keep)
    try:
        with timed(trace, "seconds_recover"):
            finetune_epochs(model, data, cfg.epochs, cfg, trace, salt=30)
    finally:
        for h in handles:
            h.remove()
    apply_mask(conv, bn, keep)  # momentum/weight decay cannot move zeros, but make it exact
    trace["epochs_recover"] = cfg.epochs
    data.on_phase_end("recover", model)
    return model, trace
