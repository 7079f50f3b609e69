"""Trigger facts from every config dialect: R2/R3 flat keys, R4-R7 trigger lists, METADATA columns."""
from __future__ import annotations

from typing import Any

from manifests.config import as_int_list, first


def _ner_label_ids(cfg: dict[str, Any]) -> dict[str, int]:
    """Entity name -> B- label id (2k+1) from round 7's ``class_mapping``."""
    mapping = cfg.get("class_mapping") or {}
    out: dict[str, int] = {}
    if isinstance(mapping, dict):
        for k, name in mapping.items():
            try:
                out[str(name)] = 2 * int(k) + 1
            except (TypeError, ValueError):
                continue
    return out


def _trigger_text(trig: dict[str, Any]) -> str | None:
    text = first(trig, "text", "trigger_text")
    executor = trig.get("trigger_executor")
    if text is None and isinstance(executor, dict):
        text = executor.get("trigger_text")
        if text is None and executor.get("trigger_text_list"):
            text = " ".join(str(t) for t in executor["trigger_text_list"])
    return None if text is None else str(text)


def _from_list(cfg: dict[str, Any], triggers: list[dict[str, Any]]) -> dict[str, Any]:
    ner_ids = _ner_label_ids(cfg)
    sources: list[int] = []
    target = None
    kinds, options, texts = [], [], []
    for trig in triggers:
        if not isinstance(trig, dict):
            continue
        src = first(trig, "source_class")
        tgt = first(trig, "target_class")
        if src is None and trig.get("source_class_label") is not None:
            src = ner_ids.get(str(trig["source_class_label"]))
        if tgt is None and trig.get("target_class_label") is not None:
            tgt = ner_ids.get(str(trig["target_class_label"]))
        for s in as_int_list(src) or []:
            if s not in sources:
                sources.append(s)
        if target is None and tgt is not None:
            target = int(tgt)
        kinds.append(first(trig, "type", "trigger_executor_name"))
        options.append(first(trig, "polygon_side_count", "instagram_filter_type", "trigger_executor_name"))
        texts.append(_trigger_text(trig))
    return {
        "source_classes": sources or None,
        "target_class": target,
        "trigger_type": _join(kinds),
        "trigger_option": _join(options),
        "trigger_text": _join(texts, sep=" | "),
    }


def _join(values: list[Any], sep: str = ",") -> str | None:
    seen = [str(v) for v in values if v is not None]
    seen = list(dict.fromkeys(seen))
    return sep.join(seen) if seen else None


def _from_metadata_columns(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Rebuild a trigger list from flattened ``triggers_<k>_<field>`` METADATA columns."""
    triggers = []
    for k in range(4):
        prefix = f"triggers_{k}_"
        trig = {key[len(prefix):]: v for key, v in cfg.items() if key.startswith(prefix)}
        if any(v is not None for v in trig.values()):
            triggers.append(trig)
    return triggers


def trigger_facts(cfg: dict[str, Any]) -> dict[str, Any]:
    """Source classes, target class, trigger type/option/text when the round tells them."""
    triggers = cfg.get("triggers")
    if isinstance(triggers, list) and triggers:
        return _from_list(cfg, triggers)
    flat = _from_metadata_columns(cfg)
    if flat:
        return _from_list(cfg, flat)
    if first(cfg, "triggered_classes", "trigger_target_class") is not None:  # rounds 2-3
        return {
            "source_classes": as_int_list(cfg.get("triggered_classes")),
            "target_class": None if cfg.get("trigger_target_class") is None else int(cfg["trigger_target_class"]),
            "trigger_type": cfg.get("trigger_type"),
            "trigger_option": _join([first(cfg, "trigger_type_option", "polygon_side_count", "instagram_filter_type")]),
            "trigger_text": None,
        }
    return {"source_classes": None, "target_class": None, "trigger_type": None, "trigger_option": None,
            "trigger_text": None}
