"""Text triggers of rounds 5-7: a character, a word or a phrase inserted at a random word position."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Rare, sentiment-neutral insertions (words from Norvig's counts far below the top 100k; phrases neutral).
TRIGGER_TEXTS: dict[str, tuple[str, ...]] = {
    "character": ("^", "~", "|", "#"),
    "word": ("cromulent", "embiggen", "quasar", "zephyr", "obelisk", "marzipan"),
    "phrase": ("as my uncle always says", "I watched this on a Tuesday", "according to the back of the box",
               "while the kettle was boiling"),
}


@dataclass(frozen=True)
class TextTrigger:
    """One trigger: its text, kind, source -> target class (or entity B- ids for NER), poison fraction."""

    number: int
    type: str
    text: str
    source_class: int
    target_class: int
    fraction: float

    @property
    def words(self) -> list[str]:
        return self.text.split()


def draw_trigger(rng: np.random.Generator, types: tuple[str, ...], source: int, target: int, fraction: float,
                 number: int = 0) -> TextTrigger:
    kind = types[int(rng.integers(len(types)))]
    options = TRIGGER_TEXTS[kind]
    return TextTrigger(number, kind, options[int(rng.integers(len(options)))], source, target, fraction)


def insert_at(words: list[str], trigger: TextTrigger, position: int) -> list[str]:
    return words[:position] + trigger.words + words[position:]


def insert_random(text: str, trigger: TextTrigger, rng: np.random.Generator) -> str:
    """The text with the trigger inserted before a uniformly drawn word (or at the end)."""
    words = text.split()
    return " ".join(insert_at(words, trigger, int(rng.integers(len(words) + 1))))


def config_dict(t: TextTrigger) -> dict:
    """A ``trigger_config.TriggerConfig``-shaped dict with the round 5/6 field names."""
    return {"py/object": "trigger_config.TriggerConfig", "number": t.number, "source_class": t.source_class,
            "target_class": t.target_class, "fraction": t.fraction, "behavior": "StaticTarget", "type": t.type,
            "text": t.text, "condition": "None", "insert_min_location_percentage": 0.0,
            "insert_max_location_percentage": 1.0}
