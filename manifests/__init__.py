"""Round scanner: TrojAI layouts, config parsing and example naming -> manifest rows."""
from manifests.scan import NotARoundError, scan_model, scan_one, scan_round

__all__ = ["NotARoundError", "scan_model", "scan_one", "scan_round"]
