"""The latent adversary: a universal shift of one BatchNorm output, bounded per channel, gone after repair."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from manifests.scan import scan_round
from pipeline.methods.latent_adversary import LatentAdversary, layer_at_depth
from pipeline.model_loading import load_model
from pipeline.per_model import process_model
from pipeline.synth.architectures import build
from pipeline.tasks.image import ImageTask


def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 3))


def test_layer_at_depth_walks_the_batchnorm_layers_in_order() -> None:
    model = build("resnet18", 5, width=8)
    layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert layer_at_depth(model, 0.0) is layers[0]
    assert layer_at_depth(model, 0.5) is layers[len(layers) // 2]
    assert layer_at_depth(model, 1.0) is layers[-1]  # past the end: the last one
    assert layer_at_depth(nn.Sequential(nn.Linear(2, 2)), 0.5) is None


def test_the_shift_climbs_the_loss_within_its_bound_and_only_in_its_own_forward() -> None:
    torch.manual_seed(0)
    model = small_model()
    x, y = torch.rand(32, 3, 8, 8), torch.randint(0, 3, (32,))
    adversary = LatentAdversary(model, ImageTask(), model[1], eps=0.5)
    first = float(adversary(x, None, y).detach())
    for _ in range(20):  # the weights are fixed here, so only the shift moves
        last = float(adversary(x, None, y).detach())
    assert last > first
    assert adversary.shift.shape == (1, 4, 8, 8)  # one shift shared by every input
    assert float(adversary.shift.abs().max()) <= 0.5 + 1e-7
    assert adversary.scale.shape == (1, 4, 1, 1) and bool((adversary.scale > 0).all())
    model.eval()
    shifted_off = model(x)
    adversary.close()
    assert torch.equal(shifted_off, model(x))  # outside its own call the model is untouched
    assert not model[1]._forward_hooks


def test_seam_adv_with_the_latent_shift_leaves_a_plain_model(tiny_image_round: Path, tmp_path: Path) -> None:
    row = next(r for r in scan_round(tiny_image_round) if r["poisoned"])
    saved = tmp_path / "model.pt"
    res = process_model(row, "seam-adv", {"adv_latent": 1.0, "max_recover_epochs": 3}, save_path=str(saved))
    assert res["status"] == "ok", res["error"]
    assert json.loads(res["trace_json"])["adversary"] == "UniversalAdversary+PatchAdversary+LatentAdversary"
    model = load_model(saved)  # the allow-listed loader: a hook left behind would pull the adversary into the pickle
    assert not any(m._forward_hooks for m in model.modules())
