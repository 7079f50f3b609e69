"""Round scanner: TrojAI layouts, config parsing and example naming -> manifest rows."""
from manifests.scan import NotARoundError, scan_round, scan_model

__all__ = ["NotARoundError", "scan_round", "scan_model"]
