"""SEAM's rules as the paper states them: wrong labels, thresholds, set construction, registry."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.methods.seam import SeamConfig, forget_threshold, recover_target
from pipeline.registry import available_methods, config_hash, method_config, parse_overrides
from pipeline.training import IGNORE, balanced_split, random_wrong_labels


@pytest.mark.parametrize("num_classes", [2, 3, 5, 10, 43])
def test_wrong_labels_are_never_the_true_label_and_cover_every_wrong_class(num_classes: int) -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(num_classes).repeat(400)
    wrong = random_wrong_labels(labels, num_classes, g)
    assert not bool((wrong == labels).any())
    assert int(wrong.min()) >= 0 and int(wrong.max()) < num_classes
    for cls in range(num_classes):  # uniform over the C-1 others: each appears for every true class
        seen = set(wrong[labels == cls].tolist())
        assert seen == set(range(num_classes)) - {cls}


def test_wrong_labels_are_redrawn_and_keep_ignored_positions() -> None:
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([[0, IGNORE, 3, 1], [2, 2, IGNORE, 0]])
    first, second = random_wrong_labels(labels, 5, g), random_wrong_labels(labels, 5, g)
    assert bool((first[labels == IGNORE] == IGNORE).all())
    assert not bool((first[labels != IGNORE] == labels[labels != IGNORE]).any())
    big = torch.zeros(1000, dtype=torch.long)
    assert not torch.equal(random_wrong_labels(big, 10, g), random_wrong_labels(big, 10, g))


@pytest.mark.parametrize("num_classes, expected", [(2, 0.6), (3, 0.6), (4, 0.5), (5, 0.4), (10, 0.2), (40, 0.05)])
def test_forget_threshold_is_min_two_over_c_and_point_six(num_classes: int, expected: float) -> None:
    assert forget_threshold(num_classes) == pytest.approx(min(2 / num_classes, 0.6))
    assert forget_threshold(num_classes) == pytest.approx(expected)


def test_recover_target_is_097_of_original() -> None:
    assert recover_target(0.9) == pytest.approx(0.873)
    assert recover_target(1.0) == pytest.approx(0.97)
    assert SeamConfig().recover_ratio == 0.97


def test_forget_and_recover_sets_are_disjoint_and_class_balanced() -> None:
    labels = torch.arange(10).repeat_interleave(15)
    forget, recover = balanced_split(labels, 10, torch.Generator().manual_seed(0), disjoint=True)
    assert set(forget.tolist()).isdisjoint(recover.tolist())
    assert len(forget) + len(recover) == len(labels)
    assert torch.bincount(labels[forget]).tolist() == [10] * 10
    assert torch.bincount(labels[recover]).tolist() == [5] * 10


def test_overlap_option_recovers_on_every_clean_example() -> None:
    labels = torch.arange(4).repeat_interleave(6)
    forget, recover = balanced_split(labels, 3, torch.Generator().manual_seed(0), disjoint=False)
    assert len(forget) == 12 and recover.tolist() == list(range(24))


def test_registry_lists_methods_and_rejects_unknown_names_and_fields() -> None:
    assert {"seam", "finetune", "fineprune", "nad"} <= set(available_methods())
    with pytest.raises(KeyError, match="unknown repair method"):
        method_config("nope")
    with pytest.raises(KeyError, match="unknown option"):
        method_config("seam", {"forget_rate": 1})


def test_config_hash_is_stable_and_tells_configurations_apart() -> None:
    assert config_hash("seam") == config_hash("seam", {})
    assert config_hash("seam") == config_hash("seam", {"forget_lr": SeamConfig().forget_lr})
    assert config_hash("seam") != config_hash("seam", {"forget_lr": 0.02})
    assert config_hash("seam") != config_hash("finetune")


def test_set_overrides_are_typed_by_the_defaults() -> None:
    out = parse_overrides("seam", ["forget_lr=0.005", "disjoint=false", "batch_size=16", "optimizer=adam"])
    assert out == {"forget_lr": 0.005, "disjoint": False, "batch_size": 16, "optimizer": "adam"}
    cfg = method_config("seam", out)
    assert dataclasses.asdict(cfg)["disjoint"] is False
    with pytest.raises(KeyError):
        parse_overrides("seam", ["nonsense=1"])
    with pytest.raises(ValueError):
        parse_overrides("seam", ["disjoint=maybe"])


def test_uniform_forget_labels_include_the_true_class_and_bad_choices_fail_early() -> None:
    from pipeline.training import random_labels

    labels = torch.zeros(2000, dtype=torch.long)
    drawn = random_labels(labels, 2, torch.Generator().manual_seed(0))
    assert 0.4 < float((drawn == labels).float().mean()) < 0.6  # C = 2: the true label half the time
    assert parse_overrides("seam", ["forget_labels=uniform"]) == {"forget_labels": "uniform"}
    with pytest.raises(ValueError, match="forget_labels"):
        parse_overrides("seam", ["forget_labels=bogus"])
