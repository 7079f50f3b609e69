"""``seam``: remove backdoors from whole TrojAI rounds with SEAM. Thin: parse, call, print."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    help="Remove backdoors from whole TrojAI rounds with SEAM (Selective Amnesia).\n\n"
    "Typical flow: seam scan ROUND -> seam run ROUND --results DIR -> seam report DIR.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

EXIT_PARTIAL = 1
EXIT_USAGE = 2


def _die(message: str, code: int = EXIT_USAGE) -> None:
    from pipeline.render import stderr

    stderr().print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


@app.callback()
def _main() -> None:
    """Keeps ``seam scan ...`` a sub-command even while the app has a single command (Typer would
    otherwise make ``seam ROUND`` the whole interface)."""


@app.command()
def scan(
    round_dir: Path = typer.Argument(..., help="TrojAI round directory (ids at the root or under models/)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the manifest to this Parquet file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document (summary + rows) on stdout."),
) -> None:
    """Index a round into a manifest: task, classes, poisoned flag, triggers, examples, problems."""
    from manifests import NotARoundError, scan_round
    from manifests.io import summarize, write_manifest
    from pipeline.render import print_scan, stdout

    try:
        rows = scan_round(round_dir)
    except NotARoundError as exc:
        _die(str(exc))
    summary = summarize(rows)
    if out:
        write_manifest(rows, out)
    if as_json:
        typer.echo(json.dumps({"round": str(round_dir), "summary": summary, "models": rows}, default=str))
    else:
        print_scan(summary, rows, stdout())
        if out:
            stdout().print(f"manifest written to {out}")
    if summary["with_problems"]:
        raise typer.Exit(EXIT_PARTIAL)


if __name__ == "__main__":
    app()
