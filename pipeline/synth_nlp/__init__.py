"""Synthetic NLP rounds in the TrojAI round 5-7 layout (``seam make-round --task sentiment|ner``).

OpenMP busy-waiting makes torch crawl on shared CPUs; ask for passive waiting before torch starts.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.synth_nlp.generate import NlpRoundOptions, NlpRoundResult, make_nlp_round  # noqa: E402
from pipeline.synth_nlp.presets import NER_PRESETS, SENTIMENT_PRESETS  # noqa: E402

NLP_TASKS = ("sentiment", "ner")

__all__ = ["NER_PRESETS", "NLP_TASKS", "SENTIMENT_PRESETS", "NlpRoundOptions", "NlpRoundResult", "make_nlp_round"]
