"""The soft-token adversary for round-7 style NER models (seam-adv on token ids)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from manifests.scan import scan_round
from pipeline.methods.token_adversary import PhraseSearch, TokenAdversary, insert_at, other_type_mask
from pipeline.per_model import process_model
from pipeline.registry import method_config
from tests import roundfixtures as rf


def test_insert_at_puts_the_fill_before_each_rows_position() -> None:
    values = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = insert_at(values, torch.tensor([1, 2]), torch.tensor(9))
    assert out.tolist() == [[1, 9, 2, 3], [4, 5, 9, 6]]
    vectors = torch.arange(12.0).view(2, 3, 2)  # [B, T, H]: the fill is a whole vector
    out = insert_at(vectors, torch.tensor([0, 3]), torch.tensor([-1.0, -2.0]))
    assert out[0].tolist() == [[-1, -2], [0, 1], [2, 3], [4, 5]]
    assert out[1].tolist() == [[6, 7], [8, 9], [10, 11], [-1, -2]]


@pytest.mark.parametrize("tokens", [1, 2])
def test_soft_tokens_stay_in_the_vocabulary_box_and_climb_the_entity_loss(tokens: int) -> None:
    torch.manual_seed(0)
    model = rf.tiny_ner_model(5)
    for p in model.parameters():
        p.requires_grad_(False)  # only the soft token moves here
    ids = torch.randint(1, len(rf.BERT_VOCAB), (8, 10))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    labels = torch.randint(1, 5, (8, 10))
    labels[:, ::2] = 0  # the background label is the most frequent one
    labels[:, 0] = -100
    adversary = TokenAdversary(model, eps=0.2, weight=1.0, generator=torch.Generator().manual_seed(0), tokens=tokens)
    assert adversary.applies

    def entity_loss() -> float:
        with torch.no_grad():
            logits, mask = adversary.logits(inputs, adversary.vector, torch.full((8,), 3))
        shifted = torch.cat([labels[:, :3], torch.full((8, tokens), -100), labels[:, 3:]], 1)
        assert mask.shape == (8, 10 + tokens) and bool(mask.all())
        keep = shifted > 0
        return float(torch.nn.functional.cross_entropy(logits[keep], shifted[keep]))

    before = entity_loss()
    for _ in range(30):
        loss = adversary(inputs, None, labels)
        assert loss is not None and loss.requires_grad
    assert entity_loss() > before
    assert adversary.vector.shape == (tokens, 16)
    table = model.transformer.get_input_embeddings().weight
    assert bool((adversary.vector >= table.min(0).values - 1e-6).all())
    assert bool((adversary.vector <= table.max(0).values + 1e-6).all())
    assert float(adversary.vector.norm(dim=-1).max()) <= float(table.norm(dim=1).max()) + 1e-5


def test_other_type_mask_follows_round_7s_bio_layout() -> None:
    mask = other_type_mask(9)  # O, B-MISC, I-MISC, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC
    assert mask is not None and mask.shape == (9, 9)
    assert not bool(mask[0].any()) and not bool(mask[:, 0].any())  # O is neither a source nor a goal
    assert mask[3].tolist() == [False, True, True, False, False, True, True, True, True]  # B-PER: not PER, not O
    assert mask[4].tolist() == mask[3].tolist()  # I-PER: the same goals
    assert other_type_mask(8) is None and other_type_mask(3) is None  # not 1 + 2k entity labels: no type layout


def test_type_objective_climbs_towards_another_entity_type() -> None:
    torch.manual_seed(0)
    model = rf.tiny_ner_model(5)  # O, B-X, I-X, B-Y, I-Y
    for p in model.parameters():
        p.requires_grad_(False)
    ids = torch.randint(1, len(rf.BERT_VOCAB), (8, 10))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    labels = torch.randint(1, 5, (8, 10))
    labels[:, ::2] = 0
    labels[:, 0] = -100
    adversary = TokenAdversary(model, eps=0.2, weight=1.0, generator=torch.Generator().manual_seed(0), tokens=2,
                               objective="type", num_classes=5)
    goal = other_type_mask(5)

    def other_type_share() -> float:
        with torch.no_grad():
            logits, _ = adversary.logits(inputs, adversary.vector, torch.full((8,), 3))
        shifted = torch.cat([labels[:, :3], torch.full((8, 2), -100), labels[:, 3:]], 1)
        keep = shifted > 0
        probs = logits[keep].softmax(-1)
        return float((probs * goal[shifted[keep]]).sum(-1).mean())

    before = other_type_share()
    for _ in range(30):
        adversary(inputs, None, labels)
    assert other_type_share() > before
    with pytest.raises(ValueError, match="objective"):
        TokenAdversary(model, eps=0.1, weight=1.0, generator=torch.Generator(), objective="nope")


def test_soft_token_adversary_leaves_models_without_an_embedding_path_alone() -> None:
    head = torch.nn.Linear(4, 2)
    adversary = TokenAdversary(head, eps=0.1, weight=1.0, generator=torch.Generator())
    assert not adversary.applies
    assert adversary({"input_ids": torch.zeros(2, 3, dtype=torch.long)}, None, torch.zeros(2, 3, dtype=torch.long)) is None


def test_seam_adv_uses_the_soft_token_on_a_tiny_ner_round(tiny_ner_round: Path) -> None:
    row = next(r for r in scan_round(tiny_ner_round) if r["poisoned"])
    result = process_model(row, "seam-adv", None, device="cpu")
    assert result["status"] == "ok", result.get("error")
    trace = json.loads(result["trace_json"])
    assert trace["adv_applies"] is True
    config = json.loads(result["config_json"])
    assert (config["adv_token_objective"], config["adv_token_search"]) == ("type", "probe")  # seam-adv's defaults
    assert (config["adv_probe_per_type"], config["adv_probe_min_flip"], config["recover_patience"]) == (True, 0.5, 10)
    assert result["num_classes"] == 9 and trace["adv_objective"] == "type"  # O + B/I of 4 types: the type layout
    assert result["asr_after"] < 0.5 * result["asr_before"]
    assert result["acc_after"] > 0.8 * result["acc_before"]


def _batch(seed: int = 0) -> tuple[dict, torch.Tensor]:
    torch.manual_seed(seed)
    ids = torch.randint(5, len(rf.BERT_VOCAB), (8, 10))
    labels = torch.randint(1, 5, (8, 10))
    labels[:, ::2] = 0
    labels[:, 0] = -100
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, labels


def test_phrase_search_swaps_only_to_allowed_tokens_and_each_swap_climbs_its_batch() -> None:
    """With every allowed token a candidate, each call leaves its position at the batch's best token."""
    torch.manual_seed(0)
    model = rf.tiny_ner_model(5)
    for p in model.parameters():
        p.requires_grad_(False)
    allowed = torch.tensor([5, 6, 7, 8, 9, 10, 11])
    search = PhraseSearch(model, 1.0, torch.Generator().manual_seed(0), tokens=2, objective="type", num_classes=5,
                          allowed=allowed, candidates=len(allowed) - 1)
    assert search.applies and set(search.ids.tolist()) <= set(allowed.tolist())
    positions = torch.full((8,), 3)
    for step in range(8):
        inputs, labels = _batch(step)
        flat = torch.cat([labels[:, :3], torch.full((8, 2), -100), labels[:, 3:]], 1).reshape(-1)
        before = search.ids.clone()
        live = search.vector.clone().requires_grad_(True)
        logits, _ = search.logits(inputs, live, positions)
        flat_logits = logits.reshape(-1, logits.shape[-1])
        search.climb(live, search.ascent(flat_logits, flat, flat_logits.new_zeros(())), inputs, positions, flat)
        assert set(search.ids.tolist()) <= set(allowed.tolist())
        assert int((search.ids != before).sum()) <= 1  # one position at a time
        i = step % 2
        alternatives = search.ids.repeat(len(allowed), 1)
        alternatives[:, i] = allowed
        scores = search.score(inputs, positions, flat, torch.cat([search.ids[None], before[None], alternatives]))
        assert float(scores[0]) >= float(scores[1:].max()) - 1e-6  # no better token left at that position
    loss = search(inputs, None, labels)  # as recovery calls it: the training loss with the phrase inserted
    assert loss is not None and torch.isfinite(loss)


