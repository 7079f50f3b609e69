"""Arrow schemas of the manifest and result rows: the one source of truth for writers and readers."""
from schemas.rows import (
    MANIFEST_SCHEMA,
    RESULT_SCHEMA,
    SCHEMA_VERSION,
    TERMINAL_STATUSES,
    FAILED_STATUSES,
    conform,
    table_from_rows,
)

__all__ = [
    "MANIFEST_SCHEMA",
    "RESULT_SCHEMA",
    "SCHEMA_VERSION",
    "TERMINAL_STATUSES",
    "FAILED_STATUSES",
    "conform",
    "table_from_rows",
]
