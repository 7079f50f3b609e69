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
EXIT_INFRASTRUCTURE = 4  # Ray could not be started or reached


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


@app.command()
def repair(
    model_dir: Path = typer.Argument(..., help="One model folder (id-XXXXXXXX) of a TrojAI round."),
    method: str = typer.Option("seam", "--method", help="Repair method: seam (Algorithm 1), seam-adv (SEAM + adversarial recovery), finetune, fineprune, nad, clp."),
    settings: Optional[list[str]] = typer.Option(None, "--set", help="Override a config field: --set forget_lr=0.005."),
    save: Optional[Path] = typer.Option(None, "--save", help="Save the repaired model (whole pickle, TrojAI style)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda:0 if present)."),
    seed: int = typer.Option(0, "--seed", help="Seed for data splits, wrong labels and batch order."),
    as_json: bool = typer.Option(False, "--json", help="Print the result row as one JSON document."),
) -> None:
    """Repair one model and print its result row (ACC/ASR before, after forgetting, after recovery; FID)."""
    from manifests import NotARoundError, scan_one
    from pipeline.per_model import process_model
    from pipeline.registry import parse_overrides
    from pipeline.render import print_result, stdout

    try:
        row = scan_one(model_dir)
        overrides = parse_overrides(method, settings)
    except (NotARoundError, KeyError, ValueError) as exc:
        _die(str(exc).strip("'\""))
    result = process_model(row, method, overrides, save_path=str(save) if save else None, device=device, seed=seed)
    if as_json:
        typer.echo(json.dumps(result, default=str))
    else:
        print_result(result, stdout())
    if result["status"] != "ok":
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def methods(
    method: Optional[str] = typer.Argument(None, help="Show this method's config fields (default: list the methods)."),
) -> None:
    """List the repair methods, or one method's config: every field, its default, and what each task changes."""
    from pipeline.registry import available_methods, describe, get_method
    from pipeline.render import stdout, table

    if method is None:
        stdout().print(table("repair methods (--method)", ["method", "what it does"],
                             [(m, get_method(m).summary) for m in available_methods()]))
        return
    try:
        columns, rows = describe(method)
    except KeyError as exc:
        _die(str(exc).strip("'\""))
    stdout().print(table(f"{method}: config (override with --set FIELD=VALUE; 'on <task>': that task's own default)",
                         columns, rows))


