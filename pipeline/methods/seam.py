"""SEAM (Zhu, Tang et al., S&P 2023), Algorithm 1: forget on random wrong labels, then recover.

Stopping is blind: forgetting ends when accuracy on the forget set (true labels) drops below
min(2/C, 0.6); recovery ends when accuracy on the recovery set exceeds 0.97 x the original model's
accuracy on it. ASR never enters any decision (the phase hook only logs it).
"""
from __future__ import annotations

import copy
import dataclasses
import random
from collections import deque
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from pipeline.methods.clp import clp_prune
from pipeline.methods.recovery_adversary import adversary_outcome, make_adversary, release
from pipeline.methods.token_adversary import TOKEN_OBJECTIVES, TOKEN_SEARCHES
from pipeline.methods.common import generator, optim, timed
from pipeline.registry import register_method
from pipeline.tasks.base import RepairData
from pipeline.training import (accuracy, balanced_split, make_optimizer, random_labels, random_wrong_labels,
                               recalibrate_bn, train_one_epoch)


FORGET_LABELS = {"wrong": random_wrong_labels, "uniform": random_labels}


@dataclass(frozen=True)
class SeamConfig:
    """Defaults: SGD 0.01 momentum 0.9, batch 32, fresh optimiser per phase (SEAM-CALIBRATION.md)."""

    forget_labels: str = "wrong"  # "wrong": uniform over the C-1 wrong classes (Algorithm 1); "uniform": over all C
    # (as some public ports do). With C = 2 the 0.6 threshold can be met by one flipped example while test ACC
    # and ASR have not moved (tiny sentiment round); "uniform" forgot more there (docs/SEAM.md)
    forget_mode: str = "labels"  # "labels": train on random labels (Algorithm 1); "reset": re-initialise every
    # trainable parameter, forgetting's limit (sentiment heads: their input is a frozen summary, so random labels
    # only tilt the decision and leave the trigger's mapping; docs/SEAM.md)
    forget_per_class: int = 10  # |D_for| per class; the rest of the clean examples recover
    disjoint: bool = True  # Algorithm 1: D_for and D_rec disjoint; False = recover on all clean examples
    optimizer: str = "sgd"
    recover_optimizer: str = ""  # "" = same as ``optimizer`` (Adam throughout recovery: worse on NER, docs/SEAM.md)
    forget_lr: float = 0.01
    recover_lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 32
    max_forget_epochs: int = 30
    max_recover_epochs: int = 200
    recover_ratio: float = 0.97
    # Epochs that must meet a phase's rule before it stops (Algorithm 1: 1). The authors' TrojAI scripts
    # use 10 for both: forgetting goes on ~10 epochs under the threshold, recovery holds its target.
    forget_patience: int = 1
    recover_patience: int = 1
    # >0: when recovery accuracy has not changed for this many epochs (NER: forgetting can leave every token
    # "O", a state SGD sits in for hundreds of epochs), swap to Adam at ``stall_lr`` once. Blind: reads only
    # the recovery-set accuracy
    stall_epochs: int = 0
    stall_lr: float = 1e-4
    # >0: clip the gradient's global norm during recovery. NER: the first recovery epoch's large gradients (the
    # forgotten model is confidently wrong) collapse every token's representation onto one vector
    recover_clip_norm: float = 0.0
    # >1: end recovery with the mean of its last N epochs' weights (stochastic weight averaging; BatchNorm
    # re-estimated), kept only if it still meets the recovery target
    recover_average: int = 0
    # >0: once recovery has met its target, an epoch more than this below the target ends recovery with the weights
    # of the last epoch that met it (NER under recover_patience=10 can collapse to all-"O" after meeting it, then
    # re-learns from scratch on 200 sentences). Blind: reads only the recovery-set accuracy
    recover_collapse_drop: float = 0.0
    # >0: recovery steps from the gradient at the worst weights within this L2 distance (sharpness-aware
    # minimisation; FT-SAM, Zhu et al. 2023); a second forward and backward per batch
    recover_sam: float = 0.0
    bn_mode: str = "train"  # BatchNorm: "train" updates statistics, "eval" freezes them, "recalibrate"
    # re-estimates them on all clean repair data after every epoch (stable stopping reads)
    augment: bool = True  # small random shifts (images); label-preserving
    # Beyond the textbook, each off by default and measured on its own (docs/SEAM.md, ablation):
    # distil the original model's clean-input outputs during recovery,
    distill_weight: float = 0.0
    distill_temperature: float = 4.0
    distill_mixup: float = 0.0  # >0: distil on mixup blends of the batch (Beta(a, a)), new inputs for free
    freeze_fraction: float = 0.0  # freeze this share of parameters (by count, input side first) in both phases
    reset_head: bool = False  # re-initialise the last linear layer after forgetting
    adv_eps: float = 0.0  # >0: recovery also trains on a universal adversarial perturbation (L-inf <= eps) of
    # its batch with true labels (pipeline/methods/adversarial.py)
    adv_weight: float = 1.0
    adv_targets: int = 0  # >0 (images): scan every class on the original model for a universal change towards it
    # and keep this many most reachable classes (TargetedAdversary) instead of one untargeted change
    adv_scan_steps: int = 10
    adv_warmup_epochs: int = 0  # passes of the adversary's ascent on the *original* model before forgetting
    adv_colour: float = 0.0  # >0 (images): the adversary also applies a per-channel gain and bias within +-adv_colour
    adv_radius: float = 0.0  # >0 (embedding summaries: sentiment heads): the adversary is one shift in an L2 ball
    # of this radius, outside the clean examples' top ``adv_avoid_pcs`` principal directions (SubspaceAdversary)
    adv_avoid_pcs: int = 20
    adv_patch: float = 0.0  # >0 (images): a universal patch of this share of the image, pasted at random spots,
    # takes every other batch from the additive change (PatchAdversary: polygon stamps)
    adv_fraction: float = 1.0  # images: the adversaries change only this share of each batch (cost: that much)
    # >0 (images): one more adversary in turn, a universal shift of the BatchNorm output ``adv_latent_depth`` of the
    # way through the model, within +-this many of each channel's clean standard deviations (LatentAdversary)
    adv_latent: float = 0.0
    adv_latent_depth: float = 0.25
    adv_patch_per_class: bool = False  # images: one patch per true class, pasted on that class's images only
    # (triggers that work from one source class)
    adv_tokens: int = 1  # token models (NER): soft tokens the adversary inserts side by side (phrase triggers)
    adv_token_objective: str = "entity"  # NER: the phrase climbs away from entity words' labels ("entity") or
    # towards another entity type ("type": what round-7 triggers do)
    adv_token_search: str = "soft"  # NER: "soft" learned embeddings, "discrete" real vocabulary tokens swapped by
    # HotFlip (PhraseSearch: universal adversarial triggers), "both" in turn, one per batch, "probe" (seam-adv's): the
    # soft phrase, plus in turn a real-token phrase searched on the original model if it flips enough (below)
    adv_search_candidates: int = 4  # "discrete": tokens measured per swap (the best first-order gains)
    adv_search_in_recovery: bool = True  # "discrete": keep searching during recovery; False holds the phrase the
    # warm-up found on the original model (where a backdoor is live) for all of recovery
    adv_phrase_pieces: bool = False  # "discrete"/"probe": once held, each batch inserts a random non-empty subset of
    # the phrase's tokens in random order (the trigger may be any of its pieces), not the whole phrase
    adv_phrase_shuffle: bool = False  # "discrete"/"probe": once held, each batch inserts all of the phrase's tokens in
    # a random order (a phrase may hold a trigger's word pieces out of order); ``adv_phrase_pieces`` wins if both are on
    adv_probe_epochs: int = 10  # "probe": passes of the real-token search alone on the original model
    adv_probe_min_flip: float = 0.0  # "probe": hold the found phrase (in turn with the soft one) only when it labels
    # at least this share of the clean repair sentences' entity words as another type; else the soft phrase alone
    adv_probe_restarts: int = 1  # "probe": searches run, the first from the token nearest the vocabulary's mean,
    # the others from random real tokens; the one whose phrase flips most is kept
    adv_probe_per_type: bool = False  # "probe": search r climbs and is judged on entity type r mod K's words only (a
    # trigger flips one source type), so ``adv_probe_min_flip`` then applies to that type's flip rate
    insert_copies: int = 0  # text summaries (sentiment): add this many copies of every clean text with 1-3 random
    # insertions (character, vocabulary word or run of words) and its own label (pipeline/tasks/text_insertions.py)
    clp_u: float = 0.0  # >0: data-free channel-Lipschitz pruning (CLP, threshold mean + u x std) before forgetting

    def __post_init__(self) -> None:
        if self.forget_labels not in FORGET_LABELS:
            raise ValueError(f"forget_labels must be one of {sorted(FORGET_LABELS)}, not {self.forget_labels!r}")
        if self.forget_mode not in FORGET_MODES:
            raise ValueError(f"forget_mode must be one of {sorted(FORGET_MODES)}, not {self.forget_mode!r}")
        if self.insert_copies < 0:
            raise ValueError(f"insert_copies must be >= 0, not {self.insert_copies!r}")
        if self.adv_token_search not in TOKEN_SEARCHES:
            raise ValueError(f"adv_token_search must be one of {TOKEN_SEARCHES}, not {self.adv_token_search!r}")
        if self.adv_token_objective not in TOKEN_OBJECTIVES:
            raise ValueError(f"adv_token_objective must be one of {TOKEN_OBJECTIVES}, not {self.adv_token_objective!r}")


