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


@pytest.fixture(scope="session")
def ray_session():
    """One embedded Ray for the whole session (start-up costs seconds); `seam run --backend ray` reuses it.

    Token auth off (loopback only) so no ~/.ray/auth_token is needed; dashboard off to save memory.
    """
    import ray

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        mp.setenv("OMP_WAIT_POLICY", "PASSIVE")
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=256 * 2**20)
        try:
            yield ray
        finally:
            ray.shutdown()
