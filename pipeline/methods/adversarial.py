"""Universal adversarial recovery: train on clean examples plus a shared worst-case perturbation.

A backdoored model has a shortcut: one input change that sends most inputs to the target class. With
only clean data we cannot see the trigger, but a universal perturbation found by gradient ascent on
the clean examples tends to travel along that shortcut (the premise of Neural Cleanse and I-BAU).
Recovering on perturbed copies with their *true* labels teaches the model to ignore that direction,
so clean-data recovery does not rebuild the trigger -> target mapping. The perturbation is updated
with the gradient of the same backward pass ("free" adversarial training): about one extra forward
and backward per batch. Blind: only the clean repair examples and their labels are used.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from pipeline.tasks.base import TaskAdapter

ExtraLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor | None]


def universal_adversarial_loss(student: nn.Module, task: TaskAdapter, eps: float, weight: float = 1.0,
                               steps_per_eps: float = 4.0) -> ExtraLoss:
    """Cross-entropy on ``inputs + delta`` (true labels); delta (L-inf <= eps, shared by all inputs) climbs it."""
    state: dict[str, torch.Tensor] = {}
    step = eps / steps_per_eps

    def loss(inputs: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        if not (isinstance(inputs, torch.Tensor) and inputs.is_floating_point()):
            return None  # token ids (NER): no continuous input to perturb
        delta = state.get("delta")
        if delta is None or delta.shape[1:] != inputs.shape[1:]:
            delta = torch.zeros_like(inputs[:1])
        d = delta.clone().requires_grad_(True)
        adv_logits = task.logits(student, (inputs + d).clamp(0.0, 1.0) if inputs.dim() == 4 else inputs + d)
        ce = nn.functional.cross_entropy(adv_logits.reshape(-1, adv_logits.shape[-1]), target.reshape(-1),
                                         ignore_index=-100)
        (grad,) = torch.autograd.grad(ce, d, retain_graph=True)
        state["delta"] = (delta + step * grad.sign()).clamp(-eps, eps).detach()
        return weight * ce

    return loss