@app.command()
def bench(
    source: Path = typer.Argument(..., help="Round directory or manifest Parquet file."),
    methods: str = typer.Option("seam,finetune,fineprune,nad", "--methods", help="Comma-separated methods."),
    settings: Optional[list[str]] = typer.Option(None, "--set", help="Override a SEAM config field (KEY=VALUE)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N models."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write every result row to this JSON Lines file."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Every method on every model, same clean data and epoch budget: the paper's Table-2 comparison."""
    from manifests.io import load_manifest
    from pipeline.bench import ResultLog, run_bench, summarize
    from pipeline.registry import parse_overrides
    from pipeline.render import print_bench, stderr, stdout

    try:
        overrides = parse_overrides("seam", settings)
        rows = [r for r in load_manifest(source) if not r["problems"]][:limit]
    except (KeyError, ValueError, OSError) as exc:
        _die(str(exc))
    with ResultLog(stderr(), out) as log:
        results = run_bench(rows, methods.split(","), overrides, seed=seed, on_result=log)
    summary = summarize(results)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        print_bench(summary, stdout())


REPORT_FORMATS = ["table", "json", "csv", "markdown"]
QUERY_FORMATS = {"table": "table", "json": "jsonl", "jsonl": "jsonl", "csv": "csv", "markdown": "markdown"}


@app.command()
def run(
    source: Path = typer.Argument(..., help="Round directory or manifest Parquet file (from seam scan --out)."),
    results: Path = typer.Option(..., "--results", help="Result root (round=<r>/method=<m>-<hash>/<id>.parquet)."),
    method: str = typer.Option("seam", "--method", help="Repair method (see the registry)."),
    set_: list[str] = typer.Option([], "--set", help="Method option override KEY=VALUE (repeatable)."),
    backend: str = typer.Option("ray", "--backend", help="ray (actors, default) or local (in process)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: RAY_ADDRESS, "
                                          "else an embedded instance)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Actors (default: one per GPU, else 1)."),
    gpus_per_worker: float = typer.Option(1.0, "--gpus-per-worker", min=0.01, help="GPU share per actor."),
    timeout_s: float = typer.Option(3600.0, "--timeout-s", help="Per-model deadline; a hang becomes a timeout row."),
    max_attempts: int = typer.Option(2, "--max-attempts", help="Tries per model whose worker process dies."),
    save_models: bool = typer.Option(False, "--save-models", help="Also write repaired models next to the rows."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Rerun models whose row is error/crashed/timeout."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary on stdout."),
) -> None:
    """Repair every model of a round; resumable (models with a row are skipped). Exit 1 if any failed."""
    from pipeline.registry import parse_overrides
    from pipeline.render import stdout
    from workers.progress import RunProgress
    from workers.run import InfrastructureError, RunOptions, UsageError, run_round

    try:
        overrides = parse_overrides(method, set_)
    except (KeyError, ValueError) as exc:
        _die(str(exc).strip("'\""))
    try:
        opts = RunOptions(results=results, method=method, overrides=overrides, backend=backend,
                          address=address, workers=workers, gpus_per_worker=gpus_per_worker, timeout_s=timeout_s,
                          max_attempts=max_attempts, save_models=save_models, retry_failed=retry_failed, seed=seed)
        with RunProgress() as progress:
            summary = run_round(source, opts, progress)
    except UsageError as exc:
        _die(str(exc))
    except InfrastructureError as exc:
        _die(str(exc), EXIT_INFRASTRUCTURE)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        stdout().print(f"{summary['ran']} run, {summary['failed']} failed, {summary['skipped']} skipped "
                       f"-> {results}", highlight=False)
    if summary["interrupted"]:
        raise typer.Exit(130)
    if summary["failed"] or summary["skipped_failed"]:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def status(
    results: Path = typer.Argument(..., help="Result root of seam run."),
    fmt: str = typer.Option("table", "--format", help="table|json|csv|markdown"),
) -> None:
    """Per round and method config: models ok / error / crashed / timeout / still pending."""
    from pipeline.formats import emit
    from pipeline.report import status as status_frame

    _check_format(fmt, REPORT_FORMATS)
    emit(_read(status_frame, results), fmt, "status")


@app.command()
def report(
    results: Path = typer.Argument(..., help="Result root of seam run."),
    fmt: str = typer.Option("table", "--format", help="table|json|csv|markdown"),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Also write PNG plots to this folder."),
) -> None:
    """Per round (with its task) x method (architecture '*' = all, then each): counts, mean ACC/ASR before and after, FID, time."""
    from pipeline.formats import emit
    from pipeline.report import report as report_frame

    _check_format(fmt, REPORT_FORMATS)
    emit(_read(report_frame, results), fmt, "SEAM repair per round x method (Table 4 layout)")
    if plots:
        from pipeline.plots import write_plots
        from pipeline.render import stderr

        for path in write_plots(results, plots):
            stderr().print(f"wrote {path}", highlight=False)


@app.command()
def query(
    sql: str = typer.Argument(..., help="SQL over the views 'results' and 'manifest'."),
    results: Path = typer.Option(..., "--results", help="Result root of seam run."),
    fmt: str = typer.Option("table", "--format", help="table|json (JSON Lines)|csv|markdown"),
) -> None:
    """Run any SQL over the result store with DuckDB."""
    import duckdb

    from pipeline.formats import emit
    from pipeline.report import query as run_query

    _check_format(fmt, list(QUERY_FORMATS))
    try:
        frame = _read(lambda root: run_query(root, sql), results)
    except duckdb.Error as exc:
        _die(f"query failed: {exc}")
    emit(frame, QUERY_FORMATS[fmt], "")


def _check_format(fmt: str, allowed: list[str]) -> None:
    if fmt not in allowed:
        _die(f"--format must be one of {', '.join(allowed)}, got {fmt!r}")


def _read(fn, results: Path):
    try:
        return fn(results)
    except FileNotFoundError as exc:
        _die(str(exc))


@app.command("make-round")
def make_round(
    out: Path = typer.Argument(..., help="Round directory to write (an interrupted build resumes there)."),
    task: str = typer.Option("image", "--task", help="image, sentiment (rounds 5-6 layout) or ner (round 7 layout)."),
    models: Optional[int] = typer.Option(None, "--models", help="Number of models (default: the preset's)."),
    seed: int = typer.Option(0, "--seed", help="Master seed: the same seed gives the same round."),
    preset: str = typer.Option("tiny", "--preset", help="tiny (for tests), bench (the FID tables), or "
                               "bench-pretrained (sentiment with the untuned encoder)."),
    source: str = typer.Option("signs", "--source", help="signs (synthetic signs on photos) or mnist."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Image side in pixels."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads (default min(2, cores))."),
) -> None:
    """Build a synthetic round in the TrojAI round-4 layout, with ground truth, trained models and test data."""
    from pipeline.render import stderr, stdout
    from pipeline.synth import RoundOptions, make_round as build_round
    from pipeline.synth.report import RichReporter, print_summary

    if task in ("sentiment", "ner"):  # NLP rounds (5-7 layout) have their own generator
        from pipeline.synth_nlp import NlpRoundOptions, make_nlp_round

        try:
            with RichReporter(stderr()) as reporter:
                result = make_nlp_round(NlpRoundOptions(out, task, preset, models, seed, threads or 1), reporter)
        except (ValueError, RuntimeError) as exc:
            _die(str(exc))
        print_summary(result.configs, result.built, result.wall_time_sec, stdout())
        return
    extra = {} if threads is None else {"threads": threads}
    options = RoundOptions(out=out, task=task, models=models, seed=seed, preset=preset, source=source,
                           image_size=image_size, **extra)
    try:
        with RichReporter(stderr()) as reporter:
            result = build_round(options, reporter)
    except (ValueError, RuntimeError) as exc:
        _die(str(exc))
    print_summary(result.configs, result.built, result.wall_time_sec, stdout())


if __name__ == "__main__":
    app()
