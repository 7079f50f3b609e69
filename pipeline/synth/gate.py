"""The quality gate: TrojAI-like models only (accurate, and poisoned ones with a strong backdoor)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from pipeline.synth.presets import Gate


@dataclass(frozen=True)
class Outcome:
    """Held-out figures of one trained model and the gate's verdict on them."""

    clean_acc: float
    asr: float | None  # None for clean models
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def score(self) -> float:
        """Used to keep the best attempt when none passes: the weakest of ACC and ASR."""
        return min(self.clean_acc, 1.0 if self.asr is None else self.asr) - len(self.failures)


def judge(gate: Gate, clean_acc: float, asr: float | None, reference_acc: float | None) -> Outcome:
    """Check one model; ``reference_acc`` is the mean ACC of the round's clean models of its architecture."""
    failures = []
    if clean_acc < gate.min_clean_acc:
        failures.append(f"clean ACC {clean_acc:.3f} < {gate.min_clean_acc:.2f}")
    if asr is not None:
        if asr < gate.min_asr:
            failures.append(f"ASR {asr:.3f} < {gate.min_asr:.2f}")
        if reference_acc is not None and clean_acc < reference_acc - gate.max_acc_gap:
            failures.append(f"clean ACC {clean_acc:.3f} trails clean models of its architecture "
                            f"({reference_acc:.3f}) by more than {gate.max_acc_gap:.2f}")
    return Outcome(clean_acc, asr, tuple(failures))


@dataclass(frozen=True)
class GateResult:
    """The attempt kept: the first that passes the gate, else the best scoring one."""

    outcome: Outcome
    model: Any
    wall: float
    seed: int
    attempts: int
    failures: list[str]
    kept_attempt: int = 1


def train_until_gate(max_attempts: int, seed_for: Callable[[int], int],
                     attempt: Callable[[int, int], tuple[Outcome, Any, float]]) -> GateResult:
    """Retrain with a new seed until the gate passes (at most ``max_attempts``).

    ``seed_for(n)`` gives attempt n's seed (called once per attempt, in order); ``attempt(n, seed)``
    trains and judges one model and returns (outcome, model, training seconds).
    """
    best: tuple[Outcome, Any, float, int, int] | None = None
    failures: list[str] = []
    n = 0
    for n in range(1, max_attempts + 1):
        seed = seed_for(n)
        outcome, model, wall = attempt(n, seed)
        failures += [f"attempt {n}: {f}" for f in outcome.failures]
        if best is None or outcome.score() > best[0].score():
            best = (outcome, model, wall, seed, n)
        if outcome.passed:
            break
    if best is None:
        raise ValueError("the quality gate needs at least one attempt")
    outcome, model, wall, seed, kept = best
    return GateResult(outcome, model, wall, seed, attempts=n, failures=failures, kept_attempt=kept)


def outcome_fields(kept: GateResult, reference_acc: float | None, started: float) -> dict[str, Any]:
    """The TrojAI-style result and gate keys every synthetic model's config.json carries."""
    return {
        "final_clean_data_test_acc": round(kept.outcome.clean_acc, 6),
        "final_triggered_data_test_acc": None if kept.outcome.asr is None else round(kept.outcome.asr, 6),
        "gate_passed": kept.outcome.passed,
        "gate_attempts": kept.attempts,
        "gate_failures": kept.failures,
        "gate_reference_clean_acc": None if reference_acc is None else round(reference_acc, 6),
        "training_wall_time_sec": round(kept.wall, 3),
        "generation_wall_time_sec": round(time.perf_counter() - started, 3),
    }
