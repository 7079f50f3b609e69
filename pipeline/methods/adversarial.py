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

import torch
from torch import nn

from pipeline.tasks.base import TaskAdapter


class UniversalAdversary:
    """Cross-entropy on ``inputs + delta`` (true labels); delta (L-inf <= eps, shared by all inputs) climbs it.

    Called as an extra loss of ``train_one_epoch``: ``(inputs, logits, target) -> loss | None``.
    """

    def __init__(self, student: nn.Module, task: TaskAdapter, eps: float, weight: float = 1.0,
                 steps_per_eps: float = 4.0) -> None:
        self.student, self.task, self.eps, self.weight = student, task, eps, weight
        self.step = eps / steps_per_eps
        self.delta: torch.Tensor | None = None

    def __call__(self, inputs: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        if not (isinstance(inputs, torch.Tensor) and inputs.is_floating_point()):
            return None  # token ids (NER): no continuous input to perturb
        if self.delta is None or self.delta.shape[1:] != inputs.shape[1:]:
            self.delta = torch.zeros_like(inputs[:1])
        d = self.delta.clone().requires_grad_(True)
        perturbed = (inputs + d).clamp(0.0, 1.0) if inputs.dim() == 4 else inputs + d  # images live in [0, 1]
        adv_logits = self.task.logits(self.student, perturbed)
        ce = nn.functional.cross_entropy(adv_logits.reshape(-1, adv_logits.shape[-1]), target.reshape(-1),
                                         ignore_index=-100)
        (grad,) = torch.autograd.grad(ce, d, retain_graph=True)
        self.delta = (self.delta + self.step * grad.sign()).clamp(-self.eps, self.eps).detach()
        return self.weight * ce