def forget_threshold(num_classes: int) -> float:
    """Forgetting is done once forget-set accuracy is below min(2/C, 0.6)."""
    return min(2.0 / num_classes, 0.6)


def recover_target(original_accuracy: float, ratio: float = 0.97) -> float:
    """Recovery is done once recovery-set accuracy exceeds ratio x the original accuracy on it."""
    return ratio * original_accuracy


def train_until(model: nn.Module, data: RepairData, split, labels_for_epoch, rule, patience: int, max_epochs: int,
                opt: torch.optim.Optimizer, g_batches: torch.Generator, cfg: SeamConfig, extra=None,
                stall: tuple[int, Callable[[], torch.optim.Optimizer]] | None = None,
                clip_norm: float = 0.0, on_epoch: Callable[[], None] | None = None,
                collapsed: Callable[[float], bool] | None = None,
                sam_rho: float = 0.0) -> tuple[list, bool, int | None, int | None]:
    """Train epoch by epoch until ``rule(accuracy on split)`` has held ``patience`` times (or the cap).

    Returns the per-epoch accuracies, whether the rule ever held, the epoch after which ``stall``'s
    optimiser replaced ``opt`` (None if never): ``stall = (epochs, make_optimizer)`` swaps once the
    accuracy has been identical for that many epochs, and the epoch at which ``collapsed(accuracy)`` ended
    training (None if never): once the rule has held, such an epoch restores the last weights it held for.
    The accuracy is against the true labels, whatever ``labels_for_epoch()`` trains towards.
    """
    history: list[float] = []
    met = 0
    swapped: int | None = None
    kept: dict | None = None
    for epoch in range(max_epochs):
        train_one_epoch(model, data.task, split, labels_for_epoch(), opt, cfg.batch_size, data.device, g_batches,
                        cfg.augment, cfg.bn_mode, extra_loss=extra, bn_split=data.clean, clip_norm=clip_norm,
                        sam_rho=sam_rho)
        acc = accuracy(model, data.task, split, data.device)
        history.append(round(acc, 4))
        if on_epoch is not None:
            on_epoch()
        held = bool(rule(acc))
        met += held
        if collapsed is not None:
            if held:
                kept = copy.deepcopy(model.state_dict())
            elif kept is not None and collapsed(acc):
                model.load_state_dict(kept)
                return history, met > 0, swapped, epoch + 1
        if met >= patience:
            break
        if stall and swapped is None and is_flat(history, stall[0]):
            opt, swapped = stall[1](), epoch + 1
    return history, met > 0, swapped, None


