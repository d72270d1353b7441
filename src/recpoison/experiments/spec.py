"""Sweep specifications: a YAML file naming the axes of a grid, validated before anything runs.

Format (every axis takes one value or a non-empty list; the grid is their Cartesian product)::

    name: demo                      # optional; default run folder is runs/<name>
    axes:
      dataset: ml-100k              # a registered name or a ratings file
      victim: mf
      attack: [none, random, average, bandwagon, popular]
      attack_size: [0.01, 0.03]     # fraction of the normal users, in (0, 1]
      n_filler: 20
      n_targets: 5
      seed: [0, 1]
      target_strategy: random
      victim_params: {d: 8}         # a dict, or a list of dicts (each one is an axis value)
      attack_params: {}
      knowledge: ...                # any other field of pipeline.CellSpec is an axis too
    metrics:
      k: [10, 20]                   # HR@K / accuracy@K for each K (one cell per K, see below)
    per_victim:                     # extra parameters for one victim / attack only (optional)
      mf: {sweeps: 5}
    per_attack:
      bandwagon: {popular_fraction: 0.1}
    per_detector:                   # likewise for a detector (axes.detector: [none, svm, svm-tia])
      svm-tia: {tau: 4}

Axis names are the fields of :class:`recpoison.pipeline.CellSpec` (so a field another module adds,
such as ``knowledge``, is an axis at once). ``metrics.k`` is the same as ``axes.k``: ``run_cell``
evaluates one K per fit, so each K is its own cell (the clean victim is still trained once per K and
reused by the cells of that K; the poisoned victim is retrained per K — a departure from computing
all K from one fit, which needs a multi-K ``run_cell``).

Validation (:func:`load_spec`) checks every value before any cell runs and raises one
:class:`~recpoison.errors.ConfigError` whose message starts with the place in the file, e.g.
``spec.yaml: axes.attack[2]: unknown attack 'foo'; valid names: ...``. YAML is read with
``yaml.safe_load`` only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, RecPoisonError

TOP_KEYS = ("name", "description", "axes", "metrics", "per_victim", "per_attack", "per_detector")
PARAM_AXES = ("victim_params", "attack_params", "detector_params")
#: the component axes that have a parameter axis and a per_<kind> section
KINDS = ("victim", "attack", "detector")


def _cellspec():
    from ..pipeline import CellSpec

    return CellSpec


def axis_names() -> list[str]:
    """The allowed axis names: the fields of ``CellSpec``."""
    return list(_cellspec().__dataclass_fields__)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the same parameters always give the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def cell_key(params: Mapping[str, Any]) -> str:
    """Stable key of a cell: the first 16 hex digits of the SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(dict(params)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep: its key and the keyword arguments of ``CellSpec``."""

    key: str
    params: dict

    def spec(self):
        return _cellspec()(**self.params)

    def group(self) -> str:
        """Cells of one group share the clean victim (same data set, seed, victim, victim params)."""
        p = self.params
        return canonical_json([p["dataset"], p["seed"], p["victim"], p["victim_params"]])

    def label(self) -> str:
        p = self.params
        det = p.get("detector", "none")
        return f"{p['victim']} {p['attack']} {p['attack_size']:g} seed {p['seed']}" + (f" detector {det}" if det != "none" else "")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: its name, source file and cells (in a fixed, deterministic order)."""

    name: str
    source: str
    axes: dict
    cells: list = field(default_factory=list)
    raw: dict = field(default_factory=dict)  # the document as read, with overrides applied


def _fail(place: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"{place}: {message}")


def _type_ok(tp: Any, value: Any) -> tuple[bool, str]:
    """Check ``value`` against a CellSpec field annotation; returns (ok, expected-type-name)."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        return value in allowed, "one of " + ", ".join(map(repr, allowed))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        results = [_type_ok(a, value) for a in typing.get_args(tp)]
        return any(ok for ok, _ in results), " or ".join(n for _, n in results)
    if tp is type(None):
        return value is None, "null"
    if tp is bool:
        return isinstance(value, bool), "a boolean"
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), "an integer"
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    if tp is str:
        return isinstance(value, str), "a string"
    if tp is dict or origin is dict:
        return isinstance(value, dict), "a mapping"
    if tp is list or tp is tuple or origin in (list, tuple):
        return isinstance(value, (list, tuple)), "a list"
    return True, ""


def _as_list(value: Any, place: str, dict_values: bool) -> list:
    if dict_values:
        if isinstance(value, dict):
            return [value]
        if isinstance(value, list):
            return value
        _fail(place, f"expected a mapping or a list of mappings, got {type(value).__name__}")
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        _fail(place, "expected a value or a list of values, got a mapping")
    return [value]


def _check_dataset(value: Any, place: str) -> None:
    from .. import datasets

    if value in datasets.DATASETS:
        return
    if datasets.looks_like_path(str(value)):
        if not Path(str(value)).exists():
            _fail(place, f"ratings file {value!r} does not exist")
        return
    _fail(place, f"unknown dataset {value!r}; valid names: {', '.join(datasets.DATASETS.names())} (or a ratings file)")


def _check_field(name: str, value: Any, place: str, hints: dict) -> None:
    """Validate one axis value by itself: its type, then CellSpec's own checks on it."""
    ok, expected = _type_ok(hints[name], value)
    if not ok:
        _fail(place, f"{name}={value!r} must be {expected}")
    if name == "dataset":
        _check_dataset(value, place)
        return
    if name in PARAM_AXES:
        return
    try:
        _cellspec()(**{name: value})
    except RecPoisonError as exc:
        _fail(place, str(exc))
    except (TypeError, ValueError) as exc:
        _fail(place, f"{name}={value!r}: {exc}")


def _check_params(kind: str, names: list[str], params: dict, place: str) -> None:
    """Instantiate each component with ``params`` (constructors only validate their config)."""
    from .. import attacks, detect, victims

    registry = {"victim": victims.VICTIMS, "attack": attacks.ATTACKS, "detector": detect.DETECTORS}[kind]
    for name in names:
        try:
            registry.make(name, **params)
        except RecPoisonError as exc:
            msg = str(exc)
            _fail(place, msg if msg.startswith(f"{name}:") else f"{kind} {name!r}: {msg}")
        except (TypeError, ValueError) as exc:
            _fail(place, f"{kind} {name!r}: {exc}")


def parse_spec(raw: Any, source: str = "<spec>", overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """Validate a parsed YAML document (a dict) into a :class:`SweepSpec`.

    ``overrides`` replace whole axes (``{"seed": [1]}``) after the file is read, before validation.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the spec must be a mapping with an 'axes' section, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        _fail(f"{source}: {unknown[0]}", f"unknown top-level key; allowed: {', '.join(TOP_KEYS)}")
    CellSpec = _cellspec()
    names = axis_names()
    hints = typing.get_type_hints(CellSpec)
    axes_raw = raw.get("axes")
    if not isinstance(axes_raw, dict) or not axes_raw:
        _fail(f"{source}: axes", "missing or empty; give at least 'axes: {attack: [...]}'")
    axes_raw = dict(axes_raw)
    metrics = raw.get("metrics") or {}
    if not isinstance(metrics, dict):
        _fail(f"{source}: metrics", "must be a mapping such as {k: [10, 20]}")
    bad = sorted(set(metrics) - {"k"})
    if bad:
        _fail(f"{source}: metrics.{bad[0]}", "unknown metric option; allowed: k (HR@K and accuracy@K are always reported)")
    if "k" in metrics:
        if "k" in axes_raw:
            _fail(f"{source}: metrics.k", "k is given both under axes and metrics; keep one")
        axes_raw["k"] = metrics["k"]
    for key, value in (overrides or {}).items():
        axes_raw[key] = value
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory()) for f in dataclasses.fields(CellSpec)}

    axes: dict[str, list] = {}
    for name, value in axes_raw.items():
        where = "metrics.k" if name == "k" and "k" in metrics else f"axes.{name}"
        place = f"{source}: {where}"
        if name not in names:
            _fail(place, f"unknown axis; valid axes: {', '.join(names)}")
        values = _as_list(value, place, name in PARAM_AXES)
        if not values:
            _fail(place, "empty list; give at least one value or remove the axis to use the default")
        for i, v in enumerate(values):
            _check_field(name, v, f"{place}[{i}]" if isinstance(value, list) else place, hints)
        if len({canonical_json(v) for v in values}) != len(values):
            _fail(place, "a value is listed twice")
        axes[name] = values
    full_axes = {n: axes.get(n, [defaults[n]]) for n in names}

    per: dict[str, dict] = {}
    for section, kind in ((f"per_{kind}", kind) for kind in KINDS):
        value = raw.get(section) or {}
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            _fail(f"{source}: {section}", f"must map {kind} names to parameter mappings")
        listed = full_axes[kind]
        for name in value:
            if name not in listed:
                _fail(f"{source}: {section}.{name}", f"{kind} {name!r} is not on the {kind} axis ({', '.join(listed)})")
        per[kind] = value
    for kind in KINDS:
        pax = f"{kind}_params"
        for i, params in enumerate(full_axes[pax]):
            place = f"{source}: axes.{pax}" + (f"[{i}]" if len(full_axes[pax]) > 1 else "")
            for name in full_axes[kind]:
                _check_params(kind, [name], {**params, **per[kind].get(name, {})}, place if not per[kind].get(name) else f"{place} + {source}: per_{kind}.{name}")

    cells: list[Cell] = []
    seen: set[str] = set()
    for combo in itertools.product(*(full_axes[n] for n in names)):
        params = dict(zip(names, combo))
        params["victim_params"] = {**params["victim_params"], **per["victim"].get(params["victim"], {})}
        params["attack_params"] = {**params["attack_params"], **per["attack"].get(params["attack"], {})}
        params["detector_params"] = {**params["detector_params"], **per["detector"].get(params["detector"], {})}
        try:
            CellSpec(**params)
        except RecPoisonError as exc:
            _fail(f"{source}: cell {canonical_json({n: params[n] for n in axes})}", str(exc))
        key = cell_key(params)
        if key not in seen:
            seen.add(key)
            cells.append(Cell(key, params))
    name = raw.get("name", Path(source).stem if source != "<spec>" else "sweep")
    if not isinstance(name, str) or not name or "/" in name:
        _fail(f"{source}: name", f"{name!r} must be a non-empty string without '/'")
    doc = {k: v for k, v in raw.items() if k != "metrics"}
    doc["axes"] = axes_raw
    return SweepSpec(name=name, source=source, axes=axes, cells=cells, raw=doc)


def read_yaml(path: str | Path) -> Any:
    """``yaml.safe_load`` of a file, with one-line errors for a missing file or bad YAML."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: spec file not found")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}:{where}: not valid YAML ({problem})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file") from None


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """Read and validate a sweep spec file (see the module docstring for the format)."""
    return parse_spec(read_yaml(path), source=Path(path).name, overrides=overrides)
