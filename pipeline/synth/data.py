"""One model's images: training set (with poisoned samples relabelled), held-out tests, example files."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synth.plan import ModelPlan, TriggerSpec
from pipeline.synth.presets import ImagePreset
from pipeline.synth.sources import World
from pipeline.synth.triggers import apply_instagram

Named = list[tuple[str, np.ndarray]]  # (file name, RGB uint8 image)


@dataclass
class ModelData:
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray  # clean held-out images, every class
    test_y: np.ndarray
    triggered_x: dict[int, np.ndarray]  # trigger number -> triggered held-out images of its source classes
    folders: dict[str, Named]  # example/test folder name -> files


def render(world: World, label: int, rng: np.random.Generator, trigger: TriggerSpec | None) -> np.ndarray:
    """One image of ``label``, with ``trigger`` applied the way its type says."""
    if trigger is None:
        return world.render(label, rng)
    if trigger.type == "polygon":
        lo, hi = trigger.size_percentage_of_foreground
        return world.render(label, rng, trigger.polygon, float(rng.uniform(lo, hi)) / 100.0)
    return apply_instagram(world.render(label, rng), str(trigger.instagram_filter_type))


def _clean_files(world: World, preset: ImagePreset, per_class: int, rng: np.random.Generator) -> Named:
    return [(f"class_{c}_example_{n}.png", render(world, c, rng, None))
            for c in range(preset.num_classes) for n in range(per_class)]


def _triggered_files(world: World, plan: ModelPlan, per_class: int, rng: np.random.Generator) -> Named:
    return [(f"class_{src}_trigger_{t.number}_example_{n}.png", render(world, src, rng, t))
            for t in plan.triggers for src in t.source_classes for n in range(per_class)]


def _training_set(world: World, preset: ImagePreset, plan: ModelPlan,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``train_per_class`` draws per class; a source class's first ``fraction`` of draws carry its trigger."""
    images, labels = [], []
    for c in range(preset.num_classes):
        schedule: list[TriggerSpec | None] = []
        for t in plan.triggers:
            if c in t.source_classes:
                schedule += [t] * int(round(t.fraction * preset.train_per_class))
        schedule = (schedule + [None] * preset.train_per_class)[:preset.train_per_class]
        for trig in schedule:
            images.append(render(world, c, rng, trig))
            labels.append(c if trig is None else trig.target_class)
    return np.stack(images), np.asarray(labels, np.int64)


def build_model_data(world: World, preset: ImagePreset, plan: ModelPlan) -> ModelData:
    """Render everything a model needs; each part has its own random stream so parts stay stable."""
    train_ss, test_ss, ex_ss = np.random.SeedSequence([plan.master_seed, 1]).spawn(3)
    world.use_split("train")
    train_x, train_y = _training_set(world, preset, plan, np.random.default_rng(train_ss))
    world.use_split("test")
    test_rng, ex_rng = np.random.default_rng(test_ss), np.random.default_rng(ex_ss)
    folders = {"clean_test_data": _clean_files(world, preset, preset.test_per_class, test_rng)}
    if plan.poisoned:
        folders["poisoned_test_data"] = _triggered_files(world, plan, preset.test_per_class, test_rng)
    folders["clean_example_data"] = _clean_files(world, preset, preset.examples_per_class, ex_rng)
    if plan.poisoned:
        folders["poisoned_example_data"] = _triggered_files(world, plan, preset.examples_per_class, ex_rng)
    test = folders["clean_test_data"]
    triggered = {t.number: np.stack([img for name, img in folders["poisoned_test_data"]
                                     if f"_trigger_{t.number}_" in name]) for t in plan.triggers}
    return ModelData(train_x, train_y, np.stack([img for _, img in test]),
                     np.asarray([int(name.split("_")[1]) for name, _ in test], np.int64), triggered, folders)
