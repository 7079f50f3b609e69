"""The ``local`` backend: the driver loop without Ray, one model at a time in this process.

Debuggable (pdb works, no extra processes). A hang is cut off by SIGALRM (main thread only) and
becomes a ``timeout`` row; a model that kills the process kills the run, which the result store's
resume then continues, so use the Ray backend where workers may die.
"""
from __future__ import annotations

import signal
import threading
from typing import Any, Hashable

from workers.driver import Job, Outcome
from workers.execute import WorkSpec, configure_threads, execute


class _Deadline(BaseException):
    """BaseException so that per-model ``except Exception`` blocks cannot swallow it."""


def _alarm(signum: int, frame: Any) -> None:
    raise _Deadline


class LocalBackend:
    def __init__(self, spec: WorkSpec, timeout_s: float, device: str | None = None, threads: int = 1):
        configure_threads(threads)
        self.spec, self.timeout_s, self.device = spec, timeout_s, device
        self._pending: dict[int, Job] = {}
        self._next = 0

    def free_slots(self) -> int:
        return 0 if self._pending else 1

    def submit(self, job: Job) -> Hashable:
        self._next += 1
        self._pending[self._next] = job
        return self._next

    def wait(self, timeout: float) -> list[tuple[Hashable, Outcome]]:
        done = []
        for handle, job in list(self._pending.items()):
            del self._pending[handle]
            done.append((handle, self._run(job)))
        return done

    def _run(self, job: Job) -> Outcome:
        if threading.current_thread() is not threading.main_thread():
            return Outcome("row", execute(job.row, self.spec, job.save_path, self.device))
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
        try:
            return Outcome("row", execute(job.row, self.spec, job.save_path, self.device))
        except _Deadline:
            return Outcome("timeout", error=f"no result after {self.timeout_s:g} s; model abandoned")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def expire(self, handle: Hashable) -> None:
        self._pending.pop(handle, None)  # never in flight: wait() runs each model to its end

    def close(self) -> None:
        self._pending.clear()
