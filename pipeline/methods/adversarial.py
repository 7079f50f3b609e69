"""Universal adversarial recovery: train on clean examples plus a shared worst-case input change.

A backdoored model has a shortcut: one input change that sends most inputs to the target class. With
only clean data we cannot see the trigger, but a universal change found by gradient ascent on the
clean examples tends to travel along that shortcut (the premise of Neural Cleanse and I-BAU).
Recovering on changed copies with their *true* labels teaches the model to ignore that direction, so
clean-data recovery does not rebuild the trigger -> target mapping.

The change covers the two trigger families TrojAI rounds use: an additive pattern ``delta`` (L-inf
<= eps; patches, polygons) and, for images, a per-channel colour transform ``x * (1 + gain) + bias``
(|gain|, |bias| <= colour; Instagram-style filters). It is updated with the gradient of the same
backward pass ("free" adversarial training): about one extra forward and backward per batch. Blind:
only the clean repair examples and their labels are used.
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.tasks.base import TaskAdapter


class UniversalAdversary:
    """Cross-entropy on the changed batch (true labels); the change, shared by all inputs, climbs it.

    Called as an extra loss of ``train_one_epoch``: ``(inputs, logits, target) -> loss | None``.
    """

    def __init__(self, student: nn.Module, task: TaskAdapter, eps: float, weight: float = 1.0, colour: float = 0.0,
                 steps_to_bound: float = 4.0) -> None:
        self.student, self.task, self.weight = student, task, weight
        self.bounds = {"delta": eps, "gain": colour, "bias": colour}
        self.steps_to_bound = steps_to_bound
        self.params: dict[str, torch.Tensor] = {}

    @property
    def delta(self) -> torch.Tensor | None:
        return self.params.get("delta")

    def _init(self, inputs: torch.Tensor) -> None:
        self.params = {"delta": torch.zeros_like(inputs[:1])}
        if inputs.dim() == 4 and self.bounds["gain"] > 0:  # images: one gain and bias per colour channel
            channel = torch.zeros(1, inputs.shape[1], 1, 1, device=inputs.device, dtype=inputs.dtype)
            self.params.update(gain=channel.clone(), bias=channel.clone())

    def apply(self, inputs: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        out = inputs
        if "gain" in params:
            out = out * (1 + params["gain"]) + params["bias"]
        out = out + params["delta"]
        return out.clamp(0.0, 1.0) if inputs.dim() == 4 else out  # images live in [0, 1]

    def __call__(self, inputs: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        if not (isinstance(inputs, torch.Tensor) and inputs.is_floating_point()):
            return None  # token ids (NER): no continuous input to change
        if self.delta is None or self.delta.shape[1:] != inputs.shape[1:]:
            self._init(inputs)
        live = {k: v.clone().requires_grad_(True) for k, v in self.params.items()}
        adv_logits = self.task.logits(self.student, self.apply(inputs, live))
        ce = nn.functional.cross_entropy(adv_logits.reshape(-1, adv_logits.shape[-1]), target.reshape(-1),
                                         ignore_index=-100)
        grads = torch.autograd.grad(ce, list(live.values()), retain_graph=True)
        for (name, value), grad in zip(self.params.items(), grads):
            bound = self.bounds[name]
            self.params[name] = (value + bound / self.steps_to_bound * grad.sign()).clamp(-bound, bound).detach()
        return self.weight * ce
