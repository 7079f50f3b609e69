"""Finding the layers baselines act on (last conv layer, its BatchNorm, feature maps for attention)."""
from __future__ import annotations

from typing import Iterator

import torch
from torch import nn


def last_conv_with_bn(model: nn.Module) -> tuple[nn.Conv2d, nn.modules.batchnorm._BatchNorm | None]:
    """The last Conv2d in registration order and the BatchNorm that follows it on the same channels."""
    modules = list(model.modules())
    convs = [i for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("model has no Conv2d layer to prune")
    i = convs[-1]
    conv = modules[i]
    bn = next((m for m in modules[i + 1:] if isinstance(m, nn.modules.batchnorm._BatchNorm)), None)
    if bn is not None and bn.num_features != conv.out_channels:
        bn = None
    return conv, bn


def conv_layers(model: nn.Module) -> Iterator[tuple[str, nn.Conv2d]]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            yield name, module


@torch.no_grad()
def attention_layers(model: nn.Module, example: torch.Tensor, count: int = 3) -> list[str]:
    """Names of the last conv layer at each of the deepest ``count`` feature-map resolutions.

    NAD distils attention at the ends of the network's stages; this finds them for any CNN.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=name: shapes.__setitem__(n, tuple(out.shape[-2:])))
             for name, m in conv_layers(model)]
    was_training = model.training
    model.eval()
    try:
        model(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    last_at: dict[tuple[int, ...], str] = {}
    for name, shape in shapes.items():  # dict order = execution order
        last_at[shape] = name
    ordered = list(last_at.values())
    return ordered[-count:]
