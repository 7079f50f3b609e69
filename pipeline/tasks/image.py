"""Image rounds: PNG examples -> uint8 NCHW tensors; models take RGB float in [0, 1] (pixel / 255)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from PIL import Image
from torch import nn

from manifests.examples import Example, list_examples
from pipeline.tasks.base import Split, index_batches, select_triggered, trigger_targets


def read_image(path: str, crop: int | None) -> np.ndarray:
    """RGB uint8 HWC, centre-cropped to ``crop`` when the round asks for it (rounds 1-4: 256 -> 224)."""
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))
    if crop and arr.shape[0] > crop and arr.shape[1] > crop:
        dy, dx = (arr.shape[0] - crop) // 2, (arr.shape[1] - crop) // 2
        arr = arr[dy:dy + crop, dx:dx + crop]
    return arr


def load_images(examples: list[Example], crop: int | None, labels: list[int]) -> Split:
    if not examples:
        return Split(torch.empty(0, 3, 1, 1, dtype=torch.uint8), torch.empty(0, dtype=torch.long))
    arrays = np.stack([read_image(e.path, crop) for e in examples])
    return Split(torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels, dtype=torch.long))


class ImageTask:
    """Adapter for image classification rounds (1-4, 10-11 and synthetic)."""

    name = "image"

    def load_clean(self, folder: str | None, row: Mapping[str, Any]) -> Split:
        _, examples = list_examples(Path(folder) if folder else None)
        return load_images(examples, row.get("image_crop"), [e.label for e in examples])

    def load_triggered(self, folder: str | None, row: Mapping[str, Any]) -> Split | None:
        """Triggered inputs from the source classes, labelled with the class the attacker wants."""
        _, examples = list_examples(Path(folder) if folder else None)
        targets = trigger_targets(row)
        keep, labels = select_triggered(examples, row, lambda e, default: targets.get(e.trigger, default))
        return load_images(keep, row.get("image_crop"), labels) if keep else None

    def batches(self, split: Split, labels: torch.Tensor, batch_size: int, device: torch.device,
                generator: torch.Generator | None = None, augment: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in index_batches(len(split), batch_size, generator):
            x = split.inputs[idx].to(device=device, dtype=torch.float32).div_(255.0)
            if augment:
                x = random_shift(x, generator)
            yield x, labels[idx].to(device)

    def logits(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        out = model(inputs)
        return out.logits if hasattr(out, "logits") else out[0] if isinstance(out, tuple) else out


def random_shift(x: torch.Tensor, generator: torch.Generator | None, fraction: float = 1 / 16) -> torch.Tensor:
    """Translate each image by up to ``fraction`` of its size (edge-replicated): label-preserving for signs and digits."""
    pad = max(1, int(round(x.shape[-1] * fraction)))
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    shifts = torch.randint(0, 2 * pad + 1, (x.shape[0], 2), generator=generator)
    h, w = x.shape[-2:]
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts.tolist())])
