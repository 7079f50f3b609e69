"""Read a result root with DuckDB: the ``results`` and ``manifest`` views, status, and the report.

Parquet stays the source of truth; every call opens an in-memory DuckDB over the files
(``hive_partitioning=true, union_by_name=true`` so rows written before a column existed read as NULL).
The ``method`` partition is ``<method>-<cfghash>``: the view splits it back into ``method`` and keeps
the partition value as ``method_config``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.store import MANIFEST_GLOB, RESULTS_GLOB, write_table_atomic
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
    """A view with every column of ``empty``: files written before a column existed read it as NULL."""
    con.register(f"_empty_{name}", empty.empty_table())
    source = f"_empty_{name}"
    if any(root.glob(glob)):
        source = (f"(SELECT * FROM {source} UNION ALL BY NAME SELECT * FROM "
                  f"read_parquet({_literal(root / glob)}, hive_partitioning=true, union_by_name=true))")
    con.execute(f"CREATE VIEW {name} AS SELECT {select} FROM {source}")


RESULTS_SELECT = ("* REPLACE (regexp_replace(method, '-[0-9a-f]+$', '') AS method, "
                  "coalesce(config_hash, regexp_extract(method, '-([0-9a-f]+)$', 1)) AS config_hash), "
                  "method AS method_config")
CACHE = Path("_cache") / "results.arrow-cache"  # not *.parquet: no results/**/*.parquet glob may see it


def _signature(root: Path, files: list[Path]) -> str:
    """Identity of the row files (path, size, mtime): any new or rewritten row changes it."""
    digest = hashlib.sha256(",".join(RESULT_SCHEMA.names).encode())  # a new column invalidates the cache
    for path in files:
        st = path.stat()
        digest.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def refresh_cache(root: str | Path) -> Path | None:
    """Fold every row file into one cache file, unless the cache already matches them.

    ``union_by_name`` makes DuckDB read every footer, which dominates over 1,000 one-row files
    (seconds); the cache is one file (milliseconds). It is only used while its signature matches the
    listing, so the row files stay the source of truth. ``seam run`` refreshes it when it ends.
    """
    root = Path(root)
    files = sorted(root.glob(RESULTS_GLOB))
    if not files:
        return None
    signature, cache = _signature(root, files), root / CACHE
    if cache.is_file() and pq.read_schema(cache).metadata.get(b"seam.signature") == signature.encode():
        return cache
    con = duckdb.connect()
    try:
        _view(con, "results", root, RESULTS_GLOB, RESULT_SCHEMA, RESULTS_SELECT)
        table = con.sql("SELECT * FROM results").to_arrow_table()
    finally:
        con.close()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"seam.signature": signature.encode()})
    try:
        return write_table_atomic(table, cache)
    except OSError:  # read-only result root: answer without a cache
        return None


def connect(root: str | Path) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with the views ``results`` and ``manifest`` over the result root."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results directory")
    con = duckdb.connect()
    cache = refresh_cache(root)
    if cache is not None:
        con.execute(f"CREATE VIEW results AS SELECT * FROM read_parquet({_literal(cache)})")
    else:
        _view(con, "results", root, RESULTS_GLOB, RESULT_SCHEMA, RESULTS_SELECT)
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
SELECT round, any_value(task) AS task, method, config_hash,
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
WITH res AS MATERIALIZED (SELECT round, method, config_hash, model_id, status, finished_at FROM results),
     m AS (SELECT DISTINCT round, model_id FROM manifest),
     runs AS (SELECT DISTINCT round, method, config_hash FROM res),
     ids AS (SELECT round, model_id FROM m UNION SELECT round, model_id FROM res)
SELECT ids.round, runs.method, runs.config_hash,
       count(*) AS models,
       count_if(r.status = 'ok') AS ok,
       count_if(r.status = 'error') AS error,
       count_if(r.status = 'crashed') AS crashed,
       count_if(r.status = 'timeout') AS timeout,
       count_if(r.status IS NULL) AS pending,
       max(r.finished_at) AS last_finished
FROM ids LEFT JOIN runs USING (round)
LEFT JOIN res r ON r.round = ids.round AND r.method = runs.method AND r.config_hash = runs.config_hash
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
