"""Channel Lipschitzness-based Pruning (CLP; Zheng et al., ECCV 2022): data-free backdoor pruning.

A trigger must move a few channels far from small input changes, so those channels have an unusually
large upper bound on their Lipschitz constant. For every Conv2d followed by its BatchNorm, the bound of
output channel k is the largest singular value of conv.weight[k] (reshaped to in x kh*kw) scaled by
|gamma_k / sigma_k|; channels above mean + u x std within their layer are switched off (BatchNorm
weight and bias set to 0). No data is used, so the method is blind by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline.methods.common import timed
from pipeline.registry import register_method
from pipeline.tasks.base import RepairData

BatchNorm = nn.modules.batchnorm._BatchNorm


def conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, BatchNorm]]:
    """Each Conv2d with the BatchNorm registered right after it on the same channels."""
    pairs, conv = [], None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            conv = module
        elif isinstance(module, BatchNorm) and conv is not None:
            if module.num_features == conv.out_channels:
                pairs.append((conv, module))
            conv = None
    return pairs


@torch.no_grad()
def channel_lipschitz(conv: nn.Conv2d, bn: BatchNorm) -> torch.Tensor:
    """Upper bound of each output channel's Lipschitz constant (conv then BatchNorm)."""
    scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).abs() if bn.affine else 1 / (bn.running_var + bn.eps).sqrt()
    w = conv.weight.reshape(conv.out_channels, conv.weight.shape[1], -1).float()
    return torch.linalg.matrix_norm(w, ord=2).cpu() * scale.float().cpu()


@torch.no_grad()
def clp_prune(model: nn.Module, u: float) -> int:
    """Switch off channels whose bound exceeds mean + u x std of their layer; returns how many."""
    pruned = 0
    for conv, bn in conv_bn_pairs(model):
        lips = channel_lipschitz(conv, bn)
        if lips.numel() < 2:
            continue
        index = torch.nonzero(lips > lips.mean() + u * lips.std()).flatten()
        if index.numel() and bn.affine:
            bn.weight[index.to(bn.weight.device)] = 0
            bn.bias[index.to(bn.bias.device)] = 0
            pruned += int(index.numel())
    return pruned


@dataclass(frozen=True)
class ClpConfig:
    """u = 3 is the paper's CIFAR-10 default; smaller prunes more."""

    u: float = 3.0


@register_method("clp", ClpConfig)
def clp(model: nn.Module, data: RepairData, cfg: ClpConfig) -> tuple[nn.Module, dict]:
    """Data-free pruning of high-Lipschitz channels; the clean examples are not touched."""
    trace: dict = {"n_forget": 0, "n_recover": 0}
    with timed(trace, "seconds_recover"):
        trace["pruned_channels"] = clp_prune(model, cfg.u)
    data.on_phase_end("recover", model)
    return model, trace
