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


def test_task_defaults_sit_between_the_class_defaults_and_the_users_overrides() -> None:
    from pipeline.methods.seam_adv import SeamAdvConfig
    from pipeline.registry import config_json

    per_task = SeamAdvConfig.TASK_DEFAULTS["sentiment"]
    assert method_config("seam-adv", None, "sentiment").forget_mode == per_task["forget_mode"] == "reset"
    assert method_config("seam-adv", None, "image").forget_mode == "labels"  # another task keeps the class default
    assert method_config("seam-adv", None, None).forget_mode == "labels"
    user = method_config("seam-adv", {"forget_mode": "labels", "recover_patience": 9}, "sentiment")
    assert (user.forget_mode, user.recover_patience, user.recover_optimizer) == ("labels", 9, "adam")
    # the hash covers the per-task defaults (changing them must not resume stale results) and not the task
    assert '"task_defaults"' in config_json("seam-adv") and '"task_defaults"' not in config_json("seam")
    assert json_field(config_json("seam-adv", None, "sentiment"), "forget_mode") == "reset"
    with pytest.raises(ValueError, match="forget_mode"):
        parse_overrides("seam", ["forget_mode=erase"])


def json_field(text: str, key: str):
    import json

    return json.loads(text)[key]


def test_reset_reinitialises_every_trainable_parameter_reproducibly_and_leaves_the_rest() -> None:
    from torch import nn

    from pipeline.methods.seam import reset_parameters

    def build() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.GRU(8, 8, batch_first=True), nn.Linear(8, 2))

    models = [build(), build()]
    before = [p.detach().clone() for p in models[0].parameters()]
    models[0][0].weight.requires_grad_(False)
    models[0][0].bias.requires_grad_(False)  # a frozen module is not re-initialised
    models[1][0].requires_grad_(False)
    torch.manual_seed(7)
    reset_parameters(models[0], torch.Generator().manual_seed(3))
    reset_parameters(models[1], torch.Generator().manual_seed(3))
    after = list(models[0].parameters())
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])
    assert all(not torch.equal(a, b) for a, b in zip(after[2:], before[2:]))
    assert all(torch.equal(a, b) for a, b in zip(models[0].parameters(), models[1].parameters()))  # seeded
    draw = torch.rand(1)
    torch.manual_seed(7)
    assert torch.equal(draw, torch.rand(1))  # the global RNG stream is left as it was


def test_methods_command_lists_methods_and_shows_per_task_defaults() -> None:
    from typer.testing import CliRunner

    from cli import app

    runner, wide = CliRunner(), {"COLUMNS": "200"}
    listed = runner.invoke(app, ["methods"], env=wide)
    assert listed.exit_code == 0 and all(m in listed.output for m in available_methods())
    shown = runner.invoke(app, ["methods", "seam-adv"], env=wide)
    assert shown.exit_code == 0
    row = next(line for line in shown.output.splitlines() if " forget_mode " in line)
    assert "'labels'" in row and "'reset'" in row and "on sentiment" in shown.output
    unknown = runner.invoke(app, ["methods", "nope"], env=wide)
    assert unknown.exit_code == 2 and "unknown repair method" in unknown.output
