"""Read a result root with DuckDB: the ``results`` and ``manifest`` tables, status, and the report.

Parquet stays the source of truth; every call opens an in-memory DuckDB loaded from the files
(``hive_partitioning=true, union_by_name=true`` so rows written before a column existed read as NULL).
The ``method`` partition is ``<method>-<cfghash>``: the view splits it back into ``method`` and keeps
the partition value as ``method_config``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.store import MANIFEST_GLOB, RESULTS_GLOB
from schemas import MANIFEST_SCHEMA, RESULT_SCHEMA


@dataclass(frozen=True)
class Frame:
    """A query answer: column names and rows, whatever the output format."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _view(con: duckdb.DuckDBPyConnection, name: str, root: Path, glob: str, empty: pa.Schema, select: str) -> None:
    """Load the files once into an in-memory table: one scan per command, however often a query
    refers to it (``union_by_name`` reads every footer, which dominates over 1,000 small files)."""
    if any(root.glob(glob)):
        source = f"read_parquet({_literal(root / glob)}, hive_partitioning=true, union_by_name=true)"
    else:  # no files yet: an empty table with the right columns, so queries still run
        con.register(f"_empty_{name}", empty.empty_table())
        source = f"_empty_{name}"
    con.execute(f"CREATE TEMP TABLE {name} AS SELECT {select} FROM {source}")


def connect(root: str | Path) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with ``results`` and ``manifest`` loaded from the result root."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results directory")
    con = duckdb.connect()
    with_config = RESULT_SCHEMA.append(pa.field("method_config", pa.string()))
    _view(con, "results", root, RESULTS_GLOB, with_config,
          "* REPLACE (regexp_replace(method, '-[0-9a-f]+$', '') AS method, "
          "coalesce(config_hash, regexp_extract(method, '-([0-9a-f]+)$', 1)) AS config_hash), method AS method_config"
          if any(root.glob(RESULTS_GLOB)) else "*")
    _view(con, "manifest", root, MANIFEST_GLOB, MANIFEST_SCHEMA, "*")
    return con


def query(root: str | Path, sql: str) -> Frame:
    """Any SQL over the views; DuckDB's own errors (syntax, unknown column) propagate."""
    con = connect(root)
    try:
        rel = con.sql(sql)
        if rel is None:  # a statement without a result (e.g. CREATE): nothing to show
            return Frame([], [])
        return Frame(list(rel.columns), rel.fetchall())
    finally:
        con.close()


REPORT_SQL = """
SELECT round, method, config_hash,
       CASE WHEN grouping(architecture) = 1 THEN '*' ELSE coalesce(architecture, '?') END AS architecture,
       count(*) AS models,
       count_if(status = 'ok') AS ok,
       count_if(status = 'error') AS error,
       count_if(status = 'crashed') AS crashed,
       count_if(status = 'timeout') AS timeout,
       count_if(coalesce(poisoned, false)) AS poisoned,
       avg(acc_before) FILTER (WHERE status = 'ok') AS acc_before,
       avg(asr_before) FILTER (WHERE status = 'ok' AND poisoned) AS asr_before,
       avg(acc_after) FILTER (WHERE status = 'ok') AS acc_after,
       avg(asr_after) FILTER (WHERE status = 'ok' AND poisoned) AS asr_after,
       avg(fid) FILTER (WHERE status = 'ok' AND poisoned) AS fid,
       avg(seconds_wall) FILTER (WHERE status = 'ok') AS seconds_mean,
       sum(seconds_wall) AS seconds_total
FROM results
GROUP BY GROUPING SETS ((round, method, config_hash), (round, method, config_hash, architecture))
ORDER BY round, method, config_hash, grouping(architecture) DESC, architecture
"""

STATUS_SQL = """
WITH m AS (SELECT DISTINCT round, model_id FROM manifest),
     runs AS (SELECT DISTINCT round, method, config_hash FROM results),
     ids AS (SELECT round, model_id FROM m UNION SELECT round, model_id FROM results)
SELECT ids.round, runs.method, runs.config_hash,
       count(*) AS models,
       count_if(r.status = 'ok') AS ok,
       count_if(r.status = 'error') AS error,
       count_if(r.status = 'crashed') AS crashed,
       count_if(r.status = 'timeout') AS timeout,
       count_if(r.status IS NULL) AS pending,
       max(r.finished_at) AS last_finished
FROM ids LEFT JOIN runs USING (round)
LEFT JOIN results r ON r.round = ids.round AND r.method = runs.method AND r.config_hash = runs.config_hash
                   AND r.model_id = ids.model_id
GROUP BY ALL ORDER BY ALL
"""


def report(root: str | Path) -> Frame:
    """Per round x method x config (architecture ``*``) and per architecture: the paper's Table 4 numbers.

    ACC means are over ``ok`` rows; ASR and FID over ``ok`` rows of poisoned models (ASR is undefined on
    clean ones). FID = (ACC_after - ASR_after) / ACC_before per model, then averaged.
    """
    return query(root, REPORT_SQL)


def status(root: str | Path) -> Frame:
    """Manifest x results: models per status and still pending, per round and method config."""
    return query(root, STATUS_SQL)
