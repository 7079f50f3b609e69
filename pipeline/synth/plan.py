"""What each model of a round is: architecture, clean/poisoned, trigger, seeds — from (seed, index) alone.

A model's plan never depends on how many models the round has, so ``--models 2`` builds exactly the
first two models of ``--models 20`` with the same seed (and a resumed build picks up the same plan).
Even indices are clean, odd ones poisoned with the architecture of the clean model just before them,
so every poisoned model has a clean reference of its architecture for the quality gate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synth.presets import ImagePreset
from pipeline.synth.signs import COLORS as SIGN_COLORS
from pipeline.synth.triggers import INSTAGRAM_FILTERS, PolygonShape, random_polygon


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger: which classes it flips to which target, how, and on what share of their training data."""

    number: int
    source_classes: tuple[int, ...]
    source_selection: str  # one | several | all
    target_class: int
    fraction: float
    type: str  # polygon | instagram
    polygon: PolygonShape | None = None
    instagram_filter_type: str | None = None
    size_percentage_of_foreground: tuple[int, int] = (5, 25)


@dataclass(frozen=True)
class ModelPlan:
    index: int
    model_id: str
    architecture: str
    poisoned: bool
    master_seed: int  # seeds the model's data; attempts add to it for training
    triggers: tuple[TriggerSpec, ...]


def _sources(mode: str, target: int, num_classes: int, rng: np.random.Generator) -> tuple[int, ...]:
    others = [c for c in range(num_classes) if c != target]
    count = {"one": 1, "several": max(2, min(len(others) - 1, int(rng.integers(2, max(3, num_classes // 2 + 1))))),
             "all": len(others)}[mode]
    return tuple(sorted(int(c) for c in rng.choice(others, size=min(count, len(others)), replace=False)))


def _vivid_color(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated colour far from every sign body colour, so the stamp stays visible on any sign."""
    palette = np.asarray(list(SIGN_COLORS.values()), np.float64)
    while True:
        rgb = rng.integers(0, 256, 3)
        if int(rgb.max()) - int(rgb.min()) >= 120 and np.linalg.norm(palette - rgb, axis=1).min() >= 110:
            return tuple(int(c) for c in rgb)


def make_trigger(preset: ImagePreset, kind: str, rng: np.random.Generator) -> TriggerSpec:
    target = int(rng.integers(preset.num_classes))
    mode = str(rng.choice(preset.source_modes))
    sources = _sources(mode, target, preset.num_classes, rng)
    fraction = float(rng.choice(preset.fractions))
    polygon, filt = None, None
    if kind == "polygon":
        sides = int(rng.integers(preset.polygon_sides[0], preset.polygon_sides[1] + 1))
        polygon = random_polygon(rng, sides, _vivid_color(rng))
    else:
        filt = str(rng.choice(sorted(INSTAGRAM_FILTERS)))
    return TriggerSpec(0, sources, mode, target, fraction, kind, polygon, filt, preset.size_percentage_of_foreground)


def plan_model(preset: ImagePreset, seed: int, index: int) -> ModelPlan:
    pair = index // 2
    n_arch = len(preset.architectures)
    arch = preset.architectures[pair % n_arch]
    poisoned = index % 2 == 1
    rng = np.random.default_rng([seed, index, 7])
    master_seed = int(rng.integers(2**31 - 1))
    triggers: tuple[TriggerSpec, ...] = ()
    if poisoned:
        kinds = preset.trigger_types
        kind = kinds[(pair + pair // n_arch) % len(kinds)]  # each architecture sees each trigger kind
        triggers = (make_trigger(preset, kind, rng),)
    return ModelPlan(index, f"id-{index:08d}", arch, poisoned, master_seed, triggers)
