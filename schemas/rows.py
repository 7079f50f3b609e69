"""Manifest and result row schemas.

Every Parquet file the tool writes carries ``seam.schema_version`` and ``seam.kind`` in its
metadata so a reader can tell which contract a file follows.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import pyarrow as pa

SCHEMA_VERSION = "1"

TERMINAL_STATUSES = ("ok", "error", "crashed", "timeout")
FAILED_STATUSES = ("error", "crashed", "timeout")


def _schema(kind: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={b"seam.schema_version": SCHEMA_VERSION.encode(), b"seam.kind": kind.encode()})


MANIFEST_SCHEMA = _schema(
    "manifest",
    [
        pa.field("round", pa.string(), nullable=False),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("model_dir", pa.string(), nullable=False),
        pa.field("model_file", pa.string()),
        pa.field("round_guess", pa.string()),  # e.g. "r4", "r5/r6", "r7", "synthetic"
        pa.field("task", pa.string()),  # image | sentiment | ner
        pa.field("architecture", pa.string()),
        pa.field("num_classes", pa.int32()),
        pa.field("poisoned", pa.bool_()),
        pa.field("trigger_type", pa.string()),
        pa.field("trigger_option", pa.string()),  # polygon sides, filter name, executor name
        pa.field("trigger_text", pa.string()),
        pa.field("source_classes", pa.list_(pa.int32())),
        pa.field("target_class", pa.int32()),
        pa.field("triggers_json", pa.string()),
        pa.field("clean_example_dir", pa.string()),
        pa.field("poisoned_example_dir", pa.string()),
        pa.field("clean_test_dir", pa.string()),
        pa.field("poisoned_test_dir", pa.string()),
        pa.field("n_clean_examples", pa.int32()),
        pa.field("n_poisoned_examples", pa.int32()),
        pa.field("clean_examples_per_class", pa.list_(pa.int32())),
        pa.field("image_crop", pa.int32()),  # centre-crop size the round expects (224 for rounds 1-4)
        pa.field("embedding", pa.string()),
        pa.field("embedding_flavor", pa.string()),
        pa.field("embedding_file", pa.string()),
        pa.field("tokenizer_file", pa.string()),
        pa.field("cls_token_is_first", pa.bool_()),
        pa.field("class_mapping_json", pa.string()),
        pa.field("training_wall_time_s", pa.float64()),
        pa.field("problems", pa.list_(pa.string()), nullable=False),
    ],
)

RESULT_SCHEMA = _schema(
    "result",
    [
        pa.field("round", pa.string(), nullable=False),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("config_hash", pa.string(), nullable=False),
        pa.field("config_json", pa.string()),
        pa.field("status", pa.string(), nullable=False),  # ok | error | crashed | timeout
        pa.field("error", pa.string()),
        pa.field("attempts", pa.int32()),
        pa.field("task", pa.string()),
        pa.field("architecture", pa.string()),
        pa.field("num_classes", pa.int32()),
        pa.field("poisoned", pa.bool_()),
        pa.field("acc_before", pa.float64()),
        pa.field("asr_before", pa.float64()),
        pa.field("acc_forget", pa.float64()),
        pa.field("asr_forget", pa.float64()),
        pa.field("acc_after", pa.float64()),
        pa.field("asr_after", pa.float64()),
        pa.field("fid", pa.float64()),
        pa.field("acc_eval_source", pa.string()),  # clean_test_data | heldout_examples
        pa.field("asr_eval_source", pa.string()),
        pa.field("n_acc_eval", pa.int32()),
        pa.field("n_asr_eval", pa.int32()),
        pa.field("n_forget", pa.int32()),
        pa.field("n_recover", pa.int32()),
        pa.field("epochs_forget", pa.int32()),
        pa.field("epochs_recover", pa.int32()),
        pa.field("forget_reached", pa.bool_()),
        pa.field("recover_reached", pa.bool_()),
        pa.field("seconds_load", pa.float64()),
        pa.field("seconds_forget", pa.float64()),
        pa.field("seconds_recover", pa.float64()),
        pa.field("seconds_eval", pa.float64()),
        pa.field("seconds_repair", pa.float64()),
        pa.field("seconds_wall", pa.float64()),
        pa.field("training_wall_time_s", pa.float64()),
        pa.field("device", pa.string()),
        pa.field("torch_threads", pa.int32()),
        pa.field("host", pa.string()),
        pa.field("peak_memory_mb", pa.float64()),
        pa.field("package_version", pa.string()),
        pa.field("repaired_model_path", pa.string()),
        pa.field("finished_at", pa.timestamp("us", tz="UTC")),
        pa.field("trace_json", pa.string()),
    ],
)


def conform(row: Mapping[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Return ``row`` restricted to the schema's fields, missing ones as None; unknown keys are an error."""
    unknown = set(row) - set(schema.names)
    if unknown:
        raise KeyError(f"fields not in the {schema.metadata[b'seam.kind'].decode()} schema: {sorted(unknown)}")
    return {name: row.get(name) for name in schema.names}


def table_from_rows(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table that follows ``schema`` exactly (order, types, metadata)."""
    rows = [conform(r, schema) for r in rows]
    return pa.Table.from_pylist(rows, schema=schema)