def test_a_held_phrase_does_not_move() -> None:
    torch.manual_seed(0)
    model = rf.tiny_ner_model(5)
    search = PhraseSearch(model, 1.0, torch.Generator().manual_seed(0), tokens=2, objective="type", num_classes=5)
    search.searching = False
    held = search.ids.clone()
    inputs, labels = _batch(1)
    for _ in range(4):
        assert search(inputs, None, labels).requires_grad  # recovery still trains on it
    assert torch.equal(search.ids, held) and search.swaps == 0


def _held_phrase(**insertion):
    """A 3-token PhraseSearch (ids 5, 6, 7) that goes in whole while searching, then held; and a reader of the token
    ids one training batch gets."""
    torch.manual_seed(0)
    model = rf.tiny_ner_model(5)
    search = PhraseSearch(model, 1.0, torch.Generator().manual_seed(0), tokens=3, objective="type", num_classes=5,
                          **insertion)
    search.ids = torch.tensor([5, 6, 7])
    assert torch.equal(search.inserted(), search.vector)
    search.searching = False
    table = search.table()
    return search, lambda: tuple(int((table == row).all(1).nonzero()[0]) for row in search.inserted())


def test_a_held_phrase_in_pieces_inserts_random_subsets_of_its_tokens() -> None:
    """``pieces``: while searching the whole phrase goes in; once held, each batch gets a non-empty subset of its
    tokens in some order, every size and every single token turning up, and training still works."""
    search, inserted_ids = _held_phrase(pieces=True)
    seen_sizes, seen_singles = set(), set()
    for _ in range(60):
        ids = inserted_ids()
        assert 1 <= len(ids) <= 3 and len(set(ids)) == len(ids) and set(ids) <= {5, 6, 7}
        seen_sizes.add(len(ids))
        if len(ids) == 1:
            seen_singles.add(ids[0])
    assert seen_sizes == {1, 2, 3} and seen_singles == {5, 6, 7}
    inputs, labels = _batch(0)
    assert search(inputs, None, labels).requires_grad
    assert torch.equal(search.ids, torch.tensor([5, 6, 7]))  # the held phrase itself never moves


