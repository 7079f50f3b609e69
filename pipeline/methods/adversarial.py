"""Universal adversarial recovery: train on clean examples plus a shared worst-case input change.

A backdoored model has a shortcut: one input change that sends most inputs to the target class. With
only clean data we cannot see the trigger, but a universal change found by gradient ascent on the
clean examples tends to travel along that shortcut (the premise of Neural Cleanse and I-BAU).
Recovering on changed copies with their *true* labels teaches the model to ignore that direction, so
clean-data recovery does not rebuild the trigger -> target mapping.

The change covers the two trigger families TrojAI rounds use: an additive pattern ``delta`` (L-inf
<= eps; patches, polygons) and, for images, a per-channel colour transform ``x * (1 + gain) + bias``
(|gain|, |bias| <= colour; Instagram-style filters). By default each call climbs at once with its own
input-gradient pass. With ``free=True`` the change is a leaf of the training loss instead: the
trainer's one backward fills its gradient too, and the next call takes that step ("free" adversarial
training, Shafahi et al. 2019), which saves one backward pass per batch. Blind: only the clean repair
examples and their labels are used.
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.tasks.base import Split, TaskAdapter
from pipeline.training import label_loss


def signed_step(value: torch.Tensor, grad: torch.Tensor, step: float, bound: float) -> torch.Tensor:
    """One signed-gradient step (``step`` > 0 climbs, < 0 descends), kept within [-bound, bound]."""
    return (value + step * grad.sign()).clamp(-bound, bound).detach()


def on_image(inputs: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Images live in [0, 1]: a changed image is clipped back into that range."""
    return (inputs + delta).clamp(0.0, 1.0)


def image_batch(inputs) -> bool:
    """A float NCHW batch: what the image adversaries (patch, hidden-layer shift) can change."""
    return isinstance(inputs, torch.Tensor) and inputs.is_floating_point() and inputs.dim() == 4


class FreeSteps:
    """Free adversarial training: the last call's leaf, its gradient filled by the trainer's own backward, is climbed
    at the next call (``_climb(grad)``), so the adversary needs no backward pass of its own."""

    pending: torch.Tensor | None = None

    def _climb(self, grad: torch.Tensor | None) -> None:
        raise NotImplementedError

    def take_pending_step(self) -> None:
        if self.pending is not None:
            self._climb(self.pending.grad)
            self.pending = None


@torch.enable_grad()
def warm_up(adversary, student: nn.Module, task: TaskAdapter, split: Split, epochs: int, batch_size: int,
            device: torch.device, generator: torch.Generator) -> None:
    """Let ``adversary`` climb the loss of the model as it is now (weights untouched, eval mode), before repair.

    On the original model the backdoor is live, so the steepest universal change is most likely the
    trigger's; after forgetting it is dormant and the ascent finds other directions first.
    """
    was_training = student.training
    student.eval()
    try:
        for _ in range(epochs):
            for inputs, target in task.batches(split, split.labels, batch_size, device, generator, True):
                loss = adversary(inputs, None, target)  # an eager adversary has stepped already
                if getattr(adversary, "free", False) and loss is not None:
                    loss.backward()  # a free one steps from this gradient at its next call
    finally:
        student.zero_grad(set_to_none=True)  # the weights are not trained here
        student.train(was_training)


