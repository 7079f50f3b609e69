"""Test-only fault injection: make chosen models raise, kill their worker process, or hang.

TESTING HOOK, not a feature: the environment variable ``SEAM_FAULTS`` holds a JSON object
``{model_id: "raise" | "exit" | "hang"}``. The driver reads it once and hands it to every worker, whose
wrapper (workers/execute.py) applies the fault before the real per-model work, so crash and timeout
handling can be tested deterministically with real processes. Unset in normal use.
"""
from __future__ import annotations

import json
import os
import time
from typing import Mapping

ENV = "SEAM_FAULTS"


class InjectedFault(RuntimeError):
    """Raised for the "raise" fault; the wrapper turns it into an ``error`` row like any model error."""


def _raise(model_id: str) -> None:
    raise InjectedFault(f"{model_id}: injected fault (SEAM_FAULTS)")


def _exit(model_id: str) -> None:
    os._exit(17)  # the worker process dies without cleanup, like a segfault or an OOM kill


def _hang(model_id: str) -> None:
    while True:
        time.sleep(3600)


FAULTS = {"raise": _raise, "exit": _exit, "hang": _hang}


def faults_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Parse ``SEAM_FAULTS``; a malformed value is a usage error, not a silent no-op."""
    text = environ.get(ENV, "").strip()
    if not text:
        return {}
    faults = json.loads(text)
    if not isinstance(faults, dict) or any(v not in FAULTS for v in faults.values()):
        raise ValueError(f"{ENV} must be a JSON object {{model_id: {' | '.join(FAULTS)}}}, got {text!r}")
    return {str(k): str(v) for k, v in faults.items()}


def apply_fault(model_id: str, faults: Mapping[str, str]) -> None:
    kind = faults.get(model_id)
    if kind:
        FAULTS[kind](model_id)
