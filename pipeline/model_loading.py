"""Load a TrojAI ``model.pt`` safely and patch what old torchvision pickles lack."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from pipeline.safe_pickle import safe_torch_load


class ModelLoadError(RuntimeError):
    """A model file could not be turned into a usable ``nn.Module``; the message names the file."""


def _patch_old_torchvision(model: nn.Module) -> None:
    """Fill attributes that current torchvision forward() reads but 0.6-0.8 era pickles lack.

    See TROJAI-FORMAT.md §6.3 (pytorch/vision#2923): Inception3/GoogLeNet pickled without aux heads,
    the dropout module or the max-pool modules added later.
    """
    # ``from torchvision.models import googlenet`` would give the builder function, not the module.
    from torchvision.models.googlenet import GoogLeNet
    from torchvision.models.inception import Inception3

    for module in model.modules():
        if isinstance(module, Inception3):
            module.__dict__.setdefault("aux_logits", False)
            module.__dict__.setdefault("transform_input", False)
            if "AuxLogits" not in module._modules:
                module.AuxLogits = None
            for name, pool in (("maxpool1", nn.MaxPool2d(3, 2)), ("maxpool2", nn.MaxPool2d(3, 2)),
                               ("avgpool", nn.AdaptiveAvgPool2d((1, 1))), ("dropout", nn.Dropout(0.5))):
                if name not in module._modules:
                    setattr(module, name, pool)
        elif isinstance(module, GoogLeNet):
            module.__dict__.setdefault("aux_logits", False)
            module.__dict__.setdefault("transform_input", False)
            for name in ("aux1", "aux2"):
                if name not in module._modules:
                    setattr(module, name, None)
            if "dropout" not in module._modules:
                module.dropout = nn.Dropout(0.2)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Unpickle a whole model through the allow-list, patch old pickles, and put it in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{path}: model file is empty")
    try:
        model = safe_torch_load(str(path), map_location=device)
    except Exception as exc:  # the unpickler's refusals already name the file
        msg = str(exc) if str(path) in str(exc) else f"{path}: {type(exc).__name__}: {exc}"
        raise ModelLoadError(msg) from exc
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{path}: expected a pickled torch.nn.Module, got {type(model).__name__}")
    _patch_old_torchvision(model)
    return model.eval()


def save_model(model: nn.Module, path: str | os.PathLike) -> Path:
    """Pickle a whole model as TrojAI did (CPU, eval mode), atomically: temp name, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    was_device = next(model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu")
    model.cpu().eval()
    torch.save(model, tmp)
    os.replace(tmp, path)
    model.to(was_device)
    return path
