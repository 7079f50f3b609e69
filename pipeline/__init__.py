"""Per-model work: safe loading, task adapters, repair methods, metrics, result store, reports."""
