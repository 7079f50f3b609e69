"""Built-in repair methods; importing this package registers them."""
from pipeline.methods import clp, finetune, fineprune, nad, seam, seam_adv  # noqa: F401
