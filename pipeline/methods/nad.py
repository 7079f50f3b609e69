"""Neural Attention Distillation (Li et al., ICLR 2021) on the same clean data as SEAM.

A teacher is the model fine-tuned on the clean examples; the student (the original model) is then
trained with cross-entropy plus beta x the distance between its attention maps and the teacher's
at the ends of the last stages.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from pipeline.methods.common import TrainingConfig, generator, optim, timed
from pipeline.methods.finetune import finetune_epochs
from pipeline.methods.layers import attention_layers
from pipeline.registry import register_method
from pipeline.tasks.base import RepairData
from pipeline.training import make_optimizer, train_one_epoch


@dataclass(frozen=True)
class NadConfig(TrainingConfig):
    teacher_epochs: int = 10
    epochs: int = 20
    beta: float = 1000.0  # NAD's CIFAR setting for the deeper layers
    power: float = 2.0
    layers: int = 3


def attention_map(features: torch.Tensor, power: float) -> torch.Tensor:
    """NAD's attention: channel mean of |f|^p, flattened and L2-normalised per example."""
    return nn.functional.normalize(features.abs().pow(power).mean(dim=1).flatten(1), dim=1)


def _capture(model: nn.Module, names: list[str], store: dict) -> list:
    modules = dict(model.named_modules())
    return [modules[n].register_forward_hook(lambda m, i, o, n=n: store.__setitem__(n, o)) for n in names]


@register_method("nad", NadConfig)
def nad(model: nn.Module, data: RepairData, cfg: NadConfig) -> tuple[nn.Module, dict]:
    """Fine-tune a teacher, then distil its attention maps into the original model."""
    trace: dict = {"n_recover": len(data.clean)}
    with timed(trace, "seconds_forget"):
        teacher = copy.deepcopy(model)
        finetune_epochs(teacher, data, cfg.teacher_epochs, cfg, trace, salt=40)
        teacher.eval()
    trace["epochs_forget"] = cfg.teacher_epochs
    first, _ = next(data.task.batches(data.clean, data.clean.labels, 2, data.device))
    names = attention_layers(model, first, cfg.layers)
    trace["attention_layers"] = names
    student_maps: dict = {}
    teacher_maps: dict = {}
    handles = _capture(model, names, student_maps) + _capture(teacher, names, teacher_maps)

    def distillation(inputs, _logits, _target) -> torch.Tensor:
        with torch.no_grad():
            data.task.logits(teacher, inputs)
        return cfg.beta * sum((attention_map(student_maps[n], cfg.power) - attention_map(teacher_maps[n], cfg.power))
                              .pow(2).mean() for n in names)

    opt = make_optimizer(model.parameters(), optim(cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay))
    g = generator(data.seed, 41)
    try:
        with timed(trace, "seconds_recover"):
            for _ in range(cfg.epochs):
                train_one_epoch(model, data.task, data.clean, data.clean.labels, opt, cfg.batch_size, data.device, g,
                                cfg.augment, cfg.bn_mode, extra_loss=distillation)
    finally:
        for h in handles:
            h.remove()
    trace["epochs_recover"] = cfg.epochs
    data.on_phase_end("recover", model)
    return model, trace
