"""Registry of repair methods, in the shape of timm's ``register_model`` / ``create_model``.

Each method is a function ``repair(model, data, config) -> (model, trace)`` registered under a name
with the dataclass holding its defaults. A config class may also declare ``TASK_DEFAULTS``
(``{task: {field: value}}``): defaults that apply on that task's rounds only, below the user's
overrides. A configuration is identified in results by a short hash of the method name and its full
(defaults + per-task defaults + overrides) config.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from pipeline.tasks.base import RepairData

RepairFn = Callable[[Any, RepairData, Any], tuple[Any, dict[str, Any]]]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config_cls: type
    fn: RepairFn
    summary: str


_METHODS: dict[str, MethodSpec] = {}  # filled once at import of pipeline.methods, read-only afterwards


def register_method(name: str, config_cls: type) -> Callable[[RepairFn], RepairFn]:
    """Decorator: make ``fn`` available as ``--method name`` with ``config_cls`` as its defaults."""

    def wrap(fn: RepairFn) -> RepairFn:
        if name in _METHODS:
            raise ValueError(f"repair method {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        _METHODS[name] = MethodSpec(name, config_cls, fn, doc[0] if doc else "")
        return fn

    return wrap


def _specs() -> Mapping[str, MethodSpec]:
    import pipeline.methods  # noqa: F401  (registers the built-in methods)

    return _METHODS


def available_methods() -> list[str]:
    return sorted(_specs())


def get_method(name: str) -> MethodSpec:
    specs = _specs()
    if name not in specs:
        raise KeyError(f"unknown repair method {name!r}; available: {', '.join(sorted(specs))}")
    return specs[name]


def task_defaults(config_cls: type) -> Mapping[str, Mapping[str, Any]]:
    """The config class's per-task defaults (``TASK_DEFAULTS``), empty when it has none."""
    return getattr(config_cls, "TASK_DEFAULTS", {})


def method_config(method: str, overrides: Mapping[str, Any] | None = None, task: str | None = None) -> Any:
    """The method's typed config: defaults, then ``task``'s own defaults, then ``overrides`` (unknown keys error)."""
    spec = get_method(method)
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(spec.config_cls)}
    unknown = set(overrides) - set(fields)
    if unknown:
        raise KeyError(f"unknown option(s) for method {method!r}: {sorted(unknown)}; known: {sorted(fields)}")
    per_task = dict(task_defaults(spec.config_cls).get(task, {})) if task else {}
    if set(per_task) - set(fields):  # a programming error in the config class, caught on first use
        raise KeyError(f"{spec.config_cls.__name__}.TASK_DEFAULTS[{task!r}] names unknown fields: "
                       f"{sorted(set(per_task) - set(fields))}")
    return spec.config_cls(**{**per_task, **overrides})


def config_json(method: str, overrides: Mapping[str, Any] | None = None, task: str | None = None) -> str:
    """The full config as JSON: resolved for ``task``, or (no task) the defaults plus every task's own defaults."""
    body = {"method": method, **dataclasses.asdict(method_config(method, overrides, task))}
    per_task = task_defaults(get_method(method).config_cls)
    if task is None and per_task:
        body["task_defaults"] = {t: dict(v) for t, v in per_task.items()}
    return json.dumps(body, sort_keys=True)


def config_hash(method: str, overrides: Mapping[str, Any] | None = None) -> str:
    """Short stable id of (method, full config incl. per-task defaults): equal configs share a results partition."""
    return hashlib.sha256(config_json(method, overrides).encode()).hexdigest()[:10]


def repair(model: Any, data: RepairData, method: str = "seam", overrides: Mapping[str, Any] | None = None):
    """Run one registered method: ``(repaired_model, trace)``."""
    spec = get_method(method)
    return spec.fn(model, data, method_config(method, overrides, data.task.name))


def parse_overrides(method: str, assignments: list[str] | None) -> dict[str, Any]:
    """``["forget_lr=0.005", "disjoint=false"]`` -> typed overrides, converted by each field's default type."""
    spec = get_method(method)
    defaults = dataclasses.asdict(spec.config_cls())
    out: dict[str, Any] = {}
    for item in assignments or []:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in defaults:
            raise KeyError(f"bad --set {item!r} for method {method!r}: expected KEY=VALUE with KEY in {sorted(defaults)}")
        kind = type(defaults[key])
        if kind is bool:
            if text.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"--set {key}: expected true/false, got {text!r}")
            out[key] = text.strip().lower() in ("true", "1", "yes")
        else:
            out[key] = kind(text)
    method_config(method, out)  # the config's own checks (e.g. allowed values) fail here, before any work
    return out


def describe(method: str) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of a method's config: each field, its default and, per task, the value that task uses."""
    cls = get_method(method).config_cls
    per_task = task_defaults(cls)
    columns = ["field", "default", *(f"on {task}" for task in per_task)]
    defaults = cls()
    rows = [[f.name, repr(getattr(defaults, f.name)), *(repr(v[f.name]) if f.name in v else "" for v in per_task.values())]
            for f in dataclasses.fields(cls)]
    return columns, rows
