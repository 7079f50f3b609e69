"""Reading TrojAI ``config.json`` / ``METADATA.csv`` values whatever the round wrote.

Rounds 2-3 write flat UPPER-case dicts, rounds 4-7 jsonpickle dumps (``py/object`` keys, the string
"None" for null); METADATA.csv lower-cases keys, writes lists as ``[1 3]`` and booleans as ``True``.
"""
from __future__ import annotations

import ast
import csv
import json
from pathlib import Path
from typing import Any


def normalize(value: Any) -> Any:
    """Lower-case dict keys, drop ``py/*`` keys, turn "None" into None, recursively."""
    if isinstance(value, dict):
        return {str(k).lower(): normalize(v) for k, v in value.items() if not str(k).startswith("py/")}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str) and value.strip() in ("None", "none", "null"):
        return None
    return value


def read_config(path: Path) -> dict[str, Any]:
    """Parse a config.json with plain ``json`` (never jsonpickle.decode, which imports modules)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return normalize(data)


def metadata_value(text: str | None) -> Any:
    """Decode one METADATA.csv cell: ``True``/``False``, numbers, ``[1 3]`` lists, ``None``."""
    if text is None:
        return None
    text = text.strip()
    if text in ("", "None", "nan"):
        return None
    if text in ("True", "False"):
        return text == "True"
    if text.startswith("["):
        try:
            return ast.literal_eval(",".join(text.split()).replace("[,", "[").replace(",]", "]"))
        except (ValueError, SyntaxError):
            return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def read_metadata(path: Path) -> dict[str, dict[str, Any]]:
    """METADATA.csv rows keyed by model name (lower-cased column names)."""
    rows: dict[str, dict[str, Any]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            row = {str(k).strip().lower(): metadata_value(v) for k, v in row.items() if k is not None}
            name = row.get("model_name") or row.get("model_id")
            if name:
                rows[str(name)] = row
    return rows


def first(cfg: dict[str, Any], *keys: str) -> Any:
    """The first key present with a non-null value (keys already lower-case)."""
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return None


def as_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    return None


def as_int_list(value: Any) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [int(value)]
    if isinstance(value, str):
        value = metadata_value(value)
        if isinstance(value, str):
            return None
        return as_int_list(value)
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value if v is not None]
    return None


def read_ground_truth(path: Path) -> bool:
    """``ground_truth.csv``: a single 0/1 integer, no header."""
    text = path.read_text(encoding="utf-8").strip()
    if text not in ("0", "1"):
        raise ValueError(f"{path}: expected 0 or 1, found {text[:20]!r}")
    return text == "1"
