"""Built-in repair methods; importing this package registers them."""
from pipeline.methods import finetune, seam  # noqa: F401
