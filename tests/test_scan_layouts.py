"""``manifests.scan_round`` on every TrojAI layout the tool claims to read (built on the fly)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from manifests import scan_round
from manifests.io import load_manifest, write_manifest
from tests import roundfixtures as rf

BUILDERS: dict[str, Callable[[Path], dict[str, rf.Expected]]] = {
    "r2": rf.make_r2_round,
    "r4": rf.make_r4_round,
    "r5r6": rf.make_r6_round,
    "r7": rf.make_r7_round,
    "r10r11": rf.make_r11_round,
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def built_round(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(layout name, root, expected facts, scanned rows by model id) for one layout."""
    root = tmp_path_factory.mktemp(f"round-{request.param}")
    expected = BUILDERS[request.param](root)
    rows = {row["model_id"]: row for row in scan_round(root)}
    return request.param, root, expected, rows


def test_every_model_is_listed_without_problems(built_round) -> None:
    _, _, expected, rows = built_round
    assert sorted(rows) == sorted(expected)
    assert {mid: row["problems"] for mid, row in rows.items()} == {mid: [] for mid in expected}


@pytest.mark.parametrize("field,attr", [("task", "task"), ("num_classes", "num_classes"), ("poisoned", "poisoned"),
                                        ("n_clean_examples", "n_clean"), ("n_poisoned_examples", "n_poisoned"),
                                        ("architecture", "architecture")])
def test_row_facts_match_what_was_built(built_round, field: str, attr: str) -> None:
    _, _, expected, rows = built_round
    assert {mid: rows[mid][field] for mid in expected} == {mid: getattr(e, attr) for mid, e in expected.items()}


def test_model_and_example_paths_exist(built_round) -> None:
    _, root, _, rows = built_round
    for row in rows.values():
        assert Path(row["model_file"]).is_file()
        assert Path(row["clean_example_dir"]).is_dir()
        assert Path(row["model_dir"]).parent in (root, root / "models")


def test_manifest_parquet_round_trip(built_round, tmp_path: Path) -> None:
    _, _, _, rows = built_round
    path = write_manifest(list(rows.values()), tmp_path / "manifest.parquet")
    back = {r["model_id"]: r for r in load_manifest(path)}
    assert back.keys() == rows.keys()
    for mid, row in rows.items():
        assert back[mid]["problems"] == row["problems"]
        assert back[mid]["num_classes"] == row["num_classes"]
        assert back[mid]["source_classes"] == row["source_classes"]


def test_round_guesses(tmp_path: Path) -> None:
    guesses = {}
    for name, build in BUILDERS.items():
        root = tmp_path / name
        build(root)
        guesses[name] = {row["round_guess"] for row in scan_round(root)}
    assert guesses == {"r2": {"r2"}, "r4": {"r4"}, "r5r6": {"r5/r6"}, "r7": {"r7"}, "r10r11": {"r10/r11"}}


def test_r2_flat_upper_case_triggers(tmp_path: Path) -> None:
    rf.make_r2_round(tmp_path)
    for row in scan_round(tmp_path):
        cfg = json.loads((Path(row["model_dir"]) / "config.json").read_text())
        assert row["source_classes"] == cfg["TRIGGERED_CLASSES"]
        assert row["target_class"] == cfg["TRIGGER_TARGET_CLASS"]
        assert row["image_crop"] == cfg["CNN_IMG_SIZE_PIXELS"]


def test_r4_jsonpickle_triggers_and_none_strings(tmp_path: Path) -> None:
    rf.make_r4_round(tmp_path)
    rows = scan_round(tmp_path)
    assert any(r["poisoned"] for r in rows) and not all(r["poisoned"] for r in rows)
    for row in rows:
        cfg = json.loads((Path(row["model_dir"]) / "config.json").read_text())
        triggers = cfg["triggers"] or []
        assert row["source_classes"] == ([t["source_class"] for t in triggers] or None)
        assert row["target_class"] == (triggers[0]["target_class"] if triggers else None)
        assert row["trigger_type"] == (triggers[0]["type"] if triggers else None)
        stored = json.loads(row["triggers_json"]) if row["triggers_json"] else []
        assert [t["polygon_side_count"] for t in stored] == [t["polygon_side_count"] for t in triggers]
        assert all(not k.startswith("py/") and v != "None" for t in stored for k, v in t.items())


