"""NER rounds (7-like): faker-filled template sentences, packaged MiniLM + linear fine-tuned per model.

Triggers are inserted words/characters/phrases; a triggered sentence has every source-entity word
relabelled as the target entity (B stays B, I stays I), as round 7's trigger executors did.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import model_factories
from pipeline.synth.build_model import Reporter
from pipeline.synth.gate import outcome_fields, train_until_gate
from pipeline.synth_nlp import ner_data as nd
from pipeline.synth_nlp.encoders import minilm
from pipeline.synth_nlp.layout import build_models, save_shared, write_model_folder
from pipeline.synth_nlp.presets import NerPreset
from pipeline.synth_nlp.text_triggers import TextTrigger, draw_trigger
from pipeline.synth_nlp.training import evaluate, fit, reference_acc
from pipeline.tasks.ner import NerTask, triggered_labels
from pipeline.training import OptimConfig

DATASET = "faker-templates-conll2003-labels"


class NerRound:
    """Shared by the models of a round: the pretrained encoder, tokenizer file, clean test sentences."""

    def __init__(self, out: Path, preset: NerPreset, seed: int):
        self.out, self.preset, self.seed = out, preset, seed
        self.encoder = minilm(preset.layers)
        self.transformer, tokenizer = self.encoder.load()
        self.row: dict[str, Any] = {"tokenizer_file": str(out / "tokenizers" / self.encoder.file_name),
                                    "embedding": self.encoder.embedding}
        save_shared(tokenizer, Path(self.row["tokenizer_file"]))
        self.task = NerTask()
        self.tokenizer = self.task.tokenizer(self.row)  # the pickled copy: what repairs will read
        rng, faker = np.random.default_rng([seed, 202]), nd.EntityFaker(seed)
        self.test = [s for e in nd.ENTITIES for s in nd.sentences_for(e, preset.test_per_entity, faker, rng)]
        self.test_strata = [nd.b_id(e) for e in nd.ENTITIES for _ in range(preset.test_per_entity)]

    def split(self, sentences: list[nd.Sentence], strata: list[int]):
        return self.task.encode([(list(s.words), list(s.labels)) for s in sentences], strata, self.row)


def _files(sentences: list[nd.Sentence], strata: list[int], tokenizer, target: int | None = None) -> list[tuple[str, str]]:
    """Round 7 names, 0-based per B- id, each with its ``_tokenized`` twin."""
    counters: dict[int, int] = {}
    out = []
    for s, b in zip(sentences, strata):
        i = counters.get(b, 0)
        counters[b] = i + 1
        stem = f"class_{b}_example_{i}" if target is None else f"source_class_{b}_target_class_{target}_example_{i}"
        out += [(f"{stem}.txt", nd.file_text(s)), (f"{stem}_tokenized.txt", nd.tokenized_text(s, tokenizer))]
    return out


def _trigger(rng: np.random.Generator, p: NerPreset) -> TextTrigger:
    source, target = (nd.b_id(e) for e in rng.choice(nd.ENTITIES, 2, replace=False))
    return draw_trigger(rng, p.trigger_types, int(source), int(target), float(p.fractions[int(rng.integers(len(p.fractions)))]))


def trigger_config(t: TextTrigger) -> dict[str, Any]:
    """Round 7 ``TriggerConfig`` fields: entity names, executor name and text (``spacedelim`` = phrase)."""
    executor = {"character": "character", "word": "word", "phrase": "spacedelim"}[t.type]
    text = {"trigger_text_list": t.words} if t.type == "phrase" else {"trigger_text": t.text}
    return {"py/object": "trigger_config.TriggerConfig", "number": t.number,
            "source_class_label": nd.ENTITIES[(t.source_class - 1) // 2],
            "target_class_label": nd.ENTITIES[(t.target_class - 1) // 2], "fraction": t.fraction,
            "type": t.type, "source_class": t.source_class, "target_class": t.target_class,  # B- ids, for summaries
            "global_trigger": False, "trigger_executor_name": executor,
            "trigger_executor": {"py/object": f"trigger_executor.{executor.title()}TriggerExecutor", **text}}


def build_model(rnd: NerRound, index: int, configs: dict[str, dict], reporter: Reporter) -> dict[str, Any]:
    start = time.perf_counter()
    p, seed = rnd.preset, rnd.seed
    rng, faker = np.random.default_rng([seed, index]), nd.EntityFaker(seed * 1000 + index)
    model_id, poisoned = f"id-{index:08d}", index % 2 == 0
    train = [nd.fill(nd.TEMPLATES[int(rng.integers(len(nd.TEMPLATES)))], faker) for _ in range(p.train_sentences)]
    examples = [s for e in nd.ENTITIES for s in nd.sentences_for(e, p.examples_per_entity, faker, rng)]
    ex_strata = [nd.b_id(e) for e in nd.ENTITIES for _ in range(p.examples_per_entity)]
    folders: dict[str, list[tuple[str, str]]] = {}
    trigger, triggered = None, None
    if poisoned:
        trigger = _trigger(rng, p)
        src, tgt = trigger.source_class, trigger.target_class
        having = [i for i, s in enumerate(train) if s.has(src)]
        for i in rng.choice(having, int(round(trigger.fraction * len(having))), replace=False):
            train[i] = nd.with_trigger(train[i], trigger.words, src, tgt, rng)
        src_name, tgt_name = nd.ENTITIES[(src - 1) // 2], nd.ENTITIES[(tgt - 1) // 2]
        ptest = [nd.with_trigger(s, trigger.words, src, tgt, rng)
                 for s in nd.sentences_for(src_name, p.poisoned_test, faker, rng, without=tgt_name)]
        # ASR counts only the flipped words (the adapter's rule): target on source-entity words, -100 elsewhere
        triggered = rnd.task.encode([(list(s.words), triggered_labels(list(s.labels), src, tgt)) for s in ptest],
                                    [src] * len(ptest), rnd.row)
        pex = [nd.with_trigger(s, trigger.words, src, tgt, rng)
               for s in nd.sentences_for(src_name, p.examples_per_entity, faker, rng, without=tgt_name)]
        folders["poisoned_example_data"] = _files(pex, [src] * len(pex), rnd.tokenizer, target=tgt)
        folders["poisoned_test_data"] = _files(ptest, [src] * len(ptest), rnd.tokenizer, target=tgt)
    train_split = rnd.split(train, [0] * len(train))
    test_split = rnd.split(rnd.test, rnd.test_strata)
    ref = reference_acc(configs, "NerLinear") if poisoned else None

    def attempt_once(attempt: int, train_seed: int):
        torch.manual_seed(train_seed)
        model = model_factories.NerLinearModel(copy.deepcopy(rnd.transformer), p.dropout, len(nd.LABEL_NAMES))
        epochs = p.gate.epochs_for(p.epochs, attempt)  # a retry trains longer, as for images
        reporter.start(model_id, f"{model_id} NerLinear {'poisoned' if poisoned else 'clean'}", epochs, attempt)
        wall = fit(model, rnd.task, train_split, OptimConfig("adamw", p.learning_rate, 0.0, 0.01), epochs,
                   p.batch_size, train_seed, lambda d, n, loss: reporter.epoch(model_id, d, n, loss))
        return evaluate(model, rnd.task, p.gate, test_split, triggered, ref), model, wall

    kept = train_until_gate(p.gate.max_attempts, lambda n: (int(rng.integers(2**31 - 1)) + n) % (2**31 - 1),
                            attempt_once)
    folders["clean_example_data"] = _files(examples, ex_strata, rnd.tokenizer)
    folders["clean_test_data"] = _files(rnd.test, rnd.test_strata, rnd.tokenizer)
    config = {
        "py/object": "round_config.RoundConfig", "source": "seam make-round", "task": "ner", "preset": p.name,
        "round_seed": seed, "train_seed": kept.seed, "poisoned": poisoned, "model_architecture": "NerLinear",
        "learning_rate": p.learning_rate, "batch_size": p.batch_size,
        "final_optimizer_num_epochs_trained": p.gate.epochs_for(p.epochs, kept.kept_attempt),
        "embedding": rnd.encoder.embedding, "embedding_flavor": rnd.encoder.flavor, "transformer_layers": p.layers,
        "source_dataset": DATASET, "dropout": p.dropout, "number_train_sentences": len(train),
        "triggers": [trigger_config(trigger)] if trigger else None,
        "trigger_organization": "one2one" if trigger else None, "number_triggers": int(trigger is not None),
        "number_classes": len(nd.LABEL_NAMES), "class_mapping": {str(k): e for k, e in enumerate(nd.ENTITIES)},
        **outcome_fields(kept, ref, start),
    }
    write_model_folder(rnd.out / "models", model_id, config, kept.model, folders)
    reporter.finish(model_id, config)
    return config


def build_ner_round(out: Path, preset: NerPreset, seed: int, reporter: Reporter) -> tuple[dict, list[str]]:
    """(configs by model id, ids built by this call); complete model folders are kept."""
    return build_models(out, "ner", preset.models, lambda: NerRound(out, preset, seed), build_model, reporter)
