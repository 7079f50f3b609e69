"""Index a TrojAI round directory into manifest rows (one per model, broken ones included)."""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from manifests import examples as ex
from manifests.config import as_bool, first, read_config, read_ground_truth, read_metadata
from manifests.triggers import trigger_facts

SENTIMENT_ARCHS = {"lstmlinear", "grulinear", "fclinear", "linear"}
NER_ARCHS = {"nerlinear"}
MODEL_DIR_RE = re.compile(r"^id-\d+$")
# torchvision architecture keys of rounds 1-4 (``resnet50``, ``densenet121``, ``squeezenetv1_0``, ...).
IMAGE_ARCH_RE = re.compile(r"^(resnet|wideresnet|wide_resnet|densenet|googlenet|inception|squeezenet|mobilenet|"
                           r"shufflenet|vgg|alexnet)", re.IGNORECASE)


class NotARoundError(ValueError):
    """The directory holds no TrojAI model folders at all."""


def find_model_dirs(root: Path) -> tuple[list[Path], bool]:
    """Model folders (``id-*``) under ``models/`` (rounds 5+) or at the root (rounds 1-4)."""
    nested = root / "models"
    base = nested if nested.is_dir() else root
    with os.scandir(base) as it:
        dirs = sorted(Path(e.path) for e in it if e.is_dir() and MODEL_DIR_RE.match(e.name))
    return dirs, base is nested


def _task(arch: str | None, kind: str | None, first_example: str | None, cfg: dict[str, Any]) -> str | None:
    key = (arch or "").lower()
    if key in SENTIMENT_ARCHS:
        return "sentiment"
    if key in NER_ARCHS:
        return "ner"
    if IMAGE_ARCH_RE.match(key):  # known even when the example folder is empty or missing
        return "image"
    if kind == "image":
        return "image"
    if kind == "text" and first_example:
        return "ner" if ex.is_ner_file(first_example) else "sentiment"
    if cfg.get("embedding"):
        return "ner" if cfg.get("class_mapping") else "sentiment"
    return None


def _round_guess(cfg: dict[str, Any], raw_upper: bool, task: str | None, clean_dir: Path | None,
                 config_state: str) -> str | None:
    """Best guess of the TrojAI round; ``config_state`` is "ok", "missing" or "unreadable"."""
    if cfg.get("source") == "seam make-round":
        return "synthetic"
    if task == "ner":
        return "r7"
    if task == "sentiment":
        return "r5/r6"
    if task != "image":
        return None
    folder = clean_dir.name if clean_dir else ""
    if "-" in folder:
        return "r10/r11"
    if raw_upper:
        return "r2" if folder == "example_data" else "r3"
    if config_state == "unreadable":  # says nothing about the round
        return None
    if config_state == "missing":  # only round 1 ships no config.json (METADATA.csv may still fill cfg)
        return "r1"
    return "r4"


def _image_crop(cfg: dict[str, Any], guess: str | None) -> int | None:
    cnn, img = cfg.get("cnn_img_size_pixels"), cfg.get("img_size_pixels")
    if cnn is not None:
        return int(cnn) if img is None or int(cnn) < int(img) else None
    return 224 if guess in ("r2", "r3", "r4") else None