def is_flat(history: list[float], epochs: int) -> bool:
    """The last ``epochs`` accuracies are identical: the model's predictions have stopped moving."""
    return len(history) >= epochs and len(set(history[-epochs:])) == 1


def forget_on_labels(model: nn.Module, data: RepairData, split, cfg: SeamConfig, trace: dict) -> None:
    """Algorithm 1: train on random labels (redrawn every epoch) until forget-set accuracy is below the threshold."""
    threshold = forget_threshold(data.num_classes)
    opt = make_optimizer(model.parameters(), optim(cfg.optimizer, cfg.forget_lr, cfg.momentum, cfg.weight_decay))
    g_labels = generator(data.seed, 11)
    draw = FORGET_LABELS[cfg.forget_labels]  # redrawn every epoch
    history, reached, _, _ = train_until(model, data, split, lambda: draw(split.labels, data.num_classes, g_labels),
                                      lambda acc: acc < threshold, cfg.forget_patience, cfg.max_forget_epochs, opt,
                                      generator(data.seed, 12), cfg)
    trace.update(forget_threshold=threshold, forget_acc=history, epochs_forget=len(history), forget_reached=reached)


def forget_by_reset(model: nn.Module, data: RepairData, split, cfg: SeamConfig, trace: dict) -> None:
    """Forgetting's limit: every trainable parameter re-initialised (seeded); no epochs."""
    threshold = forget_threshold(data.num_classes)
    reset_parameters(model, generator(data.seed, 19))
    acc = accuracy(model, data.task, split, data.device)
    trace.update(forget_threshold=threshold, forget_acc=[round(acc, 4)], epochs_forget=0, forget_reached=acc < threshold)


