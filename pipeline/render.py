"""Human output: rich tables on stdout; progress and logs go to stderr."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from rich.console import Console
from rich.table import Table


def stdout() -> Console:
    return Console(soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*[fmt(v) for v in row])
    return t


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def counts_table(title: str, counts: Mapping[str, int]) -> Table:
    return table(title, [title.split(" ")[-1], "models"], sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def print_scan(summary: Mapping[str, Any], rows: list[Mapping[str, Any]], console: Console) -> None:
    console.print(f"[bold]{summary['models']}[/] models: {summary['poisoned']} poisoned, {summary['clean']} clean, "
                  f"{summary['models'] - summary['poisoned'] - summary['clean']} unknown; "
                  f"{summary['with_problems']} with problems")
    console.print(counts_table("models per task", summary["by_task"]))
    console.print(counts_table("models per architecture", summary["by_architecture"]))
    if summary["by_problem"]:
        console.print(counts_table("models per problem", summary["by_problem"]))
        broken = [(r["model_id"], "; ".join(r["problems"])) for r in rows if r["problems"]]
        console.print(table("models with problems", ["model", "problems"], broken[:50]))
        if len(broken) > 50:
            console.print(f"... and {len(broken) - 50} more (use --json or --out for all)")


RESULT_FIELDS = ("model_id", "method", "status", "acc_before", "asr_before", "acc_forget", "asr_forget", "acc_after",
                 "asr_after", "fid", "epochs_forget", "epochs_recover", "seconds_repair", "seconds_wall",
                 "acc_eval_source", "asr_eval_source", "device", "torch_threads", "repaired_model_path", "error")


def print_result(row: Mapping[str, Any], console: Console) -> None:
    console.print(table(f"{row['model_id']}: {row['method']} ({row['config_hash']})", ["field", "value"],
                        [(k, row.get(k)) for k in RESULT_FIELDS if row.get(k) is not None]))


BENCH_COLUMNS = ("method", "models", "failed", "fid_mean", "fid_min", "acc_before_poisoned", "acc_after_poisoned",
                 "asr_before", "asr_after", "clean_acc_drop", "seconds_repair", "repair_over_training")


def print_bench(summary: list[Mapping[str, Any]], console: Console) -> None:
    console.print(table("methods on the same clean data and epoch budget (FID/ASR: poisoned models; drop: clean models)",
                        BENCH_COLUMNS, [[s.get(c) for c in BENCH_COLUMNS] for s in summary]))
