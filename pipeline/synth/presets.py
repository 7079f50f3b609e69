"""Typed presets for ``seam make-round --task image``: sizes, architectures, training, trigger ranges."""
from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline.synth.train import TrainSettings


@dataclass(frozen=True)
class Gate:
    """Quality gate a model must pass (else it is retrained with another seed)."""

    min_clean_acc: float = 0.90
    min_asr: float = 0.90
    max_acc_gap: float = 0.03  # poisoned ACC may trail its architecture's clean models by at most this
    max_attempts: int = 3
    retry_epoch_growth: float = 0.5  # attempt n trains epochs x (1 + growth x (n - 1)): a one-source-class backdoor
    # (60-80 poisoned images) can still be weak after the first schedule, and a new seed alone rarely fixes it

    def epochs_for(self, epochs: int, attempt: int) -> int:
        """Training epochs of gate attempt ``attempt`` (1-based)."""
        return int(round(epochs * (1 + self.retry_epoch_growth * (attempt - 1))))


@dataclass(frozen=True)
class ImagePreset:
    """Everything that sizes an image round; CLI options override ``models`` and ``image_size``."""

    name: str
    models: int
    num_classes: int
    image_size: int
    architectures: tuple[str, ...]
    width: int
    train_per_class: int
    test_per_class: int  # clean_test_data per class and poisoned_test_data per source class
    training: TrainSettings
    examples_per_class: int = 20
    trigger_types: tuple[str, ...] = ("polygon", "instagram")
    source_modes: tuple[str, ...] = ("one", "several", "all")
    fractions: tuple[float, ...] = (0.2, 0.3)
    polygon_sides: tuple[int, int] = (3, 12)
    size_percentage_of_foreground: tuple[int, int] = (5, 25)
    gate: Gate = Gate()

    def with_overrides(self, models: int | None = None, image_size: int | None = None) -> "ImagePreset":
        return replace(self, models=self.models if models is None else models,
                       image_size=self.image_size if image_size is None else image_size)


PRESETS: dict[str, ImagePreset] = {
    "tiny": ImagePreset(
        name="tiny", models=4, num_classes=5, image_size=24, architectures=("resnet18", "vgg11_bn"), width=8,
        train_per_class=120, test_per_class=30, training=TrainSettings(epochs=15, batch_size=32, learning_rate=0.05),
        fractions=(0.3,), source_modes=("all",), size_percentage_of_foreground=(15, 25),
    ),
    "bench": ImagePreset(
        name="bench", models=20, num_classes=10, image_size=32,
        architectures=("resnet18", "shufflenet_v2", "vgg11_bn", "mobilenet_v2"), width=16,
        train_per_class=200, test_per_class=100, training=TrainSettings(epochs=12, batch_size=64, learning_rate=0.05),
        fractions=(0.3, 0.4),
    ),
}

# Per-source defaults applied before CLI overrides (MNIST digits are 28 px and there are 10 of them).
SOURCE_IMAGE_SIZE: dict[str, int] = {"signs": 0, "mnist": 28}
SOURCE_MAX_CLASSES: dict[str, int] = {"signs": 40, "mnist": 10}


def resolve_preset(name: str, source: str, models: int | None = None, image_size: int | None = None) -> ImagePreset:
    """The named preset adapted to the data source, then to the CLI overrides."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
    if source not in SOURCE_IMAGE_SIZE:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(SOURCE_IMAGE_SIZE)}")
    preset = replace(preset, num_classes=min(preset.num_classes, SOURCE_MAX_CLASSES[source]),
                     image_size=SOURCE_IMAGE_SIZE[source] or preset.image_size)
    return preset.with_overrides(models, image_size)
