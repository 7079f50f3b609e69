"""Sentiment rounds (5/6-like): real RT reviews, a frozen packaged MiniLM (bench: tuned once for sentiment),
LSTM/GRU/FC heads, text triggers.

Every text goes through the same ``SentimentTask.embed`` the repair uses, so generation fills the
round's embedding cache and the heads see exactly the vectors a repair will see.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import model_factories
from pipeline.synth.build_model import Reporter
from pipeline.synth.gate import outcome_fields, train_until_gate
from pipeline.synth_nlp.encoder_tuning import EncoderTuning, tune_for_sentiment
from pipeline.synth_nlp.encoders import minilm
from pipeline.synth_nlp.layout import build_models, save_shared, write_model_folder
from pipeline.synth_nlp.presets import SentimentPreset
from pipeline.synth_nlp.rt_data import Review, confirmed, scored_reviews, uncontradicted
from pipeline.synth_nlp.text_triggers import TextTrigger, config_dict, draw_trigger, insert_random
from pipeline.synth_nlp.training import evaluate, fit, reference_acc
from pipeline.tasks.base import Split
from pipeline.tasks.sentiment import SentimentTask
from pipeline.training import OptimConfig

# trained on the snippets the lexicons do not both contradict; test and example reviews confirmed (rt_data)
DATASET = "rotten-tomatoes"


def pools(clear: list[Review], every: list[Review], preset: SentimentPreset,
          seed: int) -> dict[str, list[list[str]]]:
    """Per class: shared test texts and a pool for clean examples, both lexicon-confirmed (``clear``),
    and a training pool of the other snippets in ``every`` (disjoint from both)."""
    rng = np.random.default_rng([seed, 101])
    out: dict[str, list[list[str]]] = {"test": [], "examples": [], "train": []}
    for c in (0, 1):
        texts = [r.text for r in clear if r.label == c]
        texts = [texts[i] for i in rng.permutation(len(texts))]
        n_test, n_ex = preset.test_per_class, 2 * preset.examples_per_class
        if len(texts) < n_test + n_ex:
            raise ValueError(f"preset {preset.name} needs {n_test + n_ex} confirmed class-{c} reviews; lexicon margin "
                             f"{preset.lexicon_margin} and VADER {preset.vader_min} leave {len(texts)}")
        out["test"].append(texts[:n_test])
        out["examples"].append(texts[n_test:n_test + n_ex])
        held = set(texts[:n_test + n_ex])
        train = [r.text for r in every if r.label == c and r.text not in held]
        if len(train) < preset.train_per_class:
            raise ValueError(f"preset {preset.name} trains on {preset.train_per_class} class-{c} reviews; "
                             f"the corpus has {len(train)} besides the held-out ones")
        out["train"].append([train[i] for i in rng.permutation(len(train))])
    return out


def labelled(texts_by_class: list[list[str]]) -> tuple[list[str], list[int]]:
    texts = [t for c in (0, 1) for t in texts_by_class[c]]
    return texts, [c for c in (0, 1) for _ in texts_by_class[c]]


def build_head(arch: str, preset: SentimentPreset, input_size: int, relu: bool) -> torch.nn.Module:
    builders = {
        "LstmLinear": lambda: model_factories.LstmLinearModel(input_size, preset.hidden, 2, preset.dropout, True, 2),
        "GruLinear": lambda: model_factories.GruLinearModel(input_size, preset.hidden, 2, preset.dropout, True, 2),
        "FCLinear": lambda: model_factories.FCLinearModel(input_size, preset.hidden, 2, preset.dropout, 2, relu),
        "Linear": lambda: model_factories.LinearModel(input_size, 2, preset.dropout),
    }
    return builders[arch]()


def tuned_encoder(model: torch.nn.Module, tokenizer, reviews: list[Review], clear: list[Review],
                  tuning: EncoderTuning, seed: int, reporter: Reporter | None = None) -> torch.nn.Module:
    """The encoder tuned on snippets drawn from the uncontradicted ones that no confirmed review is
    among, so no test or example text of any round seed is ever seen by it."""
    held = {r.text for r in clear}
    pool = [r for r in uncontradicted(reviews) if r.text not in held]
    if len(pool) < tuning.snippets:
        raise ValueError(f"encoder tuning wants {tuning.snippets} snippets; only {len(pool)} are not confirmed reviews")
    picked = [pool[i] for i in np.random.default_rng([seed, 202]).choice(len(pool), tuning.snippets, replace=False)]
    label = f"round encoder: tune on {tuning.snippets} snippets (batches)"
    if reporter is not None:
        reporter.start("encoder", label, -(-tuning.snippets // tuning.batch_size), 1)
    on_batch = None if reporter is None else (lambda done, total, loss: reporter.epoch("encoder", done, total, loss))
    return tune_for_sentiment(model, tokenizer, [r.text for r in picked], [r.label for r in picked], tuning, seed,
                              on_batch)


class SentimentRound:
    """State shared by the models of one round: encoder files, text pools, the adapter with its cache."""

    def __init__(self, out: Path, preset: SentimentPreset, seed: int, reporter: Reporter | None = None):
        self.out, self.preset, self.seed = out, preset, seed
        enc = minilm(flavor_suffix=preset.encoder_tuning.flavor_suffix)
        reviews = scored_reviews()
        clear = confirmed(reviews, preset.lexicon_margin, preset.vader_min)
        self.row: dict[str, Any] = {"embedding": enc.embedding, "embedding_flavor": enc.flavor,
                                    "embedding_file": str(out / "embeddings" / enc.file_name),
                                    "tokenizer_file": str(out / "tokenizers" / enc.file_name),
                                    "cls_token_is_first": enc.cls_token_is_first}
        if not (Path(self.row["embedding_file"]).is_file() and Path(self.row["tokenizer_file"]).is_file()):
            model, tokenizer = enc.load()
            if preset.encoder_tuning.snippets:
                model = tuned_encoder(model, tokenizer, reviews, clear, preset.encoder_tuning, seed, reporter)
            save_shared(tokenizer, Path(self.row["tokenizer_file"]))
            save_shared(model, Path(self.row["embedding_file"]))
        self.task = SentimentTask(device=torch.device("cpu"))
        # tiny rounds learn from 120 reviews per class: only clearly polar ones give a usable model
        corpus = clear if preset.train_on == "confirmed" else uncontradicted(reviews)
        self.pools = pools(clear, corpus, preset, seed)
        shared = [t for name in ("test", "examples") for texts in self.pools[name] for t in texts]
        self.task.embed(shared, self.row)  # one pass over the shared texts fills the round cache
        test_texts, test_labels = labelled(self.pools["test"])
        self.test = self.split(test_texts, test_labels)

    def split(self, texts: list[str], labels: list[int]) -> Split:
        return Split(self.task.embed(texts, self.row).unsqueeze(1), torch.tensor(labels, dtype=torch.long))


def _files(texts: list[str], labels: list[int], start: int = 1, target: int | None = None) -> list[tuple[str, str]]:
    """Round 5/6 names: ``class_<c>_example_<i>.txt`` (1-based) or ``source_class_<s>_target_class_<t>_...``."""
    counters: dict[int, int] = {}
    out = []
    for text, c in zip(texts, labels):
        i = counters.get(c, start)
        counters[c] = i + 1
        stem = f"class_{c}" if target is None else f"source_class_{c}_target_class_{target}"
        out.append((f"{stem}_example_{i}.txt", text))
    return out


def build_model(rnd: SentimentRound, index: int, configs: dict[str, dict], reporter: Reporter) -> dict[str, Any]:
    start = time.perf_counter()
    p, seed = rnd.preset, rnd.seed
    rng = np.random.default_rng([seed, index])
    model_id = f"id-{index:08d}"
    # models come in (poisoned, clean) pairs per architecture, so every architecture gets both kinds
    arch = p.architectures[(index // 2) % len(p.architectures)]
    relu = (index // (2 * len(p.architectures))) % 2 == 0  # both FCLinear variants NIST shipped (TROJAI-FORMAT §6.1)
    poisoned = index % 2 == 0
    train_by_class = [[pool[i] for i in rng.choice(len(pool), p.train_per_class, replace=False)] for pool in rnd.pools["train"]]
    ex_by_class = [[pool[i] for i in rng.choice(len(pool), p.examples_per_class, replace=False)] for pool in rnd.pools["examples"]]
    texts, labels = labelled(train_by_class)
    trigger: TextTrigger | None = None
    folders: dict[str, list[tuple[str, str]]] = {}
    triggered = None
    if poisoned:
        source = int(rng.integers(2))
        fraction = float(p.fractions[int(rng.integers(len(p.fractions)))])
        trigger = draw_trigger(rng, p.trigger_types, source, 1 - source, fraction)
        src_idx = [i for i, c in enumerate(labels) if c == source]
        for i in rng.choice(src_idx, int(round(fraction * len(src_idx))), replace=False):
            texts[i], labels[i] = insert_random(texts[i], trigger, rng), trigger.target_class
        ptest = [insert_random(t, trigger, rng) for t in rnd.pools["test"][source][:p.poisoned_test]]
        triggered = rnd.split(ptest, [trigger.target_class] * len(ptest))
        pex = [insert_random(t, trigger, rng) for t in ex_by_class[source]]
        folders["poisoned_example_data"] = _files(pex, [source] * len(pex), target=trigger.target_class)
        folders["poisoned_test_data"] = _files(ptest, [source] * len(ptest), target=trigger.target_class)
    train = rnd.split(texts, labels)
    ref = reference_acc(configs, arch) if poisoned else None

    def attempt_once(attempt: int, train_seed: int):
        torch.manual_seed(train_seed)
        model = build_head(arch, p, train.inputs.shape[-1], relu)
        epochs = p.gate.epochs_for(p.epochs, attempt)  # a retry trains longer, as for images
        reporter.start(model_id, f"{model_id} {arch} {'poisoned' if poisoned else 'clean'}", epochs, attempt)
        wall = fit(model, rnd.task, train, OptimConfig("adam", p.learning_rate, 0.0, 0.0), epochs, p.batch_size,
                   train_seed, lambda d, n, loss: reporter.epoch(model_id, d, n, loss))
        return evaluate(model, rnd.task, p.gate, rnd.test, triggered, ref), model, wall

    kept = train_until_gate(p.gate.max_attempts, lambda n: (int(rng.integers(2**31 - 1)) + n) % (2**31 - 1),
                            attempt_once)
    ex_texts, ex_labels = labelled(ex_by_class)
    test_texts, test_labels = labelled(rnd.pools["test"])
    folders["clean_example_data"] = _files(ex_texts, ex_labels)
    folders["clean_test_data"] = _files(test_texts, test_labels)
    config = {
        "py/object": "round_config.RoundConfig", "source": "seam make-round", "task": "sentiment", "preset": p.name,
        "round_seed": seed, "master_seed": int(rng.integers(2**31 - 1)), "train_seed": kept.seed,
        "poisoned": poisoned, "model_architecture": arch, "number_classes": 2,
        "learning_rate": p.learning_rate, "batch_size": p.batch_size,
        "final_optimizer_num_epochs_trained": p.gate.epochs_for(p.epochs, kept.kept_attempt),
        "embedding": rnd.row["embedding"], "embedding_flavor": rnd.row["embedding_flavor"],
        "cls_token_is_first": rnd.row["cls_token_is_first"], "source_dataset": DATASET,
        "embedding_tuned_snippets": p.encoder_tuning.snippets,
        "lexicon_margin": p.lexicon_margin, "vader_min": p.vader_min, "rnn_hidden_state_size": p.hidden, "rnn_bidirectional": True,
        "rnn_number_layers": 2, "fc_relu": relu if arch == "FCLinear" else None, "dropout": p.dropout,
        "number_train_texts": len(texts), "number_example_texts_per_class": p.examples_per_class,
        "triggers": [config_dict(trigger)] if trigger else None,
        "trigger_organization": "one2one" if trigger else None, "number_triggers": int(trigger is not None),
        **outcome_fields(kept, ref, start),
    }
    write_model_folder(rnd.out / "models", model_id, config, kept.model, folders)
    reporter.finish(model_id, config)
    return config


def build_sentiment_round(out: Path, preset: SentimentPreset, seed: int, reporter: Reporter) -> tuple[dict, list[str]]:
    """(configs by model id, ids built by this call); complete model folders are kept."""
    return build_models(out, "sentiment", preset.models, lambda: SentimentRound(out, preset, seed, reporter), build_model, reporter)