FORGET_MODES = {"labels": forget_on_labels, "reset": forget_by_reset}


def forget(model: nn.Module, data: RepairData, split, cfg: SeamConfig, trace: dict) -> None:
    trace["forget_mode"] = cfg.forget_mode
    FORGET_MODES[cfg.forget_mode](model, data, split, cfg, trace)


def distillation_loss(student: nn.Module, teacher: nn.Module | None, task, cfg: SeamConfig):
    """KL(student || original) at temperature T on the recovery batch, or None when switched off."""
    if teacher is None or cfg.distill_weight <= 0:
        return None
    t = cfg.distill_temperature

    mix_gen = torch.Generator().manual_seed(17)
    mix_weights = random.Random(17)  # Beta draws of its own: the global RNG would make repairs differ run to run

    def loss(inputs, logits: torch.Tensor, _target: torch.Tensor) -> torch.Tensor:
        if cfg.distill_mixup > 0 and isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
            lam = mix_weights.betavariate(cfg.distill_mixup, cfg.distill_mixup)
            perm = torch.randperm(inputs.shape[0], generator=mix_gen).to(inputs.device)
            inputs = lam * inputs + (1 - lam) * inputs[perm]
            logits = task.logits(student, inputs)
        with torch.no_grad():
            target = task.logits(teacher, inputs)
        flat, ref = logits.reshape(-1, logits.shape[-1]), target.reshape(-1, target.shape[-1])
        kl = nn.functional.kl_div(nn.functional.log_softmax(flat / t, dim=-1), nn.functional.log_softmax(ref / t, dim=-1),
                                  reduction="batchmean", log_target=True)
        return cfg.distill_weight * kl * t * t

    return loss


def combined(*terms):
    """One extra-loss callable summing the switched-on terms (None when none is on)."""
    active = [t for t in terms if t is not None]
    if not active:
        return None

    def loss(inputs, logits, target):
        parts = [p for p in (t(inputs, logits, target) for t in active) if p is not None]
        return sum(parts) if parts else None

    return loss


def recover(model: nn.Module, data: RepairData, split, target: float, cfg: SeamConfig, trace: dict,
            teacher: nn.Module | None = None, adversary=None) -> None:
    extra = combined(distillation_loss(model, teacher, data.task, cfg), adversary)
    name = cfg.recover_optimizer or cfg.optimizer
    opt = make_optimizer(model.parameters(), optim(name, cfg.recover_lr, cfg.momentum, cfg.weight_decay))
    stall = None
    if cfg.stall_epochs > 0:
        adam = optim("adam", cfg.stall_lr, 0.0, cfg.weight_decay)
        stall = (cfg.stall_epochs, lambda: make_optimizer(model.parameters(), adam))
    snapshots: deque = deque(maxlen=max(cfg.recover_average, 1))
    collapsed = (lambda acc: acc < target - cfg.recover_collapse_drop) if cfg.recover_collapse_drop > 0 else None
    history, reached, swapped, collapse_epoch = train_until(
        model, data, split, lambda: split.labels, lambda acc: acc > target, cfg.recover_patience,
        cfg.max_recover_epochs, opt, generator(data.seed, 13), cfg, extra, stall, cfg.recover_clip_norm,
        (lambda: snapshots.append(copy.deepcopy(model.state_dict()))) if cfg.recover_average > 1 else None,
        collapsed, cfg.recover_sam)
    trace.update(recover_target=target, recover_acc=history, epochs_recover=len(history), recover_reached=reached,
                 recover_stall_swap_epoch=swapped, recover_collapse_epoch=collapse_epoch)
    if len(snapshots) > 1 and collapse_epoch is None:
        trace["recover_average_acc"], trace["recover_average_kept"] = average_weights(model, data, split, target,
                                                                                      list(snapshots))


