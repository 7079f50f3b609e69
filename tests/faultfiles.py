"""Real broken model files for fault-injection tests (no mocks): a truncated and a malicious model.pt."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch


class _RunsAShellCommand:
    """Unpickling this calls ``os.system``: the allow-listed loader must refuse it before it runs."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def copy_round(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def truncate_model(model_dir: Path) -> Path:
    path = model_dir / "model.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def plant_malicious_model(model_dir: Path, marker: Path) -> Path:
    path = model_dir / "model.pt"
    torch.save(_RunsAShellCommand(marker), path)
    return path
