"""Text renderings of a query answer (pipeline.report.Frame) for ``seam report/status/query``.

Data formats are exact (full precision, ISO timestamps, NULL as empty/None); only the rich table
rounds numbers for reading.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable

from rich.table import Table

from pipeline.render import table


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def to_json(frame: Any) -> str:
    """One JSON document: a list of objects."""
    return json.dumps([{k: _plain(v) for k, v in r.items()} for r in frame.records()])


def to_jsonl(frame: Any) -> str:
    """JSON Lines, one object per row (``jq``-friendly)."""
    return "".join(json.dumps({k: _plain(v) for k, v in r.items()}) + "\n" for r in frame.records())


def to_csv(frame: Any) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(frame.columns)
    writer.writerows([["" if v is None else _plain(v) for v in row] for row in frame.rows])
    return buf.getvalue()


def _md_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(_plain(value)).replace("|", "\\|")


def to_markdown(frame: Any) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.rows]
    return "\n".join(lines) + "\n"


def to_table(frame: Any, title: str = "") -> Table:
    return table(title, frame.columns, frame.rows)


TEXT_FORMATS: dict[str, Callable[[Any], str]] = {
    "json": to_json, "jsonl": to_jsonl, "csv": to_csv, "markdown": to_markdown,
}


def emit(frame: Any, fmt: str, title: str = "") -> None:
    """Print a frame on stdout in ``fmt`` (``table`` or one of TEXT_FORMATS); data only, no logs."""
    import sys

    from rich.console import Console

    if fmt == "table":
        console = Console(soft_wrap=True)
        if not console.is_terminal:  # pipes and logs: wide enough that the report's columns stay readable
            console = Console(soft_wrap=True, width=240)
        console.print(to_table(frame, title))
    else:
        sys.stdout.write(TEXT_FORMATS[fmt](frame))
        sys.stdout.flush()
