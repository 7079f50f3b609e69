"""Image sources behind one registry: ``signs`` (synthetic signs on photos) and ``mnist`` (real digits).

Each source loads its raw material once per round (``load``) and makes a per-model ``World`` whose
``render(label, rng, polygon, area)`` draws one RGB uint8 image, stamping a polygon trigger onto the
foreground when asked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from pipeline.synth.triggers import PolygonShape


class World(Protocol):
    def use_split(self, split: str) -> None: ...

    def render(self, label: int, rng: np.random.Generator, polygon: PolygonShape | None = None,
               polygon_area: float = 0.0) -> np.ndarray: ...


@dataclass(frozen=True)
class Source:
    """How to load a source once and make one model's world from it (returns the world and class names)."""

    name: str
    dataset_name: str
    load: Callable[[], Any]
    world: Callable[[Any, int, int, np.random.Generator], tuple[World, list[str]]]


def _signs_world(backgrounds: Any, num_classes: int, size: int, rng: np.random.Generator) -> tuple[World, list[str]]:
    from pipeline.synth.signs import SignWorld, sample_classes

    classes = sample_classes(num_classes, rng)
    return SignWorld(classes, backgrounds, size), [c.describe() for c in classes]


def _mnist_world(splits: Any, num_classes: int, size: int, rng: np.random.Generator) -> tuple[World, list[str]]:
    from pipeline.synth.mnist_source import MnistWorld

    return MnistWorld(splits, size, rng), [f"digit {c}" for c in range(num_classes)]


def _load_signs() -> Any:
    from pipeline.synth.signs import load_backgrounds

    return load_backgrounds()


def _load_mnist() -> Any:
    from pipeline.synth.mnist_source import load_mnist

    return load_mnist()


SOURCES: dict[str, Source] = {
    "signs": Source("signs", "synthetic-signs-on-skimage-photos", _load_signs, _signs_world),
    "mnist": Source("mnist", "mnist", _load_mnist, _mnist_world),
}


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown image source {name!r}; known: {', '.join(SOURCES)}") from None
