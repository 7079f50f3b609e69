"""Synthetic TrojAI rounds (``seam make-round``): data sources, triggers, architectures, training, layout.

OpenMP busy-waiting makes torch crawl on shared CPUs; ask for passive waiting before torch starts
(it has no effect if torch was already imported, and never overrides an explicit setting).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pipeline.synth.generate import (  # noqa: E402
    RoundMismatchError,
    RoundOptions,
    RoundResult,
    UnsupportedTaskError,
    make_round,
)
from pipeline.synth.presets import PRESETS, ImagePreset  # noqa: E402

__all__ = ["PRESETS", "ImagePreset", "RoundMismatchError", "RoundOptions", "RoundResult", "UnsupportedTaskError",
           "make_round"]