def average_weights(model: nn.Module, data: RepairData, split, target: float, states: list[dict]) -> tuple[float, bool]:
    """Load the mean of ``states`` (floating tensors; the rest from the last), BatchNorm re-estimated on the clean
    repair data; kept only if it still meets the recovery target, else the last state comes back. Blind."""
    last = states[-1]
    mean = {k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v for k, v in last.items()}
    model.load_state_dict(mean)
    recalibrate_bn(model, data.task, data.clean, data.device)
    acc = accuracy(model, data.task, split, data.device)
    if not acc > target:
        model.load_state_dict(last)
    return round(acc, 4), acc > target


def freeze_input_side(model: nn.Module, fraction: float) -> int:
    """Freeze the first ``fraction`` of parameters (registration order, counted by elements); returns how many."""
    params = list(model.parameters())
    budget = fraction * sum(p.numel() for p in params)
    frozen = seen = 0
    for p in params:
        if seen < budget:
            p.requires_grad_(False)
            frozen += p.numel()
        seen += p.numel()
    return frozen


def reset_parameters(model: nn.Module, gen: torch.Generator) -> None:
    """Re-initialise every module with trainable parameters (its own ``reset_parameters``), seeded by ``gen``."""
    with torch.random.fork_rng():  # the global RNG (dropout draws) is left as it was
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
        for module in model.modules():
            own = list(module.parameters(recurse=False))
            if own and any(p.requires_grad for p in own) and hasattr(module, "reset_parameters"):
                module.reset_parameters()


def reset_last_linear(model: nn.Module) -> None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears:
        linears[-1].reset_parameters()


def with_insertion_copies(data: RepairData, copies: int) -> tuple[RepairData, int]:
    """The repair data with text copies carrying random insertions, where the task has texts (sentiment); both
    phases then draw from originals and copies alike. Returns how many copies were added."""
    add = getattr(data.task, "with_insertions", None)
    if copies <= 0 or add is None:
        return data, 0
    clean = add(data.clean, copies, data.seed)
    return dataclasses.replace(data, clean=clean), len(clean) - len(data.clean)


@register_method("seam", SeamConfig)
def seam(model: nn.Module, data: RepairData, cfg: SeamConfig) -> tuple[nn.Module, dict]:
    """SEAM: forget on random wrong labels, recover on true labels, both stopped blindly."""
    data, added = with_insertion_copies(data, cfg.insert_copies)
    labels = data.clean.classes
    forget_idx, recover_idx = balanced_split(labels, cfg.forget_per_class, generator(data.seed, 10), cfg.disjoint)
    d_for, d_rec = data.clean.subset(forget_idx), data.clean.subset(recover_idx)
    trace: dict = {"n_forget": len(d_for), "n_recover": len(d_rec), "n_insertion_copies": added}
    original = accuracy(model, data.task, d_rec, data.device)
    trace["recover_set_acc_before"] = original
    teacher = copy.deepcopy(model).eval() if cfg.distill_weight > 0 else None
    trace["frozen_parameters"] = freeze_input_side(model, cfg.freeze_fraction)
    if cfg.clp_u > 0:
        trace["pruned_channels"] = clp_prune(model, cfg.clp_u)
    adversary = make_adversary(model, data, cfg, trace)  # before forgetting: a scan or warm-up reads the original
    trace["adversary"] = "+".join(type(a).__name__ for a in getattr(adversary, "adversaries", (adversary,))) \
        if adversary is not None else None
    with timed(trace, "seconds_forget"):
        forget(model, data, d_for, cfg, trace)
    if cfg.reset_head:
        reset_last_linear(model)
    data.on_phase_end("forget", model)
    with timed(trace, "seconds_recover"):
        try:
            recover(model, data, d_rec, recover_target(original, cfg.recover_ratio), cfg, trace, teacher, adversary)
        finally:
            release(adversary)
    trace.update(adversary_outcome(adversary, data.task))
    for p in model.parameters():
        p.requires_grad_(True)
    data.on_phase_end("recover", model)
    return model, trace