def test_a_held_phrase_shuffled_inserts_all_its_tokens_in_every_order() -> None:
    """``shuffle``: while searching the phrase goes in as it is; once held, each batch gets all of its tokens in a
    random order, all six orders of three tokens turning up, and the held phrase itself never moves."""
    search, inserted_ids = _held_phrase(shuffle=True)
    orders = set()
    for _ in range(60):
        ids = inserted_ids()
        assert sorted(ids) == [5, 6, 7]
        orders.add(ids)
    assert len(orders) == 6
    inputs, labels = _batch(0)
    assert search(inputs, None, labels).requires_grad
    assert torch.equal(search.ids, torch.tensor([5, 6, 7]))


def test_phrase_search_warmed_on_the_original_model_finds_the_trigger_word(tiny_ner_round: Path) -> None:
    """The tiny round's trigger is 'while the kettle was boiling': a phrase of real tokens climbed on the original
    poisoned model picks up one of its words, and recovery holding it removes the backdoor."""
    row = next(r for r in scan_round(tiny_ner_round) if r["poisoned"])
    overrides = {"adv_token_search": "both", "adv_warmup_epochs": 10, "adv_search_in_recovery": False}
    result = process_model(row, "seam-adv", overrides, device="cpu")
    assert result["status"] == "ok", result.get("error")
    trace = json.loads(result["trace_json"])
    assert trace["adversary"] == "TokenAdversary+PhraseSearch"
    assert trace["adv_phrase"] == trace["adv_phrase_warmup"] and len(trace["adv_phrase_ids"]) == 3
    trigger = json.loads(row["triggers_json"])[0]["trigger_executor"]["trigger_text_list"]
    assert set(trace["adv_phrase"].split()) & set(trigger), (trace["adv_phrase"], trigger)
    assert result["asr_after"] < 0.5 * result["asr_before"]
    assert result["acc_after"] > 0.8 * result["acc_before"]
    # the found phrase flips more of the clean repair sentences' entities on the poisoned model than the
    # phrase found on the clean model does there: the blind signal the trace records
    clean_row = next(r for r in scan_round(tiny_ner_round) if not r["poisoned"])
    clean_trace = json.loads(process_model(clean_row, "seam-adv", overrides, device="cpu")["trace_json"])
    assert 0 <= clean_trace["adv_phrase_flip_warmup"] < trace["adv_phrase_flip_warmup"] <= 1


def test_a_probed_phrase_is_held_only_when_it_stands_out_and_otherwise_changes_nothing(tiny_ner_round: Path) -> None:
    """``probe``: the real-token phrase searched on the original poisoned model is held in recovery when its flip
    rate reaches the threshold; a clean model's phrase, below it, is dropped and the repair is exactly the soft
    phrase's (the probe draws from its own generators and leaves the weights as they were)."""
    rows = scan_round(tiny_ner_round)
    poisoned, clean = next(r for r in rows if r["poisoned"]), next(r for r in rows if not r["poisoned"])
    held = process_model(poisoned, "seam-adv", {"adv_token_search": "probe", "adv_probe_min_flip": 0.0}, device="cpu")
    trace = json.loads(held["trace_json"])
    assert trace["adv_phrase_held"] is True and trace["adversary"] == "TokenAdversary+PhraseSearch"
    assert trace["adv_phrase"] == trace["adv_phrase_warmup"]  # held: recovery never moved it
    assert held["asr_after"] < 0.5 * held["asr_before"]
    threshold = trace["adv_phrase_flip_warmup"]
    dropped = process_model(clean, "seam-adv", {"adv_token_search": "probe", "adv_probe_min_flip": threshold},
                            device="cpu")
    dropped_trace = json.loads(dropped["trace_json"])
    assert dropped_trace["adv_phrase_flip_warmup"] < threshold and dropped_trace["adv_phrase_held"] is False
    assert dropped_trace["adversary"] == "TokenAdversary" and "adv_phrase" not in dropped_trace
    soft = process_model(clean, "seam-adv", {"adv_token_search": "soft"}, device="cpu")
    for key in ("acc_after", "epochs_forget", "epochs_recover"):
        assert dropped[key] == soft[key], key