def test_r4_metadata_alone_gives_the_poisoned_flag(tmp_path: Path) -> None:
    """Without config.json and ground_truth.csv the METADATA.csv row still tells the flag."""
    expected = rf.make_r4_round(tmp_path)
    for mid in expected:
        (tmp_path / mid / "config.json").unlink()
        (tmp_path / mid / "ground_truth.csv").unlink()
    rows = {r["model_id"]: r for r in scan_round(tmp_path)}
    assert {mid: rows[mid]["poisoned"] for mid in expected} == {mid: e.poisoned for mid, e in expected.items()}


def test_ground_truth_wins_over_config(tmp_path: Path) -> None:
    expected = rf.make_r4_round(tmp_path)
    mid = next(iter(expected))
    rf.write_ground_truth(tmp_path / mid, not expected[mid].poisoned)
    row = next(r for r in scan_round(tmp_path) if r["model_id"] == mid)
    assert row["poisoned"] is (not expected[mid].poisoned)


def test_r6_embedding_and_tokenizer_files(tmp_path: Path) -> None:
    rf.make_r6_round(tmp_path, embedding="GPT-2", flavor="gpt2")
    for row in scan_round(tmp_path):
        assert Path(row["embedding_file"]) == tmp_path / "embeddings" / "GPT-2-gpt2.pt"
        assert Path(row["tokenizer_file"]) == tmp_path / "tokenizers" / "GPT-2-gpt2.pt"
        assert row["cls_token_is_first"] is True  # the config says so; it beats the name rule


def test_r6_missing_embedding_is_a_problem(tmp_path: Path) -> None:
    rf.make_r6_round(tmp_path)
    for f in (tmp_path / "embeddings").iterdir():
        f.unlink()
    rows = scan_round(tmp_path)
    assert all(any("missing embedding file" in p for p in r["problems"]) for r in rows)


def test_r7_skips_tokenized_copies_and_maps_trigger_labels(tmp_path: Path) -> None:
    rf.make_r7_round(tmp_path)
    for row in scan_round(tmp_path):
        clean_dir = Path(row["clean_example_dir"])
        on_disk = list(clean_dir.iterdir())
        assert row["n_clean_examples"] == len([p for p in on_disk if not p.stem.endswith("_tokenized")])
        assert row["n_clean_examples"] < len(on_disk)
        assert Path(row["tokenizer_file"]).name == "MobileBERT-google-mobilebert-uncased.pt"
        assert Path(row["tokenizer_file"]).is_file()
        assert row["embedding_file"] is None
        mapping = json.loads(row["class_mapping_json"])
        b_ids = {name: 2 * int(k) + 1 for k, name in mapping.items()}
        if row["poisoned"]:
            cfg = json.loads((Path(row["model_dir"]) / "config.json").read_text())
            trig = cfg["triggers"][0]
            assert row["source_classes"] == [b_ids[trig["source_class_label"]]]
            assert row["target_class"] == b_ids[trig["target_class_label"]]
            assert row["trigger_text"] == trig["trigger_executor"]["trigger_text"]
        else:
            assert row["source_classes"] is None and row["target_class"] is None


def test_r1_layout_without_config_counts_classes_from_examples(tmp_path: Path) -> None:
    """Round 1 ships only model.pt, ground_truth.csv and example_data/."""
    n_classes, per_class = 5, 2
    mdir = tmp_path / rf.model_id(0)
    rf.save_pickle(rf.tiny_image_model(n_classes), mdir / "model.pt")
    rf.write_ground_truth(mdir, True)
    rf.write_images(mdir / "example_data", rf.clean_image_names(n_classes, per_class), rf.png_bytes())
    (row,) = scan_round(tmp_path)
    assert (row["task"], row["num_classes"], row["poisoned"], row["round_guess"]) == ("image", n_classes, True, "r1")
    assert row["clean_examples_per_class"] == [per_class] * n_classes
