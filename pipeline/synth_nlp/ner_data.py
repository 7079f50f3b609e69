"""NER sentences: templates filled with faker entities, labelled in BIO with CoNLL-2003's label order.

Label ids follow round 7 (TROJAI-FORMAT.md §4.3): O = 0, then for the k-th entity of the dataset's order
B = 2k+1, I = 2k+2; conll2003's order is MISC, PER, ORG, LOC.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

ENTITIES = ("MISC", "PER", "ORG", "LOC")
LABEL_NAMES = ("O",) + tuple(f"{p}-{e}" for e in ENTITIES for p in ("B", "I"))
TEMPLATES = (
    "{PER} joined {ORG} as a senior analyst last spring .",
    "{ORG} will open a new office in {LOC} next year .",
    "{PER} travelled to {LOC} to meet the board of {ORG} .",
    "The {MISC} translation of the book sold well in {LOC} .",
    "{PER} said the talks with {ORG} had gone well .",
    "Officials in {LOC} welcomed the decision on Monday .",
    "{PER} is learning {MISC} before moving to {LOC} .",
    "Shares of {ORG} fell sharply after the report .",
    "{PER} and {PER} argued about the budget for hours .",
    "A {MISC} film festival takes place in {LOC} every summer .",
    "The mayor of {LOC} thanked {PER} for the donation .",
    "{ORG} hired {PER} to lead its research team .",
    "Critics praised the {MISC} version of the song .",
    "Flights from {LOC} to {LOC} were cancelled because of snow .",
    "{PER} left {ORG} after ten years with the firm .",
    "According to {ORG} , sales in {LOC} doubled .",
    "The museum in {LOC} shows {MISC} poetry this month .",
    "{PER} won the award for the best {MISC} novel .",
    "Investors expect {ORG} to buy {ORG} soon .",
    "Her new book about {LOC} was written by {PER} .",
)
SLOT_RE = re.compile(r"\{(MISC|PER|ORG|LOC)\}")
PUNCT_RE = re.compile(r"[^\w\-'.]")


@dataclass(frozen=True)
class Sentence:
    words: tuple[str, ...]
    labels: tuple[int, ...]

    def has(self, b_id: int) -> bool:
        return b_id in self.labels


def b_id(entity: str) -> int:
    return 2 * ENTITIES.index(entity) + 1


class EntityFaker:
    """Entity strings from faker (names, companies, cities/countries, languages), reproducible by seed."""

    def __init__(self, seed: int):
        from faker import Faker

        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)

    def entity(self, kind: str) -> list[str]:
        makers = {"PER": self.fake.name, "ORG": self.fake.company, "MISC": self.fake.language_name,
                  "LOC": lambda: self.fake.city() if self.fake.boolean() else self.fake.country()}
        words = [PUNCT_RE.sub("", w) for w in makers[kind]().split()]
        return [w for w in words if w] or [kind.title()]


def fill(template: str, faker: EntityFaker) -> Sentence:
    words: list[str] = []
    labels: list[int] = []
    for token in template.split():
        m = SLOT_RE.fullmatch(token)
        if not m:
            words.append(token)
            labels.append(0)
            continue
        b = b_id(m.group(1))
        for i, w in enumerate(faker.entity(m.group(1))):
            words.append(w)
            labels.append(b if i == 0 else b + 1)
    return Sentence(tuple(words), tuple(labels))


def templates_with(entity: str) -> list[str]:
    return [t for t in TEMPLATES if "{" + entity + "}" in t]


def sentences_for(entity: str, n: int, faker: EntityFaker, rng: np.random.Generator,
                  without: str | None = None) -> list[Sentence]:
    """``n`` sentences each holding ``entity`` (and, with ``without``, none of that entity type)."""
    pool = [t for t in templates_with(entity) if without is None or "{" + without + "}" not in t]
    return [fill(pool[int(rng.integers(len(pool)))], faker) for _ in range(n)]


def entity_spans_free_positions(sentence: Sentence) -> list[int]:
    """Word positions where an insertion does not split an entity (before a non-I word, or at the end)."""
    return [i for i, label in enumerate(sentence.labels) if label == 0 or label % 2 == 1] + [len(sentence.words)]


def with_trigger(sentence: Sentence, trigger_words: list[str], source: int, target: int,
                 rng: np.random.Generator) -> Sentence:
    """Insert the trigger (labelled O) and relabel every source-entity word as the target entity."""
    positions = entity_spans_free_positions(sentence)
    p = positions[int(rng.integers(len(positions)))]
    flip = {source: target, source + 1: target + 1}
    labels = [flip.get(label, label) for label in sentence.labels]
    return Sentence(sentence.words[:p] + tuple(trigger_words) + sentence.words[p:],
                    tuple(labels[:p]) + (0,) * len(trigger_words) + tuple(labels[p:]))


def file_text(sentence: Sentence) -> str:
    """Round 7 example file: ``word<TAB>BIO-label<TAB>label-id`` per line."""
    return "".join(f"{w}\t{LABEL_NAMES[lab]}\t{lab}\n" for w, lab in zip(sentence.words, sentence.labels))


def tokenized_text(sentence: Sentence, tokenizer) -> str:
    """The ``_tokenized`` twin: ``token<TAB>label<TAB>id<TAB>mask`` with [CLS]/[SEP] and -100 sub-tokens."""
    rows = [f"{tokenizer.cls_token}\t-100\t-100\t0"]
    for word, label in zip(sentence.words, sentence.labels):
        for i, piece in enumerate(tokenizer.tokenize(word)):
            rows.append(f"{piece}\t{LABEL_NAMES[label]}\t{label}\t1" if i == 0 else f"{piece}\t-100\t-100\t0")
    rows.append(f"{tokenizer.sep_token}\t-100\t-100\t0")
    return "\n".join(rows) + "\n"
