"""The tiny synthetic round: layout the scanner reads, ground truth, gate, real backdoors, seed, resume."""
from __future__ import annotations

import csv
import re
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cli import app
from manifests import scan_round
from manifests.examples import IMAGE_RE
from pipeline.model_loading import load_model
from pipeline.synth import RoundMismatchError, RoundOptions, UnsupportedTaskError, make_round
from pipeline.synth.layout import without_timing
from tests.conftest import TINY_SEED

TINY_CLASSES, TINY_PX = 5, 24


def _configs(root: Path) -> dict[str, dict]:
    return {d.name: json.loads((d / "config.json").read_text()) for d in sorted(root.glob("id-*"))}


def _folder(folder: Path) -> tuple[torch.Tensor, list[re.Match[str]]]:
    files = sorted(folder.iterdir())
    images = np.stack([np.asarray(Image.open(f)) for f in files])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0, [IMAGE_RE.match(f.name) for f in files]


def test_scan_reads_the_round_and_matches_what_was_generated(tiny_image_round: Path) -> None:
    rows = scan_round(tiny_image_round)
    configs = _configs(tiny_image_round)
    assert [r["model_id"] for r in rows] == sorted(configs) and len(rows) == 4
    for row in rows:
        cfg = configs[row["model_id"]]
        assert row["problems"] == []
        assert row["task"] == "image" and row["round_guess"] == "synthetic"
        assert row["num_classes"] == cfg["number_classes"] == TINY_CLASSES
        assert row["architecture"] == cfg["model_architecture"]
        assert row["poisoned"] is cfg["poisoned"]
        assert (Path(row["model_dir"]) / "ground_truth.csv").read_text() == str(int(cfg["poisoned"]))
        assert row["image_crop"] is None  # img_size_pixels == cnn_img_size_pixels: no crop
        assert row["clean_examples_per_class"] == [20] * TINY_CLASSES
        assert row["clean_test_dir"] and row["training_wall_time_s"] > 0
        if cfg["poisoned"]:
            trig = cfg["triggers"][0]
            sources = trig["source_class"] if isinstance(trig["source_class"], list) else [trig["source_class"]]
            assert row["source_classes"] == sources and row["target_class"] == trig["target_class"]
            assert row["trigger_type"] == trig["type"]
            assert row["trigger_option"] == str(trig["polygon_side_count"] or trig["instagram_filter_type"])
            assert row["poisoned_test_dir"] and row["n_poisoned_examples"] == 20 * len(sources)
        else:
            assert cfg["triggers"] is None and row["source_classes"] is None and row["poisoned_test_dir"] is None
    assert sum(r["poisoned"] for r in rows) == 2
    assert {c["triggers"][0]["type"] for c in configs.values() if c["poisoned"]} == {"polygon", "instagram"}


def test_config_metadata_and_files_follow_the_trojai_layout(tiny_image_round: Path) -> None:
    configs = _configs(tiny_image_round)
    with open(tiny_image_round / "METADATA.csv", newline="") as fh:
        meta = {r["model_name"]: r for r in csv.DictReader(fh)}
    assert sorted(meta) == sorted(configs)
    for mid, cfg in configs.items():
        model_dir = tiny_image_round / mid
        assert cfg["py/object"] == "round_config.RoundConfig" and cfg["source"] == "seam make-round"
        assert cfg["img_size_pixels"] == cfg["cnn_img_size_pixels"] == TINY_PX
        for key in ("gate_passed", "gate_attempts", "gate_failures", "final_clean_data_test_acc",
                    "final_triggered_data_test_acc", "training_wall_time_sec", "master_seed"):
            assert key in cfg
            assert key in meta[mid] or key == "gate_failures"  # a list of texts: config.json only
        assert cfg["gate_passed"] is True and cfg["gate_attempts"] >= 1
        assert meta[mid]["poisoned"] == str(cfg["poisoned"])
        example = Image.open(next((model_dir / "clean_example_data").iterdir()))
        assert example.mode == "RGB" and example.size == (TINY_PX, TINY_PX)
        if cfg["poisoned"]:
            trig = cfg["triggers"][0]
            assert trig["py/object"] == "trigger_config.TriggerConfig"
            assert meta[mid]["triggers_0_type"] == trig["type"]
            assert meta[mid]["triggers_0_target_class"] == str(trig["target_class"])
            assert (model_dir / "trigger_0.png").is_file() == (trig["type"] == "polygon")
            names = [f.name for f in (model_dir / "poisoned_example_data").iterdir()]
            assert all(IMAGE_RE.match(n) and IMAGE_RE.match(n).group(2) == "0" for n in names)
        else:
            assert not (model_dir / "poisoned_example_data").exists()
            assert meta[mid]["triggers_0_type"] == "None"


