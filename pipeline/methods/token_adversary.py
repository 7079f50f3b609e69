"""Adversarial recovery for token models (round 7 NER): a learned soft token inserted into clean sentences.

Text triggers are inserted words or phrases, so the image adversary's additive change has no
counterpart on token ids. The nearest continuous stand-in is an extra input *embedding* ``v``,
inserted at a random position of every clean sentence (after [CLS], before [SEP]) and climbed by
gradient ascent to mislabel the sentence's entity words. Recovery then also trains on the sentences
with ``v`` inserted and their true labels, so clean-data recovery does not rebuild an
"inserted token -> flip entity type" shortcut. ``v`` stays inside the box the real vocabulary's
embeddings span and no longer than its longest token, so it is something a word could be. Blind:
only clean repair examples are used.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
from torch import nn

from pipeline.training import IGNORE


def embedding_path(model: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module] | None:
    """(transformer, dropout-or-identity, classifier) of a round-7 style ``NerLinearModel``; None otherwise."""
    transformer, classifier = getattr(model, "transformer", None), getattr(model, "classifier", None)
    if transformer is None or classifier is None or not hasattr(transformer, "get_input_embeddings"):
        return None
    return transformer, getattr(model, "dropout", nn.Identity()), classifier


def insert_at(values: torch.Tensor, positions: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """``values`` [B, T, ...] with ``fill`` inserted before index ``positions[b]`` of each row: [B, T + 1, ...]."""
    batch, length = values.shape[:2]
    j = torch.arange(length + 1, device=values.device).expand(batch, -1)
    p = positions.unsqueeze(1)
    src = torch.where(j > p, j - 1, j).clamp(max=length - 1)
    index = src.view(batch, length + 1, *([1] * (values.dim() - 2))).expand(-1, -1, *values.shape[2:])
    out = values.gather(1, index)
    at = (j == p).view(batch, length + 1, *([1] * (values.dim() - 2)))
    return torch.where(at, fill.to(values.dtype), out)


def insert_phrase(values: torch.Tensor, positions: torch.Tensor, fills) -> torch.Tensor:
    """``values`` with the ``fills`` inserted side by side, the first before index ``positions[b]``."""
    for i, fill in enumerate(fills):
        values = insert_at(values, positions + i, fill)
    return values


class InsertedPhrase:
    """What the soft and the searched phrase share: where a phrase goes, the logits with it, what it climbs.

    Called as an extra loss of ``train_one_epoch``: ``(inputs, logits, target) -> loss | None``.
    """

    def __init__(self, student: nn.Module, weight: float, generator: torch.Generator, objective: str = "entity",
                 num_classes: int = 0) -> None:
        if objective not in TOKEN_OBJECTIVES:
            raise ValueError(f"token adversary objective must be one of {TOKEN_OBJECTIVES}, not {objective!r}")
        self.student, self.weight, self.generator = student, weight, generator
        # "type": climb towards any label of *another* entity type (round 7's BIO layout: O = 0, then B/I pairs),
        # which is what a round-7 trigger does; "entity": away from the true label (B -> I counts too)
        self.other_type = other_type_mask(num_classes) if objective == "type" else None
        self.objective = "type" if self.other_type is not None else "entity"  # what runs (the trace records it)
        self.source_type: int | None = None  # set: climb and judge on this entity type's words only (0 = first B/I pair)
        self.path = embedding_path(student)
        if self.path is not None and self.other_type is not None:
            self.other_type = self.other_type.to(self.table().device)  # once, not per batch

    def table(self) -> torch.Tensor:
        """The model's input embeddings as they are now [V, H]."""
        return self.path[0].get_input_embeddings().weight.detach()

    @property
    def applies(self) -> bool:
        return self.path is not None

    def __call__(self, inputs, logits: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor | None:
        """The training loss on the batch with the phrase inserted (true labels); the phrase then climbs."""
        if not self.applies or not isinstance(inputs, dict):
            return None
        positions = self.positions(inputs, target.device)
        live = self.inserted().clone().requires_grad_(True)
        labels = insert_phrase(target, positions, [torch.tensor(IGNORE, device=target.device)] * len(live))
        adv_logits, _ = self.logits(inputs, live, positions)
        flat_logits, flat = adv_logits.reshape(-1, adv_logits.shape[-1]), labels.reshape(-1)
        ce = nn.functional.cross_entropy(flat_logits, flat, ignore_index=IGNORE)
        self.climb(live, self.ascent(flat_logits, flat, ce), inputs, positions, flat)
        return self.weight * ce

    def inserted(self) -> torch.Tensor:
        """The embeddings a training batch gets inserted [tokens, H]: the phrase itself unless a subclass varies it."""
        return self.vector

    def climb(self, live: torch.Tensor, ascent: torch.Tensor, inputs: dict, positions: torch.Tensor,
              labels: torch.Tensor) -> None:
        """Move the phrase up ``ascent`` (the objective at ``live``, its embeddings on this batch)."""
        raise NotImplementedError

    @torch.no_grad()
    def flip_rate(self, task, split, device: torch.device, seed: int = 0) -> float:
        """Share of ``split``'s entity words labelled as another entity type with the phrase inserted at a random
        word position (eval mode). A real-token phrase stays near 0.1 on clean models and reaches 0.2-0.43 where
        it holds a found trigger (bench NER, docs/SEAM.md): a blind sign that the search found a backdoor."""
        if not self.applies or self.other_type is None:
            return float("nan")
        gen, vector = torch.Generator().manual_seed(seed), self.vector
        flipped = total = 0
        with self.evaluating():
            for inputs, target in task.batches(split, split.labels, 64, device, None, False):
                positions = self.positions(inputs, device, gen)
                labels = insert_phrase(target, positions, [torch.tensor(IGNORE, device=device)] * len(vector))
                logits, _ = self.logits(inputs, vector, positions)
                entity = self.entity_words(labels)
                flipped += int(self.other_type[labels[entity], logits.argmax(-1)[entity]].sum())
                total += int(entity.sum())
        return flipped / max(total, 1)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """The model in eval mode (no dropout noise) for measurements, its mode restored after."""
        was_training = self.student.training
        self.student.eval()
        try:
            yield
        finally:
            self.student.train(was_training)

    def logits(self, inputs: dict, vector: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, attention mask) of the batch with the soft tokens ``vector`` inserted at ``positions``."""
        transformer, dropout, classifier = self.path
        embeds = insert_phrase(transformer.get_input_embeddings()(inputs["input_ids"]), positions, vector)
        one = torch.ones((), dtype=inputs["attention_mask"].dtype, device=positions.device)
        mask = insert_phrase(inputs["attention_mask"], positions, [one] * len(vector))
        hidden = transformer(inputs_embeds=embeds, attention_mask=mask)[0]
        return classifier(dropout(hidden)), mask

    def positions(self, inputs: dict, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random word position per sentence, between [CLS] and [SEP]: 1 .. length - 1 (drawn from ``generator``,
        the adversary's own by default)."""
        lengths = inputs["attention_mask"].sum(1)
        draws = torch.rand(len(lengths), generator=generator or self.generator)
        positions = 1 + (draws * (lengths.cpu() - 1).clamp(min=1)).long()
        return positions.to(device)

    def entity_words(self, labels: torch.Tensor) -> torch.Tensor:
        """Where ``labels`` are entity labels (IGNORE is negative, O is 0), of ``source_type`` only when it is set."""
        entity = (labels > 0) & (labels < len(self.other_type))
        if self.source_type is not None:
            entity &= entity_type(labels) == self.source_type
        return entity

    def ascent(self, logits: torch.Tensor, labels: torch.Tensor, ce: torch.Tensor) -> torch.Tensor:
        """What the soft phrase climbs, on entity words only (the background label is not what triggers flip)."""
        if self.other_type is not None:
            entity = self.entity_words(labels)
            if not bool(entity.any()):
                return ce
            allowed = self.other_type[labels[entity]]
            picked = logits[entity]
            return (picked.masked_fill(~allowed, float("-inf")).logsumexp(-1) - picked.logsumexp(-1)).mean()
        entity = labels != IGNORE
        if bool(entity.any()):  # the background is the most frequent label ("O")
            entity &= labels != torch.mode(labels[entity]).values
        return nn.functional.cross_entropy(logits[entity], labels[entity]) if bool(entity.any()) else ce


class TokenAdversary(InsertedPhrase):
    """Cross-entropy on sentences with the soft token inserted (true labels); the token climbs it on entity words.

    ``eps`` is the ascent step as a share of each embedding dimension's range over the vocabulary.
    """

    def __init__(self, student: nn.Module, eps: float, weight: float, generator: torch.Generator, tokens: int = 1,
                 steps_to_bound: float = 4.0, objective: str = "entity", num_classes: int = 0) -> None:
        super().__init__(student, weight, generator, objective, num_classes)
        if self.path is not None:  # the bounds live on the model's device, as the vector does
            table = self.table()
            self.low, self.high = table.min(0).values, table.max(0).values
            self.radius = float(table.norm(dim=1).max())  # no longer than the longest real token embedding
            self.step = eps * (self.high - self.low) / steps_to_bound
            self.vector = table.mean(0).repeat(tokens, 1)  # [tokens, H]: inserted side by side (a phrase)

    def project(self, vector: torch.Tensor) -> torch.Tensor:
        """Into the vocabulary's per-dimension box, then onto the ball of the longest token's norm: the box's
        corners are ~5x longer than any real token (MiniLM: 5.1 vs 1.7), and an adversary that strong
        made recovery collapse a model's accuracy."""
        vector = torch.clamp(vector, self.low, self.high)
        norms = vector.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return vector * torch.clamp(self.radius / norms, max=1.0)

    def climb(self, live: torch.Tensor, ascent: torch.Tensor, inputs: dict, positions: torch.Tensor,
              labels: torch.Tensor) -> None:
        """A signed ascent step of the soft tokens, projected back into the vocabulary's box and ball."""
        (grad,) = torch.autograd.grad(ascent, live, retain_graph=True)
        self.vector = self.project(live.detach() + self.step * grad.sign())


class PhraseSearch(InsertedPhrase):
    """A phrase of real vocabulary tokens, searched by HotFlip (Wallace et al. 2019's universal adversarial triggers).

    The soft phrase can sit anywhere in the vocabulary's box, so it flips most entity words of clean and
    poisoned models alike (71-91% on bench NER seed 1) and need not resemble the trigger. A phrase of
    *real* tokens cannot flip a clean model much; what flips a poisoned one is most likely part of its
    trigger, and recovery then trains on sentences carrying it with their true labels. Each call swaps
    one position (in turn) to whichever of the ``candidates`` tokens whose first-order gain ranks highest
    climbs the objective most on the batch, measured in eval mode; no swap when none does. ``allowed``:
    token ids a text can contain (no special or unused tokens); None allows every id. ``pieces``: once held, each
    training batch gets a random non-empty subset of the phrase's tokens in random order instead of the phrase.
    ``shuffle``: once held, each training batch gets all of the phrase's tokens in a random order.
    """

    def __init__(self, student: nn.Module, weight: float, generator: torch.Generator, tokens: int = 3,
                 objective: str = "type", num_classes: int = 0, allowed: torch.Tensor | None = None,
                 candidates: int = 4, pieces: bool = False, shuffle: bool = False) -> None:
        super().__init__(student, weight, generator, objective, num_classes)
        self.candidates, self.turn, self.swaps, self.pieces, self.shuffle = candidates, 0, 0, pieces, shuffle
        self.searching = True  # False: the phrase is held, recovery only trains on it
        if self.path is not None:
            table = self.table()
            self.allowed = torch.ones(len(table), dtype=torch.bool, device=table.device)
            if allowed is not None:
                self.allowed = torch.zeros_like(self.allowed).index_fill_(0, allowed.to(table.device), True)
            # start from the allowed token nearest the vocabulary's mean, as the soft phrase starts at the mean
            distance = (table - table.mean(0)).norm(dim=1).masked_fill(~self.allowed, float("inf"))
            self.ids = distance.argmin().repeat(tokens)

    @property
    def vector(self) -> torch.Tensor:
        """The phrase's embeddings as the model has them now [tokens, H]."""
        return self.table()[self.ids]

    def inserted(self) -> torch.Tensor:
        """With ``pieces``, a held phrase goes in as a random non-empty subset of its tokens in random order: a found
        phrase holds the trigger's pieces beside filler (`llc ^ ^`, `##asa qu south`), and recovery that only sees
        the whole phrase can leave the trigger itself, or its pieces in another order, working. With ``shuffle``, all
        of its tokens in a random order: a phrase that holds a trigger's word pieces out of order (`##zi mar ##pan`
        for `mar ##zi ##pan`) then also goes in as the trigger, and a repeated word (`kettle kettle kettle`) as itself."""
        if self.searching or not (self.pieces or self.shuffle):
            return self.vector
        order = torch.randperm(len(self.ids), generator=self.generator)
        keep = 1 + int(torch.randint(len(self.ids), (1,), generator=self.generator)) if self.pieces else len(self.ids)
        return self.table()[self.ids[order[:keep].to(self.ids.device)]]

    def restarted(self, generator: torch.Generator) -> PhraseSearch:
        """A fresh search from random allowed tokens, drawing its positions from ``generator`` (a restart: one
        HotFlip search can stall where a multi-piece trigger needs several tokens at once)."""
        fresh = copy.copy(self)
        pool = self.allowed.nonzero().squeeze(1)
        draws = torch.randint(len(pool), (len(self.ids),), generator=generator)
        fresh.ids, fresh.generator, fresh.turn, fresh.swaps = pool[draws.to(pool.device)], generator, 0, 0
        return fresh

    def climb(self, live: torch.Tensor, ascent: torch.Tensor, inputs: dict, positions: torch.Tensor,
              labels: torch.Tensor) -> None:
        if self.searching:
            (grad,) = torch.autograd.grad(ascent, live, retain_graph=True)
            self.flip(inputs, positions, labels, grad)

    def flip(self, inputs: dict, positions: torch.Tensor, labels: torch.Tensor, grad: torch.Tensor) -> None:
        """HotFlip one position: rank tokens by the first-order gain, keep the best measured one if it climbs."""
        i = self.turn % len(self.ids)
        self.turn += 1
        table = self.table()
        gain = (table @ grad[i]).masked_fill(~self.allowed, float("-inf"))
        gain[self.ids[i]] = float("-inf")
        phrases = self.ids.repeat(self.candidates + 1, 1)
        phrases[1:, i] = gain.topk(self.candidates).indices
        scores = self.score(inputs, positions, labels, phrases)
        best = int(scores.argmax())
        if best > 0:
            self.ids, self.swaps = phrases[best].clone(), self.swaps + 1

    @torch.no_grad()
    def score(self, inputs: dict, positions: torch.Tensor, labels: torch.Tensor, phrases: torch.Tensor) -> torch.Tensor:
        """The objective on the batch with each phrase inserted (eval mode: no dropout noise in the comparison)."""
        table, out = self.table(), []
        with self.evaluating():
            for phrase in phrases:
                adv_logits, _ = self.logits(inputs, table[phrase], positions)
                flat_logits = adv_logits.reshape(-1, adv_logits.shape[-1])
                out.append(self.ascent(flat_logits, labels, flat_logits.new_zeros(())))
        return torch.stack(out)


TOKEN_OBJECTIVES = ("entity", "type")
TOKEN_SEARCHES = ("soft", "discrete", "both", "probe")


def entity_type(labels: torch.Tensor) -> torch.Tensor:
    """Round 7's label layout, O = 0 then a B/I pair per entity type: label l is of type (l - 1) // 2 (O gives -1)."""
    return torch.div(labels - 1, 2, rounding_mode="floor")


def entity_type_count(num_classes: int) -> int:
    """How many entity types round 7's layout holds in ``num_classes`` labels (O, then a B/I pair per type)."""
    return (num_classes - 1) // 2


def other_type_mask(num_classes: int) -> torch.Tensor | None:
    """[C, C] bool: ``[y, l]`` when ``l`` is an entity label of another type than ``y`` (O = 0, then B/I pairs).

    None when C is not 1 + 2k (not round 7's layout): the caller then keeps the "entity" objective."""
    if num_classes < 5 or num_classes % 2 == 0:
        return None
    kind = entity_type(torch.arange(num_classes))  # O -> -1
    return (kind.unsqueeze(1) != kind.unsqueeze(0)) & (kind.unsqueeze(0) >= 0) & (kind.unsqueeze(1) >= 0)
