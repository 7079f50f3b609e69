"""Shared fixtures. ``tiny_image_round`` is built once per test session and reused by every test file."""
from __future__ import annotations

from pathlib import Path

import pytest

TINY_SEED = 0


@pytest.fixture(scope="session")
def tiny_image_round(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-model synthetic TrojAI image round (preset ``tiny``: 2 clean, 2 poisoned, both trigger kinds)."""
    from pipeline.synth import RoundOptions, make_round

    out = tmp_path_factory.mktemp("synth") / "tiny-image-round"
    make_round(RoundOptions(out=out, task="image", seed=TINY_SEED, preset="tiny", source="signs", threads=1))
    return out