def test_models_meet_the_gate_on_the_written_test_data(tiny_image_round: Path) -> None:
    """Recomputed from the PNG folders: clean ACC >= 90%, and poisoned models' backdoors really fire."""
    for mid, cfg in _configs(tiny_image_round).items():
        model = load_model(tiny_image_round / mid / "model.pt")
        x, matches = _folder(tiny_image_round / mid / "clean_test_data")
        with torch.no_grad():
            acc = (model(x).argmax(1).numpy() == np.array([int(m.group(1)) for m in matches])).mean()
        assert acc >= 0.9 and acc == pytest.approx(cfg["final_clean_data_test_acc"], abs=1e-6)
        if cfg["poisoned"]:
            x, _ = _folder(tiny_image_round / mid / "poisoned_test_data")
            with torch.no_grad():
                asr = (model(x).argmax(1) == cfg["triggers"][0]["target_class"]).float().mean().item()
            assert asr >= 0.9 and asr == pytest.approx(cfg["final_triggered_data_test_acc"], abs=1e-6)
            assert acc >= cfg["gate_reference_clean_acc"] - 0.03


def _files(model_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(model_dir)): p.read_bytes() for p in sorted(model_dir.rglob("*.png"))}


def test_resume_after_a_killed_build_is_reproducible_by_seed(tiny_image_round: Path, tmp_path: Path) -> None:
    """Build model 0, leave a half-written model 1 behind, finish through the CLI: same bytes as the fixture."""
    out = tmp_path / "round"
    make_round(RoundOptions(out=out, seed=TINY_SEED, preset="tiny", models=1, threads=1))
    first = (out / "id-00000000" / "model.pt").stat().st_mtime_ns
    partial = out / ".id-00000001.tmp"
    (partial / "clean_example_data").mkdir(parents=True)
    (partial / "clean_example_data" / "class_0_example_0.png").write_bytes(b"half")
    result = CliRunner().invoke(app, ["make-round", str(out), "--task", "image", "--models", "2", "--seed",
                                      str(TINY_SEED), "--preset", "tiny", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert (out / "id-00000000" / "model.pt").stat().st_mtime_ns == first  # complete model kept, not rebuilt
    assert not partial.exists() and sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    for mid in ("id-00000000", "id-00000001"):
        assert _files(out / mid) == _files(tiny_image_round / mid)
        assert without_timing(json.loads((out / mid / "config.json").read_text())) == \
            without_timing(json.loads((tiny_image_round / mid / "config.json").read_text()))
    assert [r["model_id"] for r in scan_round(out)] == ["id-00000000", "id-00000001"]
    with pytest.raises(RoundMismatchError):
        make_round(RoundOptions(out=out, seed=TINY_SEED + 1, preset="tiny", models=2, threads=1))


def test_unknown_tasks_are_refused_with_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["make-round", str(tmp_path / "r"), "--task", "video"])
    assert result.exit_code == 2 and "not yet supported" in result.output
    assert not (tmp_path / "r").exists()
    with pytest.raises(UnsupportedTaskError, match="not yet supported"):
        make_round(RoundOptions(out=tmp_path / "r", task="sentiment"))  # NLP rounds have their own generator
