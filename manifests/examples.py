"""Example folders and file names of the TrojAI rounds (TROJAI-FORMAT.md §4, §8)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

CLEAN_DIRS = ("clean_example_data", "clean-example-data", "example_data", "example-data")
POISONED_DIRS = ("poisoned_example_data", "poisoned-example-data")
CLEAN_TEST_DIRS = ("clean_test_data", "clean-test-data")
POISONED_TEST_DIRS = ("poisoned_test_data", "poisoned-test-data")

IMAGE_RE = re.compile(r"^class_(\d+)(?:_trigger_(\d+))?_example_(\d+)\.png$")
TEXT_RE = re.compile(r"^(?:class_(\d+)|source_class_(\d+)_target_class_(\d+))_example_(\d+)(_tokenized)?\.txt$")


@dataclass(frozen=True)
class Example:
    """One example file: the class it shows (for triggered files, its source class)."""

    path: str
    label: int
    target: int | None = None  # target class of a triggered text example, when the name says it
    trigger: int | None = None  # trigger index of a triggered image example


def find_dir(model_dir: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        candidate = model_dir / name
        if candidate.is_dir():
            return candidate
    return None


def list_examples(folder: Path | None) -> tuple[str | None, list[Example]]:
    """Return (kind, examples): kind is "image" or "text"; ``_tokenized`` copies are skipped."""
    if folder is None:
        return None, []
    images: list[Example] = []
    texts: list[Example] = []
    with os.scandir(folder) as it:
        names = sorted(entry.name for entry in it if entry.is_file())
    for name in names:
        m = IMAGE_RE.match(name)
        if m:
            images.append(Example(str(folder / name), int(m.group(1)), trigger=_opt_int(m.group(2))))
            continue
        m = TEXT_RE.match(name)
        if m and not m.group(5):
            if m.group(1) is not None:
                texts.append(Example(str(folder / name), int(m.group(1))))
            else:
                texts.append(Example(str(folder / name), int(m.group(2)), target=int(m.group(3))))
    if images:
        return "image", images
    if texts:
        return "text", texts
    return None, []


def _opt_int(text: str | None) -> int | None:
    return None if text is None else int(text)


def is_ner_file(path: str) -> bool:
    """NER example files hold one ``word<TAB>label<TAB>id`` line per word."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        line = fh.readline()
    return line.count("\t") >= 2
