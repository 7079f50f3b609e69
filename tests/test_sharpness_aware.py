"""Sharpness-aware recovery steps: the gradient is taken at the worst nearby weights, the weights come back."""
from __future__ import annotations

import copy

import torch
from torch import nn

from pipeline.tasks.image import ImageTask
from pipeline.training import batch_loss, sharpness_aware_gradient


def test_the_gradient_is_the_one_at_the_ascended_weights_and_the_weights_are_restored() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.Tanh(), nn.Linear(8, 3))
    task = ImageTask()
    x, y = torch.rand(16, 3, 4, 4), torch.randint(0, 3, (16,))
    before = copy.deepcopy(model.state_dict())
    batch_loss(model, task, x, y).backward()
    g = [p.grad.clone() for p in model.parameters()]
    rho = 0.3
    norm = torch.sqrt(sum((t ** 2).sum() for t in g))
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        for p, t in zip(shifted.parameters(), g):
            p.add_(t * rho / norm)
    batch_loss(shifted, task, x, y).backward()
    sharpness_aware_gradient(model, task, x, y, None, rho)
    for p, q in zip(model.parameters(), shifted.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6)
    for k, v in model.state_dict().items():
        assert torch.allclose(v, before[k], atol=1e-7)  # the ascent step is undone
    assert any(not torch.allclose(p.grad, t) for p, t in zip(model.parameters(), g))  # not the plain gradient
