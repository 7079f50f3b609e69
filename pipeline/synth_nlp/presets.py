"""Typed presets for ``seam make-round --task sentiment|ner`` (tiny: tests, bench: FID tables)."""
from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline.synth.presets import Gate
from pipeline.synth_nlp.encoder_tuning import EncoderTuning


@dataclass(frozen=True)
class SentimentPreset:
    """A round 5/6-like round: frozen MiniLM summaries, LSTM/GRU/FC heads, text triggers."""

    name: str
    models: int
    architectures: tuple[str, ...]
    hidden: int
    lexicon_margin: int  # reviews whose General Inquirer score agrees with the verdict by this much (rt_data)
    vader_min: float  # ... and whose VADER compound score agrees by at least this much
    train_on: str  # "corpus": every snippet the lexicons do not both contradict; "confirmed": confirmed ones only
    train_per_class: int
    examples_per_class: int  # clean_example_data: the only data a repair may learn from
    test_per_class: int  # clean_test_data (shared by the round's models)
    poisoned_test: int  # poisoned_test_data per poisoned model (source-class reviews + trigger)
    epochs: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    dropout: float = 0.25
    trigger_types: tuple[str, ...] = ("character", "word", "phrase")
    fractions: tuple[float, ...] = (0.1, 0.2)
    gate: Gate = Gate(min_clean_acc=0.85, min_asr=0.90, max_acc_gap=0.03, max_attempts=3)
    encoder_tuning: EncoderTuning = EncoderTuning()  # pretrained [CLS] unless snippets > 0 (encoder_tuning.py)


@dataclass(frozen=True)
class NerPreset:
    """A round 7-like round: MiniLM (first ``layers`` layers) + linear, fine-tuned per model."""

    name: str
    models: int
    layers: int
    train_sentences: int
    examples_per_entity: int
    test_per_entity: int
    poisoned_test: int
    epochs: int
    batch_size: int = 16
    learning_rate: float = 1e-4
    dropout: float = 0.1
    trigger_types: tuple[str, ...] = ("character", "word", "phrase")
    fractions: tuple[float, ...] = (0.2, 0.5)
    gate: Gate = Gate(min_clean_acc=0.90, min_asr=0.90, max_acc_gap=0.03, max_attempts=3)


# Bench (round 5-like: LSTM and GRU heads): heads train on 4,000 snippets per class, tested on
# reviews two lexicons confirm strongly (rt_data has the measurements). The encoder is MiniLM tuned
# once for sentiment on 2,500 other snippets (encoder_tuning): heads reach ~0.95 instead of ~0.85,
# and triggers need 20-30% poisoning to be learned through the tuned [CLS]. Accuracy peaks around
# 6-10 epochs, so a gate retry mostly changes the seed (epochs 10, 12, 14).
SENTIMENT_BENCH = SentimentPreset(
    name="bench", models=12, architectures=("LstmLinear", "GruLinear"), hidden=256, lexicon_margin=2, vader_min=0.7,
    train_on="corpus", train_per_class=4000, examples_per_class=40, test_per_class=100, poisoned_test=100, epochs=10,
    learning_rate=1e-3, fractions=(0.2, 0.3), encoder_tuning=EncoderTuning(snippets=2500),
    gate=Gate(min_clean_acc=0.85, min_asr=0.90, max_acc_gap=0.03, max_attempts=3, retry_epoch_growth=0.2))

SENTIMENT_PRESETS: dict[str, SentimentPreset] = {
    "tiny": SentimentPreset(name="tiny", models=2, architectures=("GruLinear",), hidden=64,
                            lexicon_margin=1, vader_min=0.5, train_on="confirmed", train_per_class=120,
                            examples_per_class=20, test_per_class=30, poisoned_test=30, epochs=40,
                            trigger_types=("word", "phrase"), fractions=(0.5,),
                            gate=Gate(min_clean_acc=0.7, min_asr=0.9, max_acc_gap=1.0, max_attempts=3)),
    "bench": SENTIMENT_BENCH,
    # The bench generator before the tuned encoder (bench sentiment seeds 1-3 in docs/SEAM.md were built so).
    "bench-pretrained": replace(SENTIMENT_BENCH, name="bench-pretrained", fractions=(0.1, 0.2),
                                encoder_tuning=EncoderTuning()),
}

NER_PRESETS: dict[str, NerPreset] = {
    "tiny": NerPreset(name="tiny", models=2, layers=1, train_sentences=240, examples_per_entity=12,
                      test_per_entity=10, poisoned_test=30, epochs=4, learning_rate=5e-4, fractions=(0.5,),
                      trigger_types=("word", "phrase"),
                      gate=Gate(min_clean_acc=0.8, min_asr=0.9, max_acc_gap=1.0, max_attempts=2)),
    "bench": NerPreset(name="bench", models=12, layers=3, train_sentences=800, examples_per_entity=20,
                       test_per_entity=30, poisoned_test=60, epochs=4),
}

PRESETS: dict[str, dict[str, SentimentPreset | NerPreset]] = {"sentiment": SENTIMENT_PRESETS, "ner": NER_PRESETS}


def resolve(task: str, name: str, models: int | None = None) -> SentimentPreset | NerPreset:
    try:
        preset = PRESETS[task][name]
    except KeyError:
        raise ValueError(f"unknown {task} preset {name!r}; known: {', '.join(PRESETS.get(task, {}))}") from None
    return preset if models is None else replace(preset, models=models)
