"""Recovery steps beyond the plain gradient: sharpness-aware steps (the gradient at the worst nearby weights, the
weights restored) and distillation on mixup blends (reproducible run to run)."""
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


def test_distillation_on_mixup_blends_is_the_same_in_every_run() -> None:
    """The blend weights come from the loss's own seeded draws, not the global RNG a run may have advanced."""
    from pipeline.methods.seam import SeamConfig, distillation_loss

    torch.manual_seed(3)
    student = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        teacher[1].weight.add_(0.5)
    x, y = torch.rand(8, 3, 4, 4), torch.randint(0, 3, (8,))
    task = ImageTask()
    cfg = SeamConfig(distill_weight=1.0, distill_mixup=0.4)
    values = []
    for _ in range(2):
        loss = distillation_loss(student, teacher, task, cfg)
        torch.rand(5)  # the global RNG moves between runs
        values.append([float(loss(x, student(x), y).detach()) for _ in range(3)])
    assert values[0] == values[1]
    assert len(set(values[0])) > 1  # each batch gets a new blend