class UniversalAdversary:
    """Cross-entropy on the changed batch (true labels); the change, shared by all inputs, climbs it.

    Called as an extra loss of ``train_one_epoch``: ``(inputs, logits, target) -> loss | None``.
    """

    def __init__(self, student: nn.Module, task: TaskAdapter, eps: float, weight: float = 1.0, colour: float = 0.0,
                 steps_to_bound: float = 4.0, free: bool = False) -> None:
        self.student, self.task, self.weight, self.free = student, task, weight, free
        self.bounds = {"delta": eps, "gain": colour, "bias": colour}
        self.steps_to_bound = steps_to_bound
        self.params: dict[str, torch.Tensor] = {}
        self.pending: dict[str, torch.Tensor] = {}  # free mode: last call's leaves, their grads filled by backward

    def _step(self, grads: dict[str, torch.Tensor | None]) -> None:
        for name, grad in grads.items():
            if grad is not None and name in self.params:
                bound = self.bounds[name]
                self.params[name] = signed_step(self.params[name], grad, bound / self.steps_to_bound, bound)

    @property
    def delta(self) -> torch.Tensor | None:
        return self.params.get("delta")

    def _init(self, inputs: torch.Tensor) -> None:
        self.params = {"delta": torch.zeros_like(inputs[:1])}
        if inputs.dim() == 4 and self.bounds["gain"] > 0:  # images: one gain and bias per colour channel
            channel = torch.zeros(1, inputs.shape[1], 1, 1, device=inputs.device, dtype=inputs.dtype)
            self.params.update(gain=channel.clone(), bias=channel.clone())

    def apply(self, inputs: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        out = inputs
        if "gain" in params:
            out = out * (1 + params["gain"]) + params["bias"]
        return on_image(out, params["delta"]) if inputs.dim() == 4 else out + params["delta"]

    def __call__(self, inputs: torch.Tensor, logits: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor | None:
        if not (isinstance(inputs, torch.Tensor) and inputs.is_floating_point()):
            return None  # token ids (NER): no continuous input to change
        self._step({k: v.grad for k, v in self.pending.items()})
        self.pending = {}
        if self.delta is None or self.delta.shape[1:] != inputs.shape[1:]:
            self._init(inputs)
        live = {k: v.clone().requires_grad_(True) for k, v in self.params.items()}
        adv_logits = self.task.logits(self.student, self.apply(inputs, live))
        ce = label_loss(adv_logits, target)
        if self.free:
            self.pending = live
        else:
            self._step(dict(zip(live, torch.autograd.grad(ce, list(live.values()), retain_graph=True))))
        return self.weight * ce


class TargetedAdversary:
    """Per-class universal changes towards the classes the *original* model is easiest to push inputs into.

    An untargeted change often finds a natural attractor class instead of the trigger (measured: a
    Nashville-filter backdoor towards class 3, while the untargeted ascent sent every input to class 8).
    Scanning every class k for a small change that sends other classes' inputs to k is Neural Cleanse's
    premise: the backdoor target needs the smallest change. The ``keep`` most reachable classes keep a
    change each; recovery trains on them with true labels and keeps steering each towards its class.
    """

    def __init__(self, student: nn.Module, task: TaskAdapter, num_classes: int, eps: float, keep: int,
                 weight: float = 1.0, steps_to_bound: float = 4.0) -> None:
        self.student, self.task, self.num_classes, self.keep, self.weight = student, task, num_classes, keep, weight
        self.eps, self.step = eps, eps / steps_to_bound
        self.deltas: dict[int, torch.Tensor] = {}
        self.turn = 0

    def _toward(self, inputs: torch.Tensor, labels: torch.Tensor, cls: int,
                delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One signed step of ``delta`` towards class ``cls`` on the inputs not of that class; (delta, logits)."""
        d = delta.clone().requires_grad_(True)
        logits = self.task.logits(self.student, on_image(inputs, d))
        keep = labels != cls
        towards = nn.functional.cross_entropy(logits[keep], torch.full_like(labels[keep], cls)) if bool(keep.any()) \
            else logits.sum() * 0
        (grad,) = torch.autograd.grad(towards, d, retain_graph=True)
        return signed_step(delta, grad, -self.step, self.eps), logits

    @torch.enable_grad()
    def scan(self, split: Split, steps: int, batch_size: int, device: torch.device,
             generator: torch.Generator) -> dict[int, float]:
        """Find each class's change on the model as it is now (the original); keep the most reachable classes.

        Returns the share of other classes' inputs each class's change reaches.
        """
        model = self.student
        was_training = model.training
        model.eval()
        try:
            batches = list(self.task.batches(split, split.labels, batch_size, device, generator, False))
            found: dict[int, torch.Tensor] = {}
            reach: dict[int, float] = {}
            for cls in range(self.num_classes):
                delta = torch.zeros_like(batches[0][0][:1])
                for s in range(steps):
                    inputs, labels = batches[s % len(batches)]
                    delta, _ = self._toward(inputs, labels, cls, delta)
                hits = total = 0
                with torch.no_grad():
                    for inputs, labels in batches:
                        other = labels != cls
                        pred = self.task.logits(model, on_image(inputs, delta)).argmax(-1)
                        hits += int((pred[other] == cls).sum())
                        total += int(other.sum())
                found[cls], reach[cls] = delta, hits / max(total, 1)
        finally:
            model.train(was_training)
        kept = sorted(reach, key=reach.get, reverse=True)[: self.keep]
        self.deltas = {cls: found[cls] for cls in kept}
        return reach

    def __call__(self, inputs: torch.Tensor, logits: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor | None:
        if not self.deltas or not (isinstance(inputs, torch.Tensor) and inputs.dim() == 4):
            return None  # images only: the scan needs a continuous input of fixed shape
        classes = list(self.deltas)
        cls = classes[self.turn % len(classes)]  # one kept class per batch, in turn
        self.turn += 1
        self.deltas[cls], adv_logits = self._toward(inputs, target, cls, self.deltas[cls])
        return self.weight * nn.functional.cross_entropy(adv_logits, target, ignore_index=-100)


class SubspaceAdversary:
    """Embedding summaries (sentiment heads): one universal shift, kept out of the clean examples' top
    principal directions and inside an L2 ball of ``radius``.

    In a binary task the cheapest universal flip is the class direction itself, so an unconstrained
    adversary teaches the head to ignore sentiment (measured: 10-16 points of clean accuracy). On bench
    sentiment seed 2 that direction has 87-94% of its energy in the top 20 principal directions of the
    clean examples, a trigger's shift only 8-25%: without those directions the ascent is left with the
    ones a trigger uses. Blind: the directions come from the clean repair examples alone.
    """

    def __init__(self, student: nn.Module, task: TaskAdapter, clean_inputs: torch.Tensor, radius: float, avoid: int,
                 weight: float = 1.0, steps_to_bound: float = 4.0) -> None:
        self.student, self.task, self.radius, self.weight = student, task, radius, weight
        self.step = radius / steps_to_bound
        flat = clean_inputs.reshape(len(clean_inputs), -1).float()
        _, _, vt = torch.linalg.svd(flat - flat.mean(0), full_matrices=False)
        self.basis = vt[:avoid]  # rows: directions the shift may not use (on the clean inputs' device)
        self.delta = torch.zeros((1, *clean_inputs.shape[1:]), dtype=flat.dtype, device=clean_inputs.device)

    def _outside(self, v: torch.Tensor) -> torch.Tensor:
        flat = v.reshape(-1)
        return (flat - self.basis.T @ (self.basis @ flat)).reshape(v.shape)

    def __call__(self, inputs: torch.Tensor, logits: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
        live = self.delta.clone().requires_grad_(True)
        ce = label_loss(self.task.logits(self.student, inputs + live), target)
        (grad,) = torch.autograd.grad(ce, live, retain_graph=True)
        grad = self._outside(grad)
        moved = self._outside(live.detach() + self.step * grad / grad.norm().clamp_min(1e-12))
        self.delta = moved * (self.radius / moved.norm()).clamp(max=1.0)
        return self.weight * ce


class PatchAdversary(FreeSteps):
    """Images: one universal *patch* (a learned pattern, ``area`` of the image) pasted at a random spot of each input.

    Polygon triggers are opaque stamps on 8-12% of the image at random places; an L-inf change of 0.1
    cannot imitate a solid colour there, and the models it misses keep their polygon backdoor. A
    randomly placed patch whose pattern climbs the loss is the universal adversarial patch of Brown et
    al. (2017); recovery trains on the patched copies with true labels. Blind: clean repair examples only.
    """

    def __init__(self, student: nn.Module, task: TaskAdapter, area: float, weight: float, generator: torch.Generator,
                 steps_to_bound: float = 4.0, free: bool = False, classes: int = 0) -> None:
        self.student, self.task, self.area, self.weight, self.generator = student, task, area, weight, generator
        self.step, self.free = 1.0 / steps_to_bound, free
        # classes > 0: one pattern per true class, each pasted on (and climbed by) that class's images only,
        # so a trigger that works from one source class has a patch of its own to be found by
        self.classes = classes
        self.pattern: torch.Tensor | None = None
        self.pending: torch.Tensor | None = None  # free mode: last call's leaf, its grad filled by backward

    def _climb(self, grad: torch.Tensor | None) -> None:
        if grad is not None and self.pattern is not None and grad.shape == self.pattern.shape:
            self.pattern = (self.pattern + self.step * grad.sign()).clamp(0.0, 1.0).detach()

    def paste(self, inputs: torch.Tensor, pattern: torch.Tensor, which: torch.Tensor | None = None) -> torch.Tensor:
        """``inputs`` with ``pattern[which[b]]`` (default ``pattern[0]``) pasted at an independent random spot of each."""
        size = pattern.shape[-1]
        height, width = inputs.shape[-2:]
        ys = torch.randint(0, height - size + 1, (len(inputs),), generator=self.generator).tolist()
        xs = torch.randint(0, width - size + 1, (len(inputs),), generator=self.generator).tolist()
        rows = [0] * len(inputs) if which is None else which.tolist()
        out = inputs.clone()
        for b, (y, x) in enumerate(zip(ys, xs)):
            out[b, :, y:y + size, x:x + size] = pattern[rows[b]]
        return out

    def __call__(self, inputs: torch.Tensor, logits: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor | None:
        if not image_batch(inputs):
            return None
        self.take_pending_step()
        if self.pattern is None or self.pattern.shape[1] != inputs.shape[1]:
            side = max(1, min(int(round(self.area ** 0.5 * inputs.shape[-1])), min(inputs.shape[-2:])))
            count = max(self.classes, 1)
            self.pattern = torch.rand((count, inputs.shape[1], side, side), generator=self.generator).to(inputs)
        live = self.pattern.clone().requires_grad_(True)
        which = target.clamp(0, self.classes - 1) if self.classes > 0 else None
        ce = label_loss(self.task.logits(self.student, self.paste(inputs, live, which)), target)
        if self.free:
            self.pending = live
        else:
            self._climb(torch.autograd.grad(ce, live, retain_graph=True)[0])
        return self.weight * ce


class InTurn:
    """Several adversaries, one per batch in turn: each sees half the batches, the cost stays one extra pass."""

    def __init__(self, *adversaries) -> None:
        self.adversaries, self.turn = adversaries, 0
        self.free = any(getattr(a, "free", False) for a in adversaries)

    def __call__(self, inputs, logits, target):
        adversary = self.adversaries[self.turn % len(self.adversaries)]
        self.turn += 1
        return adversary(inputs, logits, target)


class Share:
    """An adversary that sees only the first ``fraction`` of each (shuffled) batch: its extra pass costs that much."""

    def __init__(self, adversary, fraction: float) -> None:
        self.adversary, self.fraction = adversary, fraction
        self.adversaries = getattr(adversary, "adversaries", (adversary,))
        self.free = getattr(adversary, "free", False)

    def __call__(self, inputs, logits, target):
        if not isinstance(inputs, torch.Tensor):
            return self.adversary(inputs, logits, target)
        keep = max(1, int(round(self.fraction * len(inputs))))
        return self.adversary(inputs[:keep], None if logits is None else logits[:keep], target[:keep])
