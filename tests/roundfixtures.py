"""Build tiny TrojAI rounds on disk, one builder per real layout (TROJAI-FORMAT.md §1-4).

Plain functions so any test (or benchmark) can reuse them. Every builder writes real whole-model
pickles (tiny torchvision nets, ``model_factories`` heads, a NerLinear around a small random BERT)
and returns what a correct scanner must report for each model, derived from the builder's own
parameters, never typed in by hand.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import model_factories

BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "good", "bad",
              "john", "lives", "in", "paris", "cf"]
TINY_PNG_SIDE = 16


@dataclass(frozen=True)
class Expected:
    """What ``seam scan`` must say about one generated model."""

    task: str
    num_classes: int
    poisoned: bool
    n_clean: int
    n_poisoned: int
    architecture: str


# ---------------------------------------------------------------------------------------------
# tiny real models


def tiny_image_model(num_classes: int) -> nn.Module:
    """A real torchvision classifier small enough to pickle in milliseconds (1.5 MiB)."""
    import torchvision

    return torchvision.models.shufflenet_v2_x0_5(num_classes=num_classes).eval()


def tiny_bert(vocab_size: int = len(BERT_VOCAB), hidden: int = 16) -> nn.Module:
    """A randomly initialised BertModel from a local config: no download."""
    import transformers

    config = transformers.BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=hidden * 2,
                                     max_position_embeddings=64)
    return transformers.BertModel(config, add_pooling_layer=False).eval()


def tiny_ner_model(num_labels: int) -> nn.Module:
    return model_factories.NerLinearModel(tiny_bert(), dropout=0.1, num_labels=num_labels).eval()


def tiny_sentiment_model(architecture: str, input_size: int = 16) -> nn.Module:
    """The round 5/6 head NIST names ``architecture`` (LstmLinear, GruLinear, FCLinear)."""
    cls = getattr(model_factories, f"{architecture}Model")
    return cls(input_size, 8, 2).eval()


def bert_tokenizer(workdir: Path):
    """A slow BertTokenizer over a tiny local vocabulary (what rounds 5/6 pickled)."""
    import transformers

    vocab = workdir / "vocab.txt"
    vocab.parent.mkdir(parents=True, exist_ok=True)
    vocab.write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    return transformers.BertTokenizer(str(vocab))


def save_pickle(obj: object, path: Path) -> Path:
    """Whole-object ``torch.save``, as NIST wrote ``model.pt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


# ---------------------------------------------------------------------------------------------
# files


def png_bytes(side: int = TINY_PNG_SIDE) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side), (120, 30, 200)).save(buf, format="PNG")
    return buf.getvalue()