def _has_upper_keys(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return '"POISONED"' in head or '"MODEL_ARCHITECTURE"' in head


def _nlp_files(root: Path, cfg: dict[str, Any], task: str | None, problems: list[str]) -> dict[str, Any]:
    embedding, flavor = cfg.get("embedding"), cfg.get("embedding_flavor")
    out: dict[str, Any] = {"embedding": embedding, "embedding_flavor": flavor, "embedding_file": None,
                           "tokenizer_file": None, "cls_token_is_first": None}
    if task not in ("sentiment", "ner"):
        return out
    if not embedding or not flavor:
        problems.append("config names no embedding/embedding_flavor (needed to find tokenizer/embedding files)")
        return out
    name = f"{embedding}-{str(flavor).replace('/', '-')}.pt"
    tokenizer = root / "tokenizers" / name
    out["tokenizer_file"] = str(tokenizer)
    if not tokenizer.is_file():
        problems.append(f"missing tokenizer file {tokenizer}")
    if task == "sentiment":
        emb = root / "embeddings" / name
        out["embedding_file"] = str(emb)
        if not emb.is_file():
            problems.append(f"missing embedding file {emb}")
        cls_first = as_bool(cfg.get("cls_token_is_first"))
        out["cls_token_is_first"] = ("BERT" in str(embedding)) if cls_first is None else cls_first
    return out


def _check_classes(task: str | None, num_classes: int | None, labels: list[int], problems: list[str]) -> int | None:
    if task == "ner":
        if num_classes is not None and labels and max(labels) >= num_classes:
            problems.append(f"example label id {max(labels)} is outside the {num_classes} BIO labels")
        return num_classes
    if not labels:
        return num_classes
    seen = set(labels)
    if num_classes is None:
        return max(seen) + 1
    if max(seen) >= num_classes or len(seen) != num_classes:
        problems.append(f"config says {num_classes} classes but clean examples show classes "
                        f"{sorted(seen)[:10]}{'...' if len(seen) > 10 else ''} ({len(seen)} distinct)")
    return num_classes


def scan_model(model_dir: Path, round_name: str, root: Path, metadata: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One manifest row; every problem found is recorded, nothing raises for a broken model."""
    problems: list[str] = []
    model_id = model_dir.name
    model_file = model_dir / "model.pt"
    if not model_file.is_file():
        problems.append(f"missing model file {model_file}")
    elif model_file.stat().st_size == 0:
        problems.append(f"empty model file {model_file}")

    cfg: dict[str, Any] = dict((metadata or {}).get(model_id, {}))
    raw_upper = False
    config_state = "missing"
    for cfg_name in ("config.json", "reduced-config.json"):
        cfg_path = model_dir / cfg_name
        if cfg_path.is_file():
            config_state = "ok"
            try:
                cfg.update({k: v for k, v in read_config(cfg_path).items() if v is not None or k not in cfg})
                raw_upper = _has_upper_keys(cfg_path)
            except (OSError, ValueError) as exc:
                problems.append(f"unreadable {cfg_path}: {exc}")
                config_state = "unreadable"
            break

    poisoned = as_bool(cfg.get("poisoned"))
    gt_path = model_dir / "ground_truth.csv"
    if gt_path.is_file():
        try:
            poisoned = read_ground_truth(gt_path)
        except (OSError, ValueError) as exc:
            problems.append(f"unreadable {gt_path}: {exc}")

    clean_dir = ex.find_dir(model_dir, ex.CLEAN_DIRS)
    poisoned_dir = ex.find_dir(model_dir, ex.POISONED_DIRS)
    kind, clean = ex.list_examples(clean_dir)
    _, poisoned_examples = ex.list_examples(poisoned_dir)
    if not clean:
        where = clean_dir if clean_dir else f"{model_dir} (no {'/'.join(ex.CLEAN_DIRS[:3])} folder)"
        problems.append(f"no clean examples in {where}")

    arch = first(cfg, "model_architecture")
    task = _task(arch, kind, clean[0].path if clean else None, cfg)
    if task is None:
        problems.append("cannot tell the task (no known architecture and no recognisable examples)")
    raw_classes = first(cfg, "number_classes")
    num_classes = _check_classes(task, None if raw_classes is None else int(raw_classes),
                                 [e.label for e in clean], problems)
    guess = _round_guess(cfg, raw_upper, task, clean_dir, config_state)
    trig = trigger_facts(cfg) if poisoned is not False else trigger_facts({})
    per_class = Counter(e.label for e in clean)
    wall = first(cfg, "training_wall_time_sec", "training_wall_time_s")
    row = {
        "round": round_name,
        "model_id": model_id,
        "model_dir": str(model_dir),
        "model_file": str(model_file),
        "round_guess": guess,
        "task": task,
        "architecture": None if arch is None else str(arch),
        "num_classes": num_classes,
        "poisoned": poisoned,
        **trig,
        "triggers_json": json.dumps(cfg.get("triggers")) if cfg.get("triggers") else None,
        "clean_example_dir": str(clean_dir) if clean_dir else None,
        "poisoned_example_dir": str(poisoned_dir) if poisoned_dir else None,
        "clean_test_dir": _opt_str(ex.find_dir(model_dir, ex.CLEAN_TEST_DIRS)),
        "poisoned_test_dir": _opt_str(ex.find_dir(model_dir, ex.POISONED_TEST_DIRS)),
        "n_clean_examples": len(clean),
        "n_poisoned_examples": len(poisoned_examples),
        "clean_examples_per_class": [per_class.get(c, 0) for c in range(max(per_class) + 1)] if per_class else [],
        "image_crop": _image_crop(cfg, guess) if task == "image" else None,
        "class_mapping_json": json.dumps(cfg["class_mapping"]) if isinstance(cfg.get("class_mapping"), dict) else None,
        "training_wall_time_s": None if wall is None else float(wall),
        "problems": problems,
    }
    row.update(_nlp_files(root, cfg, task, problems))
    return row


def _opt_str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def scan_round(root: str | os.PathLike, round_name: str | None = None) -> list[dict[str, Any]]:
    """Scan every model folder of a round; raises NotARoundError when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise NotARoundError(f"{root}: not a directory")
    model_dirs, _ = find_model_dirs(root)
    if not model_dirs:
        raise NotARoundError(f"{root}: not a TrojAI round (no id-* model folders at the root or under models/)")
    metadata: dict[str, dict[str, Any]] = {}
    meta_problem = None
    meta_path = root / "METADATA.csv"
    if meta_path.is_file():
        try:
            metadata = read_metadata(meta_path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            meta_problem = f"unreadable {meta_path}: {exc}"
    name = round_name or root.resolve().name
    rows = [scan_model(d, name, root, metadata) for d in model_dirs]
    if meta_problem:
        for row in rows:
            row["problems"].append(meta_problem)
    return rows


def scan_one(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Manifest row of a single model folder, with its round root (for METADATA, embeddings) inferred."""
    model_dir = Path(model_dir).resolve()
    if not model_dir.is_dir():
        raise NotARoundError(f"{model_dir}: not a model directory")
    root = model_dir.parent.parent if model_dir.parent.name == "models" else model_dir.parent
    metadata: dict[str, dict[str, Any]] = {}
    if (root / "METADATA.csv").is_file():
        try:
            metadata = read_metadata(root / "METADATA.csv")
        except (OSError, ValueError, UnicodeDecodeError):
            metadata = {}
    return scan_model(model_dir, root.name, root, metadata)
