"""Images: one universal shift of a hidden layer's activations, climbed like the input adversaries (latent
adversarial training, Casper et al. 2024).

The input adversaries can only imitate triggers they can express: an L-inf change of 0.1 and a pasted patch do
not reach an Instagram-style filter (per-channel gains of 0.4-0.55 and biases of 0.2-0.4 on [0, 1] pixels), and
such a filter's backdoor is most of what ``seam-adv`` still misses on images. Whatever a trigger is in pixels, the
layers that detect it turn it into a shift of their activations, so a universal shift of one BatchNorm layer's
output, bounded per channel by that channel's spread on clean inputs, covers every trigger family at once.
Recovery trains on the shifted forward with true labels, so clean data alone no longer rebuilds that shortcut.
Blind: only the clean repair examples and their labels are used.
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.methods.adversarial import FreeSteps, image_batch
from pipeline.tasks.base import TaskAdapter
from pipeline.training import batchnorms, label_loss


def layer_at_depth(model: nn.Module, depth: float) -> nn.Module | None:
    """The BatchNorm layer ``depth`` of the way through the model (definition order, which is forward order in the
    torchvision architectures TrojAI uses); None when it has none. A shift before a BatchNorm in training mode would
    be removed by its batch mean, so the shift goes on a BatchNorm's output."""
    layers = batchnorms(model)
    if not layers:
        return None
    return layers[min(int(depth * len(layers)), len(layers) - 1)]


class LatentAdversary(FreeSteps):
    """Cross-entropy of the batch with ``shift`` added to ``layer``'s output (true labels); the shift climbs it.

    ``eps`` bounds each activation's shift in units of its channel's standard deviation on the first clean batch.
    ``close()`` removes the forward hook: the repaired model must carry nothing of the adversary.
    """

    def __init__(self, student: nn.Module, task: TaskAdapter, layer: nn.Module, eps: float, weight: float = 1.0,
                 steps_to_bound: float = 4.0, free: bool = False) -> None:
        self.student, self.task, self.eps, self.weight, self.free = student, task, eps, weight, free
        self.step = eps / steps_to_bound
        self.shift: torch.Tensor | None = None  # one example's activations, in units of ``scale``, within +-eps
        self.scale: torch.Tensor | None = None
        self.active = False  # the hook shifts only this adversary's own forward
        self.live: torch.Tensor | None = None  # the shift as a leaf of the last forward
        self.pending: torch.Tensor | None = None  # free mode: last call's leaf, its grad filled by backward
        self.handle = layer.register_forward_hook(self._hook)

    def _hook(self, _module: nn.Module, _inputs, output: torch.Tensor) -> torch.Tensor | None:
        if not self.active:
            return None
        if self.scale is None:  # the first batch fixes the shape and each channel's spread
            spread = output.detach().transpose(0, 1).flatten(1).std(1).clamp_min(1e-6)
            self.scale = spread.view(1, -1, *([1] * (output.dim() - 2)))
            self.shift = torch.zeros_like(output[:1]).detach()
        self.live = self.shift.clone().requires_grad_(True)
        return output + self.live * self.scale

    def _climb(self, grad: torch.Tensor | None) -> None:
        if grad is not None and self.shift is not None and grad.shape == self.shift.shape:
            self.shift = (self.shift + self.step * grad.sign()).clamp(-self.eps, self.eps).detach()

    def __call__(self, inputs: torch.Tensor, logits: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor | None:
        if not image_batch(inputs):
            return None
        self.take_pending_step()
        self.active = True
        try:
            ce = label_loss(self.task.logits(self.student, inputs), target)
        finally:
            self.active = False
        if self.free:
            self.pending = self.live
        else:
            self._climb(torch.autograd.grad(ce, self.live, retain_graph=True)[0])
        return self.weight * ce

    def close(self) -> None:
        """Remove the hook: the repaired model carries nothing of the adversary."""
        self.handle.remove()