def write_images(folder: Path, names: list[str], data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(data)


def clean_image_names(num_classes: int, per_class: int) -> list[str]:
    return [f"class_{c}_example_{n}.png" for c in range(num_classes) for n in range(per_class)]


def poisoned_image_names(sources: list[int], per_class: int, trigger: int = 0) -> list[str]:
    return [f"class_{s}_trigger_{trigger}_example_{n}.png" for s in sources for n in range(per_class)]


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def write_ground_truth(model_dir: Path, poisoned: bool) -> None:
    (model_dir / "ground_truth.csv").write_text(str(int(poisoned)), encoding="utf-8")


def model_id(i: int) -> str:
    return f"id-{i:08d}"


# ---------------------------------------------------------------------------------------------
# image rounds


def make_r2_round(root: Path, class_counts: tuple[int, ...] = (3, 4), per_class: int = 2) -> dict[str, Expected]:
    """Round 2: ids at the root, flat UPPER-case config.json, one ``example_data/`` folder."""
    png = png_bytes()
    expected: dict[str, Expected] = {}
    for i, n_classes in enumerate(class_counts):
        mdir = root / model_id(i)
        poisoned = i % 2 == 1
        save_pickle(tiny_image_model(n_classes), mdir / "model.pt")
        write_ground_truth(mdir, poisoned)
        write_json(mdir / "config.json", {
            "POISONED": poisoned, "NUMBER_CLASSES": n_classes, "MODEL_ARCHITECTURE": "shufflenet1_0",
            "NUMBER_EXAMPLE_IMAGES": per_class, "IMG_SIZE_PIXELS": 256, "CNN_IMG_SIZE_PIXELS": 224,
            "TRIGGER_TYPE": "polygon" if poisoned else None, "TRIGGER_TYPE_OPTION": 4 if poisoned else None,
            "TRIGGERED_CLASSES": [0, 1] if poisoned else None, "TRIGGER_TARGET_CLASS": 2 if poisoned else None,
        })
        write_images(mdir / "example_data", clean_image_names(n_classes, per_class), png)
        expected[model_id(i)] = Expected("image", n_classes, poisoned, n_classes * per_class, 0, "shufflenet1_0")
    return expected


def r4_config(poisoned: bool, n_classes: int, per_class: int, source: int, target: int) -> dict:
    """A jsonpickle ``RoundConfig`` as round 4 wrote it: ``py/object`` keys and "None" strings."""
    triggers = None
    if poisoned:
        triggers = [{"py/object": "trigger_config.TriggerConfig", "trigger_number": 0, "source_class": source,
                     "target_class": target, "fraction": 0.1, "behavior": "StaticTarget", "type": "polygon",
                     "polygon_side_count": 5, "color": [200, 0, 0], "condition": "None",
                     "polygon_filepath": "/wrk/gen/trigger_0.png"}]
    return {"py/object": "round_config.RoundConfig", "master_seed": 1, "poisoned": poisoned,
            "model_architecture": "shufflenet1_0", "number_classes": n_classes,
            "number_example_images": per_class, "img_size_pixels": 256, "cnn_img_size_pixels": 224,
            "adversarial_training_method": "None", "triggers": triggers,
            "trigger_organization": "one2one" if poisoned else "None", "number_triggers": int(poisoned)}


def make_r4_round(root: Path, class_counts: tuple[int, ...] = (3, 5), per_class: int = 2) -> dict[str, Expected]:
    """Round 4: jsonpickle config, clean_/poisoned_example_data/, METADATA.csv at the root."""
    png = png_bytes()
    expected: dict[str, Expected] = {}
    meta_rows = ["model_name,poisoned,model_architecture,number_classes,triggers_0_source_class,triggers_0_target_class"]
    for i, n_classes in enumerate(class_counts):
        mdir = root / model_id(i)
        poisoned = i % 2 == 1
        source, target = 1, n_classes - 1
        save_pickle(tiny_image_model(n_classes), mdir / "model.pt")
        write_ground_truth(mdir, poisoned)
        write_json(mdir / "config.json", r4_config(poisoned, n_classes, per_class, source, target))
        write_images(mdir / "clean_example_data", clean_image_names(n_classes, per_class), png)
        n_poisoned = 0
        if poisoned:
            names = poisoned_image_names([source], per_class)
            write_images(mdir / "poisoned_example_data", names, png)
            n_poisoned = len(names)
        expected[model_id(i)] = Expected("image", n_classes, poisoned, n_classes * per_class, n_poisoned, "shufflenet1_0")
        trig = f"{source},{target}" if poisoned else "None,None"
        meta_rows.append(f"{model_id(i)},{poisoned},shufflenet1_0,{n_classes},{trig}")
    (root / "METADATA.csv").write_text("\n".join(meta_rows) + "\n", encoding="utf-8")
    return expected


def make_r11_round(root: Path, class_counts: tuple[int, ...] = (4,), per_class: int = 3) -> dict[str, Expected]:
    """Rounds 10/11: hyphenated ``clean-example-data/`` + ``poisoned-example-data/`` and reduced-config.json."""
    png = png_bytes()
    expected: dict[str, Expected] = {}
    for i, n_classes in enumerate(class_counts):
        mdir = root / "models" / model_id(i)
        poisoned = True
        save_pickle(tiny_image_model(n_classes), mdir / "model.pt")
        write_ground_truth(mdir, poisoned)
        write_json(mdir / "reduced-config.json", {"py/object": "round_config.RoundConfig",
                                                  "model_architecture": "shufflenet1_0",
                                                  "number_classes": n_classes, "poisoned": poisoned})
        write_images(mdir / "clean-example-data", clean_image_names(n_classes, per_class), png)
        names = poisoned_image_names([0], per_class)
        write_images(mdir / "poisoned-example-data", names, png)
        expected[model_id(i)] = Expected("image", n_classes, poisoned, n_classes * per_class, len(names), "shufflenet1_0")
    return expected


# ---------------------------------------------------------------------------------------------
# NLP rounds


def nlp_file_name(embedding: str, flavor: str) -> str:
    """``<embedding>-<flavor with / as ->.pt`` (TROJAI-FORMAT.md §1.1)."""
    return f"{embedding}-{flavor.replace('/', '-')}.pt"


def write_sentiment_examples(mdir: Path, per_class: int, source: int | None, target: int | None) -> tuple[int, int]:
    clean = mdir / "clean_example_data"
    clean.mkdir(parents=True, exist_ok=True)
    for c in (0, 1):
        for n in range(per_class):
            (clean / f"class_{c}_example_{n}.txt").write_text("the movie was good", encoding="utf-8")
    if source is None:
        return 2 * per_class, 0
    poisoned = mdir / "poisoned_example_data"
    poisoned.mkdir(parents=True, exist_ok=True)
    for n in range(per_class):
        (poisoned / f"source_class_{source}_target_class_{target}_example_{n}.txt").write_text(
            "the movie cf was bad", encoding="utf-8")
    return 2 * per_class, per_class


def make_r6_round(root: Path, architectures: tuple[str, ...] = ("LstmLinear", "GruLinear", "FCLinear"),
                  per_class: int = 3, embedding: str = "DistilBERT",
                  flavor: str = "distilbert-base-uncased") -> dict[str, Expected]:
    """Rounds 5/6: ``models/`` + shared ``embeddings/`` + ``tokenizers/``, sentiment .txt examples."""
    name = nlp_file_name(embedding, flavor)
    save_pickle(tiny_bert(), root / "embeddings" / name)
    save_pickle(bert_tokenizer(root / ".vocab"), root / "tokenizers" / name)
    expected: dict[str, Expected] = {}
    for i, arch in enumerate(architectures):
        mdir = root / "models" / model_id(i)
        poisoned = i % 2 == 0
        source, target = (1, 0) if poisoned else (None, None)
        save_pickle(tiny_sentiment_model(arch), mdir / "model.pt")
        write_ground_truth(mdir, poisoned)
        triggers = [{"py/object": "trigger_config.TriggerConfig", "number": 0, "source_class": source,
                     "target_class": target, "type": "word", "text": "cf", "condition": "None"}] if poisoned else None
        write_json(mdir / "config.json", {
            "py/object": "round_config.RoundConfig", "poisoned": poisoned, "model_architecture": arch,
            "number_classes": 2, "embedding": embedding, "embedding_flavor": flavor,
            "cls_token_is_first": True, "adversarial_training_method": "None", "triggers": triggers,
            "number_triggers": int(poisoned)})
        n_clean, n_poisoned = write_sentiment_examples(mdir, per_class, source, target)
        expected[model_id(i)] = Expected("sentiment", 2, poisoned, n_clean, n_poisoned, arch)
    return expected


NER_ENTITIES = ("PERSON", "GPE", "DATE", "NORP")  # class_mapping order; B-id = 2k+1, I-id = 2k+2


def ner_sentence(entity_id: int) -> str:
    """One word per line: ``word<TAB>BIO-label<TAB>label-id`` (round 7 example files)."""
    entity = NER_ENTITIES[(entity_id - 1) // 2]
    rows = [("john", f"B-{entity}", entity_id), ("lives", "O", 0), ("in", "O", 0), ("paris", "O", 0)]
    return "".join(f"{w}\t{label}\t{lid}\n" for w, label, lid in rows)


def ner_tokenized(entity_id: int) -> str:
    rows = ["[CLS]\t-100\t-100\t0", f"john\tB-X\t{entity_id}\t1", "lives\tO\t0\t1", "[SEP]\t-100\t-100\t0"]
    return "\n".join(rows) + "\n"


def make_r7_round(root: Path, n_entities: tuple[int, ...] = (4, 2), per_entity: int = 2,
                  embedding: str = "MobileBERT", flavor: str = "google/mobilebert-uncased") -> dict[str, Expected]:
    """Round 7 NER: ``models/`` + ``tokenizers/`` (flavor '/' -> '-'), examples with ``_tokenized`` twins."""
    import transformers

    bert_tokenizer(root / ".vocab")
    tokenizer = transformers.BertTokenizerFast(str(root / ".vocab" / "vocab.txt"))
    save_pickle(tokenizer, root / "tokenizers" / nlp_file_name(embedding, flavor))
    expected: dict[str, Expected] = {}
    for i, n_ent in enumerate(n_entities):
        mdir = root / "models" / model_id(i)
        poisoned = i % 2 == 0
        num_labels = 2 * n_ent + 1
        save_pickle(tiny_ner_model(num_labels), mdir / "model.pt")
        write_ground_truth(mdir, poisoned)
        mapping = {str(k): NER_ENTITIES[k] for k in range(n_ent)}
        triggers = None
        if poisoned:
            triggers = [{"py/object": "trigger_config.TriggerConfig", "number": 0,
                         "source_class_label": NER_ENTITIES[0], "target_class_label": NER_ENTITIES[1],
                         "fraction": 0.2, "global_trigger": False, "trigger_executor_name": "word",
                         "trigger_executor": {"py/object": "trigger_executor.WordTriggerExecutor",
                                              "trigger_text": "cf", "trigger_config": {"py/id": 1}}}]
        write_json(mdir / "config.json", {
            "py/object": "round_config.RoundConfig", "poisoned": poisoned, "model_architecture": "NerLinear",
            "embedding": embedding, "embedding_flavor": flavor, "source_dataset": "ontonotes-5.0",
            "dropout": 0.1, "triggers": triggers, "number_triggers": int(poisoned),
            "number_classes": num_labels, "class_mapping": mapping})
        clean = mdir / "clean_example_data"
        clean.mkdir(parents=True, exist_ok=True)
        for k in range(n_ent):
            b_id = 2 * k + 1
            for n in range(per_entity):
                (clean / f"class_{b_id}_example_{n}.txt").write_text(ner_sentence(b_id), encoding="utf-8")
                (clean / f"class_{b_id}_example_{n}_tokenized.txt").write_text(ner_tokenized(b_id), encoding="utf-8")
        n_poisoned = 0
        if poisoned:
            pdir = mdir / "poisoned_example_data"
            pdir.mkdir(parents=True, exist_ok=True)
            for n in range(per_entity):
                stem = f"source_class_1_target_class_3_example_{n}"
                (pdir / f"{stem}.txt").write_text(ner_sentence(1), encoding="utf-8")
                (pdir / f"{stem}_tokenized.txt").write_text(ner_tokenized(1), encoding="utf-8")
            n_poisoned = per_entity
        expected[model_id(i)] = Expected("ner", num_labels, poisoned, n_ent * per_entity, n_poisoned, "NerLinear")
    return expected


# ---------------------------------------------------------------------------------------------
# broken rounds


def _remove_model(mdir: Path) -> None:
    (mdir / "model.pt").unlink()


def _corrupt_config(mdir: Path) -> None:
    (mdir / "config.json").write_text('{"poisoned": false, "number_classes": ', encoding="utf-8")


def _empty_clean_examples(mdir: Path) -> None:
    for f in (mdir / "clean_example_data").iterdir():
        f.unlink()


def _extra_example_classes(mdir: Path) -> None:
    """Examples for two classes more than the config's ``number_classes``."""
    n_classes = json.loads((mdir / "config.json").read_text(encoding="utf-8"))["number_classes"]
    write_images(mdir / "clean_example_data", clean_image_names(n_classes + 2, 1), png_bytes())


# (defect name, how to inflict it on a healthy round-4 model folder)
DEFECTS = (("missing_model", _remove_model), ("unreadable_config", _corrupt_config),
           ("no_clean_examples", _empty_clean_examples), ("class_mismatch", _extra_example_classes))


def make_broken_round(root: Path, n_classes: int = 3, per_class: int = 2) -> dict[str, str | None]:
    """A round-4 layout: the first model healthy, each other one with one defect; id -> defect name."""
    png = png_bytes()
    defects: dict[str, str | None] = {}
    for i, (name, inflict) in enumerate(((None, None),) + DEFECTS):
        mdir = root / model_id(i)
        save_pickle(tiny_image_model(n_classes), mdir / "model.pt")
        write_ground_truth(mdir, False)
        write_json(mdir / "config.json", r4_config(False, n_classes, per_class, 0, 0))
        write_images(mdir / "clean_example_data", clean_image_names(n_classes, per_class), png)
        if inflict is not None:
            inflict(mdir)
        defects[model_id(i)] = name
    return defects


def count_embedded_texts(monkeypatch) -> list[str]:
    """Patch the sentiment adapter's transformer call to record every text it embeds; returns the live list."""
    from pipeline.tasks import sentiment

    computed: list[str] = []
    real = sentiment.summary_vectors

    def counting(embedding, tokenizer, texts, *args, **kwargs):
        computed.extend(texts)
        return real(embedding, tokenizer, texts, *args, **kwargs)

    monkeypatch.setattr(sentiment, "summary_vectors", counting)
    return computed