def test_a_probe_without_the_type_objective_holds_nothing_and_the_row_stays_valid_json(tiny_ner_round: Path) -> None:
    """The flip rate needs round 7's label layout (the ``type`` objective); without it the probe cannot judge its
    phrase, so it holds none and records no rate (JSON null, not NaN)."""
    row = next(r for r in scan_round(tiny_ner_round) if r["poisoned"])
    overrides = {"adv_token_search": "probe", "adv_token_objective": "entity", "adv_probe_min_flip": 0.0,
                 "adv_probe_epochs": 1, "max_forget_epochs": 1, "max_recover_epochs": 1}
    result = process_model(row, "seam-adv", overrides, device="cpu")
    assert result["status"] == "ok", result.get("error")
    assert "NaN" not in result["trace_json"]
    trace = json.loads(result["trace_json"])
    assert trace["adv_phrase_flip_warmup"] is None and trace["adv_phrase_held"] is False
    assert trace["adversary"] == "TokenAdversary"


def test_probe_restarts_keep_the_phrase_that_flips_most_and_the_first_search_is_unchanged(tiny_ner_round: Path) -> None:
    """``adv_probe_restarts``: the first search is the single probe's, bit for bit; later ones start from random
    real tokens; the phrase recorded (and held or not) is the one with the highest flip rate."""
    row = next(r for r in scan_round(tiny_ner_round) if r["poisoned"])
    short = {"adv_token_search": "probe", "adv_probe_epochs": 2, "max_forget_epochs": 1, "max_recover_epochs": 1}
    one = json.loads(process_model(row, "seam-adv", {**short, "adv_probe_restarts": 1}, device="cpu")["trace_json"])
    three = json.loads(process_model(row, "seam-adv", {**short, "adv_probe_restarts": 3}, device="cpu")["trace_json"])
    flips = three["adv_phrase_flip_restarts"]
    assert len(flips) == 3 and flips[0] == one["adv_phrase_flip_warmup"]
    assert three["adv_phrase_flip_warmup"] == max(flips)
    assert three["adv_phrase_held"] == (max(flips) >= method_config("seam-adv", None, "ner").adv_probe_min_flip)
    assert "adv_phrase_flip_restarts" not in one


def test_a_per_type_search_climbs_and_is_judged_on_one_entity_types_words_only() -> None:
    """``source_type``: a round-7 trigger flips one source entity type, so a per-type search counts only that type's
    B/I words (O, IGNORE and the other types' words are left out of its objective and its flip rate)."""
    search = PhraseSearch(rf.tiny_ner_model(5), 1.0, torch.Generator().manual_seed(0), tokens=1, num_classes=5)
    labels = torch.tensor([[-100, 0, 1, 2, 3, 4, 0]])
    assert search.entity_words(labels).tolist() == [[False, False, True, True, True, True, False]]
    search.source_type = 1
    assert search.entity_words(labels).tolist() == [[False, False, False, False, True, True, False]]


def test_per_type_probe_searches_cycle_over_the_entity_types(tiny_ner_round: Path) -> None:
    row = next(r for r in scan_round(tiny_ner_round) if r["poisoned"])
    short = {"adv_token_search": "probe", "adv_probe_epochs": 1, "max_forget_epochs": 1, "max_recover_epochs": 1,
             "adv_probe_per_type": True, "adv_probe_restarts": 3}
    result = process_model(row, "seam-adv", short, device="cpu")
    trace = json.loads(result["trace_json"])
    flips = trace["adv_phrase_flip_restarts"]
    assert len(flips) == 3 and trace["adv_phrase_flip_warmup"] == max(flips)
    types = (result["num_classes"] - 1) // 2  # O, then a B/I pair per type
    assert trace["adv_phrase_type_warmup"] == flips.index(max(flips)) % types
