"""Run progress on stderr: a rich bar (done / failed / ETA) on a terminal, one line per model otherwise.

Plain lines keep ``ray job logs`` and CI output readable where a live bar cannot redraw.
"""
from __future__ import annotations

from typing import Any, Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from schemas import FAILED_STATUSES


class RunProgress:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.done = self.failed = self.total = 0
        self._bar: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> "RunProgress":
        return self

    def start(self, total: int, skipped: int) -> None:
        self.total = total
        self.console.print(f"{total} model(s) to run, {skipped} already have a row (skipped)")
        if self.console.is_terminal and total:
            self._bar = Progress(TextColumn("[bold]repairing"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=self.console)
            self._task = self._bar.add_task("repairing", total=total, failed=0)
            self._bar.start()

    def update(self, row: Mapping[str, Any]) -> None:
        self.done += 1
        self.failed += row["status"] in FAILED_STATUSES
        if self._bar is not None:
            self._bar.update(self._task, advance=1, failed=self.failed)
            if row["status"] != "ok":
                self._bar.console.print(f"[red]{row['status']}[/] {row['model_id']}: {row.get('error') or ''}"[:300])
            return
        wall = row.get("seconds_wall")
        self.console.print(f"[{self.done}/{self.total}] {row['model_id']} {row['status']}"
                           + (f" {wall:.1f} s" if wall else "")
                           + (f" {row.get('error')}"[:300] if row["status"] != "ok" else ""), highlight=False)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
