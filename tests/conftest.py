"""Shared fixtures. ``tiny_image_round`` is built once per test session and reused by every test file."""
from __future__ import annotations

from pathlib import Path

import pytest

TINY_SEED = 0


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Short trainings depend on float summation order, which changes with the thread count: one
    thread makes every run of the suite (CI or a plain ``python -m pytest``) see the same numbers."""
    import torch

    torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def tiny_sentiment_round(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-model synthetic sentiment round (rounds 5/6 layout; frozen MiniLM; GRU heads, 1 poisoned, 1 clean)."""
    from pipeline.synth_nlp import NlpRoundOptions, make_nlp_round

    out = tmp_path_factory.mktemp("synth-nlp") / "tiny-sentiment-round"
    make_nlp_round(NlpRoundOptions(out=out, task="sentiment", preset="tiny", seed=TINY_SEED))
    return out


@pytest.fixture(scope="session")
def tiny_ner_round(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-model synthetic NER round (round 7 layout; MiniLM first layer + linear; 1 poisoned, 1 clean)."""
    from pipeline.synth_nlp import NlpRoundOptions, make_nlp_round

    out = tmp_path_factory.mktemp("synth-nlp") / "tiny-ner-round"
    make_nlp_round(NlpRoundOptions(out=out, task="ner", preset="tiny", seed=TINY_SEED))
    return out
