"""``seam-adv``: SEAM tuned per task, whose recovery clean data alone cannot turn back into the backdoor.

The textbook algorithm and every switch live in ``pipeline.methods.seam``; this module holds only the chosen
settings (each with the measurement that chose it, docs/SEAM.md) and registers them under their own name.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from torch import nn

from pipeline.methods.seam import SeamConfig, seam
from pipeline.registry import register_method
from pipeline.tasks.base import RepairData


@dataclass(frozen=True)
class SeamAdvConfig(SeamConfig):
    """SEAM with universal adversarial recovery on all clean examples (chosen on bench signs seed 1, docs/SEAM.md).

    ``TASK_DEFAULTS`` holds what differs per task (below any ``--set``): images average their last recovery
    epochs; sentiment heads forget by re-initialisation and recover with Adam and no adversary; NER recovery
    goes on until its target has been met 10 times.
    """

    TASK_DEFAULTS: ClassVar[Mapping[str, Mapping[str, Any]]] = MappingProxyType({
        # weight averaging of the last 3 recovery epochs (chosen on bench signs seed 1, confirmed on signs seed 2
        # and MNIST seed 3); it lowered FID on bench sentiment seeds 2-3 and NER seed 2, so images only
        "image": MappingProxyType({"recover_average": 3}),
        # a frozen-summary head: random labels only tilt its decision, so it forgets by re-initialisation and is
        # trained again like the rounds' heads (Adam 1e-3), 5 epochs at target; the adversaries cost it clean
        # accuracy for no FID (chosen on bench sentiment seed 2, confirmed on seed 3; docs/SEAM.md)
        # Copies with random insertions (8 per text) teach the new head that inserted text carries no sentiment
        # (chosen on bench sentiment seed 2, confirmed on seed 3; docs/SEAM.md)
        "sentiment": MappingProxyType({"forget_mode": "reset", "recover_optimizer": "adam", "recover_lr": 0.001,
                                       "recover_patience": 5, "adv_eps": 0.0, "insert_copies": 8}),
        # NER recovers in 3-6 epochs when forgetting was shallow, too few for the held phrase to unlearn the trigger;
        # going on until the target has been met 10 times (the authors' TrojAI setting) read 0.907 against 0.788 on
        # bench NER seed 8 (choosing, repair seed 0) and 0.953 against 0.925 on seed 9 (confirmation, repair seeds
        # 0-2); docs/SEAM.md
        "ner": MappingProxyType({"recover_patience": 10}),
    })

    disjoint: bool = False  # with the adversary guarding recovery, more recovery data keeps more clean accuracy
    adv_eps: float = 0.1
    recover_patience: int = 3
    # NER (other tasks ignore both): a soft phrase of 3 tokens (chosen on bench NER seed 1) that climbs towards
    # another entity type, not merely away from the true label, which B -> I confusions satisfy (chosen on bench
    # NER seeds 1-2; 5 tokens tied with 3 there; docs/SEAM.md)
    adv_tokens: int = 3
    adv_token_objective: str = "type"
    # NER: a real-token phrase searched on the original model is held in turn with the soft phrase when it flips at
    # least half of one entity type's clean words to another type; below it, the soft phrase alone. Four searches
    # (three from random tokens: they find word-piece triggers one search misses, `qu ##asa ##r`; NER seeds 1, 5, 6),
    # one per entity type, each judged on its type's words: a trigger's source type reads 0.99-1.00, a clean model's
    # best type 0.15-0.27 (chosen on bench NER seed 7, confirmed on seed 9; docs/SEAM.md). The all-type rate it
    # replaced read 0.2-0.4 against 0.13 for clean models and held phrases with less of the trigger in them
    adv_token_search: str = "probe"
    adv_probe_per_type: bool = True
    adv_probe_min_flip: float = 0.5
    adv_probe_restarts: int = 4
    adv_patch: float = 0.1  # images: a random-spot adversarial patch in turn with the additive change (chosen on
    # bench signs seed 1, confirmed on signs seed 2 and MNIST seed 3; docs/SEAM.md)
    stall_epochs: int = 30  # NER: escape the all-"O" state forgetting can leave (chosen on bench NER seed 2,
    # confirmed on seed 3; no image or sentiment recovery measured here was flat for more than 5 epochs)


@register_method("seam-adv", SeamAdvConfig)
def seam_adv(model: nn.Module, data: RepairData, cfg: SeamAdvConfig) -> tuple[nn.Module, dict]:
    """SEAM tuned per task: recovery that unlearns a universal adversarial change (images, NER); sentiment heads
    forget by re-initialisation. Clean data alone then cannot rebuild the backdoor."""
    return seam(model, data, cfg)
