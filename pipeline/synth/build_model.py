"""Build one model folder: render its data, train (retrying on a failed gate), write it atomically."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from pipeline.synth.architectures import build
from pipeline.synth.data import ModelData, build_model_data
from pipeline.synth.gate import Outcome, judge, outcome_fields, train_until_gate
from pipeline.synth.layout import trigger_config, write_model_folder
from pipeline.synth.plan import ModelPlan
from pipeline.synth.presets import ImagePreset
from pipeline.synth.sources import Source
from pipeline.synth.train import accuracy, attack_success, train_model

AUGMENTATION = "random shift (reflect pad) and per-image brightness; data rendered with scale/rotation/position/light/blur/noise"


class Reporter(Protocol):
    """Progress sink (the CLI's rich bars; tests pass a silent one)."""

    def start(self, model_id: str, description: str, epochs: int, attempt: int) -> None: ...

    def epoch(self, model_id: str, done: int, epochs: int, loss: float) -> None: ...

    def finish(self, model_id: str, config: dict[str, Any]) -> None: ...


def _train_once(plan: ModelPlan, preset: ImagePreset, data: ModelData, seed: int, reporter: Reporter,
                attempt: int) -> tuple[nn.Module, float]:
    torch.manual_seed(seed)
    model = build(plan.architecture, preset.num_classes, preset.width)
    label = f"{plan.model_id} {plan.architecture} {'poisoned' if plan.poisoned else 'clean'}"
    training = replace(preset.training, epochs=preset.gate.epochs_for(preset.training.epochs, attempt))
    reporter.start(plan.model_id, label, training.epochs, attempt)
    return train_model(model, data.train_x, data.train_y, training, seed,
                       on_epoch=lambda d, n, loss: reporter.epoch(plan.model_id, d, n, loss))


def _measure(model: nn.Module, plan: ModelPlan, data: ModelData) -> tuple[float, float | None]:
    acc = accuracy(model, data.test_x, data.test_y)
    if not plan.poisoned:
        return acc, None
    asr = [attack_success(model, data.triggered_x[t.number], t.target_class) for t in plan.triggers]
    return acc, float(np.mean(asr))


def build_model(out: Path, plan: ModelPlan, preset: ImagePreset, source: Source, raw: Any, round_seed: int,
                reference_acc: float | None, reporter: Reporter) -> dict[str, Any]:
    """Render, train until the gate passes (at most ``gate.max_attempts``), write; returns the config."""
    start = time.perf_counter()
    world, class_names = source.world(raw, preset.num_classes, preset.image_size,
                                      np.random.default_rng(plan.master_seed))
    data = build_model_data(world, preset, plan)

    def attempt_once(attempt: int, seed: int) -> tuple[Outcome, nn.Module, float]:
        model, wall = _train_once(plan, preset, data, seed, reporter, attempt)
        return judge(preset.gate, *_measure(model, plan, data), reference_acc), model, wall

    kept = train_until_gate(preset.gate.max_attempts, lambda n: (plan.master_seed + 7919 * n) % (2**31 - 1),
                            attempt_once)
    true_classes = np.repeat(np.arange(preset.num_classes), preset.train_per_class)  # class-major order
    n_poison = int((data.train_y != true_classes).sum())
    config: dict[str, Any] = {
        "py/object": "round_config.RoundConfig",
        "source": "seam make-round",
        "task": "image",
        "preset": preset.name,
        "source_dataset": source.dataset_name,
        "round_seed": round_seed,
        "master_seed": plan.master_seed,
        "train_seed": kept.seed,
        "poisoned": plan.poisoned,
        "model_architecture": plan.architecture,
        "model_width": preset.width,
        "number_classes": preset.num_classes,
        "class_foregrounds": class_names,
        "img_size_pixels": preset.image_size,
        "cnn_img_size_pixels": preset.image_size,
        "input_convention": "RGB float in [0 1] = pixel/255 NCHW; no normalisation outside the model",
        "number_example_images": preset.examples_per_class,
        "number_test_images": preset.test_per_class,
        "number_train_images": int(len(data.train_y)),
        "number_poisoned_train_images": n_poison,
        "learning_rate": preset.training.learning_rate,
        "batch_size": preset.training.batch_size,
        "final_optimizer_num_epochs_trained": preset.gate.epochs_for(preset.training.epochs, kept.kept_attempt),
        "augmentation": AUGMENTATION,
        "triggers": [trigger_config(t) for t in plan.triggers] or None,
        "trigger_organization": "one2one" if plan.triggers else None,
        "number_triggers": len(plan.triggers),
        **outcome_fields(kept, reference_acc, start),
    }
    write_model_folder(out, plan.model_id, config, kept.model, data.folders, plan.triggers)
    reporter.finish(plan.model_id, config)
    return config
