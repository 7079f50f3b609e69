"""Plain fine-tuning on the clean examples with true labels: the baseline SEAM must beat.

Defined so it cannot be handicapped: SEAM's recovery optimiser and batch size, all the clean
examples SEAM sees (forget + recover sets), and (for comparisons) the same total epochs SEAM used.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from pipeline.methods.common import TrainingConfig, generator, optim, timed
from pipeline.registry import register_method
from pipeline.tasks.base import RepairData
from pipeline.training import make_optimizer, train_one_epoch


@dataclass(frozen=True)
class FinetuneConfig(TrainingConfig):
    epochs: int = 20  # `seam bench` sets this per model to the epochs SEAM used on it


def finetune_epochs(model: nn.Module, data: RepairData, epochs: int, cfg: TrainingConfig, trace: dict,
                    salt: int = 20) -> None:
    """Train on all clean examples with their true labels for a fixed number of epochs."""
    opt = make_optimizer(model.parameters(), optim(cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay))
    g = generator(data.seed, salt)
    for _ in range(epochs):
        train_one_epoch(model, data.task, data.clean, data.clean.labels, opt, cfg.batch_size, data.device, g,
                        cfg.augment, cfg.bn_mode)


@register_method("finetune", FinetuneConfig)
def finetune(model: nn.Module, data: RepairData, cfg: FinetuneConfig) -> tuple[nn.Module, dict]:
    """Fine-tune on the clean examples (true labels) for a fixed number of epochs."""
    trace: dict = {"n_recover": len(data.clean), "epochs_recover": cfg.epochs}
    with timed(trace, "seconds_recover"):
        finetune_epochs(model, data, cfg.epochs, cfg, trace)
    data.on_phase_end("recover", model)
    return model, trace
