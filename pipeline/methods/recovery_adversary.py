"""Which recovery adversary a SEAM config asks for: image change and patch, NER soft phrase, or embedding shift.

Kept apart from the SEAM loop (``seam.py``): building one reads only the config, the clean repair data
and, for a scan or a warm-up, the original model before forgetting.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from pipeline.methods.adversarial import (InTurn, PatchAdversary, Share, SubspaceAdversary, TargetedAdversary,
                                         UniversalAdversary, warm_up)
from pipeline.methods.common import generator, timed
from pipeline.methods.latent_adversary import LatentAdversary, layer_at_depth
from pipeline.methods.token_adversary import PhraseSearch, TokenAdversary, entity_type_count
from pipeline.tasks.base import RepairData

if TYPE_CHECKING:
    from pipeline.methods.seam import SeamConfig


def make_adversary(model: nn.Module, data: RepairData, cfg: SeamConfig, trace: dict):
    """The recovery adversary the config asks for (None when off); a scan or warm-up reads the original model now."""
    if cfg.adv_eps <= 0 and cfg.adv_radius <= 0:
        return None
    inputs = data.clean.inputs
    if cfg.adv_radius > 0 and isinstance(inputs, torch.Tensor) and inputs.is_floating_point() and inputs.dim() == 3:
        adversary = SubspaceAdversary(model, data.task, inputs.to(data.device), cfg.adv_radius, cfg.adv_avoid_pcs,
                                      cfg.adv_weight)
    elif cfg.adv_eps <= 0:  # adv_radius is for embedding summaries only: nothing to build for other inputs
        return None
    elif isinstance(inputs, dict):  # token ids (NER): a soft or a real phrase inserted into sentences
        adversary = token_adversary(model, data, cfg, trace)
        first = getattr(adversary, "adversaries", (adversary,))[0]
        trace["adv_applies"] = first.applies
        trace["adv_objective"] = first.objective
        if not first.applies:
            return None
    elif cfg.adv_targets > 0:
        targeted = TargetedAdversary(model, data.task, data.num_classes, cfg.adv_eps, cfg.adv_targets, cfg.adv_weight)
        with timed(trace, "seconds_adv_scan"):
            reach = targeted.scan(data.clean, cfg.adv_scan_steps, cfg.batch_size, data.device, generator(data.seed, 15))
        trace["adv_reach"] = {str(k): round(v, 3) for k, v in reach.items()}
        trace["adv_kept_classes"] = list(targeted.deltas)
        return targeted
    else:
        # free: the change steps from the recovery backward's own gradient (the same sign step as a separate
        # input-gradient pass would take, so identical repairs, one backward pass fewer per batch)
        turns = [UniversalAdversary(model, data.task, cfg.adv_eps, cfg.adv_weight, cfg.adv_colour, free=True)]
        images = isinstance(inputs, torch.Tensor) and inputs.dim() == 4
        if cfg.adv_patch > 0 and images:
            turns.append(PatchAdversary(model, data.task, cfg.adv_patch, cfg.adv_weight, generator(data.seed, 18),
                                        free=True, classes=data.num_classes if cfg.adv_patch_per_class else 0))
        layer = layer_at_depth(model, cfg.adv_latent_depth) if cfg.adv_latent > 0 and images else None
        if layer is not None:
            turns.append(LatentAdversary(model, data.task, layer, cfg.adv_latent, cfg.adv_weight, free=True))
        adversary = turns[0] if len(turns) == 1 else InTurn(*turns)
        if 0 < cfg.adv_fraction < 1:
            adversary = Share(adversary, cfg.adv_fraction)
    search = phrase_search(adversary) if cfg.adv_token_search != "probe" else None  # a probe's phrase is settled
    if cfg.adv_warmup_epochs > 0:
        with timed(trace, "seconds_adv_warmup"):
            warm_up(adversary, model, data.task, data.clean, cfg.adv_warmup_epochs, cfg.batch_size, data.device,
                    generator(data.seed, 14))
        if search is not None:  # what the warm-up found, and how far it pushes the original model on clean data
            record_phrase(search, search.flip_rate(data.task, data.clean, data.device), data.task, trace)
    if search is not None:
        search.searching = cfg.adv_search_in_recovery
    return adversary


def release(adversary) -> None:
    """Detach whatever an adversary hooked into the model (the latent shift), so the repaired model is plain."""
    for a in getattr(adversary, "adversaries", (adversary,)):
        close = getattr(a, "close", None)
        if close is not None:
            close()


def token_adversary(model: nn.Module, data: RepairData, cfg: SeamConfig, trace: dict):
    """NER: the soft phrase, the searched phrase of real tokens, both in turn, or the soft phrase with a probed
    real-token phrase in turn when the probe stands out (``adv_token_search``)."""
    soft = discrete = None
    if cfg.adv_token_search in ("soft", "both", "probe"):
        soft = TokenAdversary(model, cfg.adv_eps, cfg.adv_weight, generator(data.seed, 16), cfg.adv_tokens,
                              objective=cfg.adv_token_objective, num_classes=data.num_classes)
    if cfg.adv_token_search in ("discrete", "both", "probe"):
        allowed = getattr(data.task, "insertable_ids", lambda: None)()
        discrete = PhraseSearch(model, cfg.adv_weight, generator(data.seed, 20), cfg.adv_tokens,
                                cfg.adv_token_objective, data.num_classes, allowed, cfg.adv_search_candidates,
                                cfg.adv_phrase_pieces, cfg.adv_phrase_shuffle)
    if cfg.adv_token_search == "probe" and discrete.applies:
        discrete = probe(discrete, model, data, cfg, trace)
    if soft is not None and discrete is not None:
        return InTurn(soft, discrete)
    return soft or discrete


def probe(search: PhraseSearch, model: nn.Module, data: RepairData, cfg: SeamConfig, trace: dict) -> PhraseSearch | None:
    """Search the phrase alone on the original model (where a backdoor is live) and hold it for recovery only if
    it flips at least ``adv_probe_min_flip`` of the clean entity words: a found trigger does (0.15-0.44 on bench
    NER seeds 1-2), a clean model's best phrase does not (0.04-0.12). With ``adv_probe_restarts`` > 1, further
    searches start from random tokens and the phrase that flips most is kept. With ``adv_probe_per_type`` each search
    climbs and is judged on one entity type's words (a trigger's source type: 0.99-1.00 on bench NER seed 7, a clean
    model's best type 0.15-0.27). Otherwise None: the soft phrase alone, exactly as ``soft`` (own generators; the
    weights are untouched)."""
    best, best_flip, flips = search, float("nan"), []
    types = entity_type_count(data.num_classes) if cfg.adv_probe_per_type and search.other_type is not None else 0
    with timed(trace, "seconds_adv_probe"):
        for restart in range(max(cfg.adv_probe_restarts, 1)):
            if restart:
                search = search.restarted(generator(data.seed, 60 + restart))
            if types:  # search r climbs and is judged on entity type r mod K only: a trigger flips one source type
                search.source_type = restart % types
            warm_up(search, model, data.task, data.clean, cfg.adv_probe_epochs, cfg.batch_size, data.device,
                    generator(data.seed, 21 if restart == 0 else 80 + restart))
            flip = search.flip_rate(data.task, data.clean, data.device)  # NaN without round 7's label layout
            if math.isnan(flip):
                break
            flips.append(round(flip, 4))
            if not flip <= best_flip:  # the first, or a higher rate
                best, best_flip = search, flip
    record_phrase(best, best_flip, data.task, trace)
    if types:
        trace["adv_phrase_type_warmup"] = best.source_type
    if len(flips) > 1:
        trace["adv_phrase_flip_restarts"] = flips
    best.searching = False
    trace["adv_phrase_held"] = best_flip >= cfg.adv_probe_min_flip
    return best if trace["adv_phrase_held"] else None


def record_phrase(search: PhraseSearch, flip: float, task, trace: dict) -> None:
    """Put what the search found before repair, and its flip rate on the clean repair data, in the trace."""
    trace.update({f"{k}_warmup": v for k, v in adversary_outcome(search, task).items()})
    trace["adv_phrase_flip_warmup"] = None if math.isnan(flip) else round(flip, 4)


def phrase_search(adversary) -> PhraseSearch | None:
    """The searched real-token phrase among the recovery adversaries (applying to this model), if any."""
    return next((a for a in getattr(adversary, "adversaries", (adversary,))
                 if isinstance(a, PhraseSearch) and a.applies), None)


def adversary_outcome(adversary, task) -> dict:
    """What a searched phrase ended as (its tokens, how many swaps it made), for the row's trace; {} otherwise."""
    search = phrase_search(adversary)
    if search is None:
        return {}
    decode = getattr(task, "decode", None)
    ids = search.ids.tolist()
    return {"adv_phrase_ids": ids, "adv_phrase": decode(ids) if decode else None, "adv_phrase_swaps": search.swaps}
