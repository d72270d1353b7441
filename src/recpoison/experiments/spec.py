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
      accuracy_threshold: 4         # also accuracy over users whose held-out rating is >= 4 (seed 004 App. D)
      hr_definition: any            # target HR@K: per-target (default) or any (seed 003 §5.1.4)
    per_victim:                     # extra parameters for one victim / attack only (optional)
      mf: {sweeps: 5}
    per_attack:
      bandwagon: {popular_fraction: 0.1}
    per_detector:                   # likewise for a detector (axes.detector: [none, svm, svm-tia])
      svm-tia: {tau: 4}
    per_defense:                    # and a defense (axes.defense: [none, rvd, rvd+ltsmf])
      rvd: {k: 12}

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
from ..text import excerpt, short

TOP_KEYS = ("name", "description", "axes", "metrics", "per_victim", "per_attack", "per_detector", "per_defense")
#: the axes a spec may also give under ``metrics:``
METRIC_AXES = ("k", "accuracy_threshold", "hr_definition")
PARAM_AXES = ("victim_params", "attack_params", "detector_params", "defense_params")
#: the component axes that have a parameter axis and a per_<kind> section
KINDS = ("victim", "attack", "detector", "defense")
#: Largest grid a spec may define unless forced (``recpoison sweep --force``): building and checking
#: each cell costs about 0.1 ms and a store row, and no study needs more cells than this.
MAX_CELLS = 100_000
#: CellSpec fields added after stores existed: left out of the cell key while they hold this
#: default, so the cells of older run folders keep their keys (and resume).
KEY_OMITTED_DEFAULTS: dict[str, Any] = {"implicit": False, "detector": "none", "detector_params": {}, "defense": "none", "defense_params": {},
                                         "accuracy_threshold": None, "hr_definition": "per-target"}


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
    """Stable key of a cell: the first 16 hex digits of the SHA-256 of its canonical JSON
    (fields of :data:`KEY_OMITTED_DEFAULTS` left out while they hold their default)."""
    p = {k: v for k, v in params.items() if not (k in KEY_OMITTED_DEFAULTS and v == KEY_OMITTED_DEFAULTS[k] and type(v) is type(KEY_OMITTED_DEFAULTS[k]))}
    return hashlib.sha256(canonical_json(p).encode()).hexdigest()[:16]


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
        det, dfn = p.get("detector", "none"), p.get("defense", "none")
        return (f"{p['victim']} {p['attack']} {p['attack_size']:g} seed {p['seed']}" + (f" detector {det}" if det != "none" else "")
                + (f" defense {dfn}" if dfn != "none" else ""))


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
        if not Path(str(value)).is_file():
            _fail(place, f"ratings file {short(value)} does not exist or is not a file")
        return
    _fail(place, f"unknown dataset {short(value)}; valid names: {', '.join(datasets.DATASETS.names())} (or a ratings file)")


def _check_field(name: str, value: Any, place: str, hints: dict) -> None:
    """Validate one axis value by itself: its type, then CellSpec's own checks on it."""
    ok, expected = _type_ok(hints[name], value)
    if not ok:
        _fail(place, f"{name}={short(value)} must be {expected}")
    if name == "dataset":
        _check_dataset(value, place)
        return
    if name in PARAM_AXES:
        return
    try:
        if name == "defense":  # by itself: the chain's names (which victims it fits: per cell)
            from ..defenses import parse_chain

            parse_chain(value)
            return
        _cellspec()(**{name: value})
    except RecPoisonError as exc:
        _fail(place, str(exc))
    except (TypeError, ValueError) as exc:
        _fail(place, f"{name}={short(value)}: {exc}")


def _check_params(kind: str, names: list[str], params: dict, place: str) -> None:
    """Instantiate each component with ``params`` (constructors only validate their config)."""
    from .. import attacks, defenses, detect, victims

    registry = {"victim": victims.VICTIMS, "attack": attacks.ATTACKS, "detector": detect.DETECTORS}.get(kind)
    for name in names:
        try:
            if kind == "defense":  # a name or a chain such as rvd+ltsmf
                defenses.split_params(name, params)
            else:
                registry.make(name, **params)
        except RecPoisonError as exc:
            msg = str(exc)
            _fail(place, msg if msg.startswith(f"{name}:") else f"{kind} {short(name)}: {msg}")
        except (TypeError, ValueError) as exc:
            _fail(place, f"{kind} {short(name)}: {exc}")


def parse_spec(raw: Any, source: str = "<spec>", overrides: Mapping[str, Any] | None = None, force: bool = False) -> SweepSpec:
    """Validate a parsed YAML document (a dict) into a :class:`SweepSpec`.

    ``overrides`` replace whole axes (``{"seed": [1]}``) after the file is read, before validation.
    A grid of more than :data:`MAX_CELLS` cells is refused (before any cell is built) unless ``force``.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the spec must be a mapping with an 'axes' section, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        _fail(f"{source}: {excerpt(unknown[0])}", f"unknown top-level key; allowed: {', '.join(TOP_KEYS)}")
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
    bad = sorted(set(metrics) - set(METRIC_AXES))
    if bad:
        _fail(f"{source}: metrics.{excerpt(bad[0])}", "unknown metric option; allowed: k, accuracy_threshold, hr_definition (HR@K and accuracy@K are always reported)")
    for name in METRIC_AXES:
        if name in metrics:
            if name in axes_raw:
                _fail(f"{source}: metrics.{name}", f"{name} is given both under axes and metrics; keep one")
            axes_raw[name] = metrics[name]
    for key, value in (overrides or {}).items():
        axes_raw[key] = value
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory()) for f in dataclasses.fields(CellSpec)}

    axes: dict[str, list] = {}
    for name, value in axes_raw.items():
        where = f"metrics.{name}" if name in METRIC_AXES and name in metrics else f"axes.{excerpt(name)}"
        place = f"{source}: {where}"
        if name not in names:
            _fail(place, f"unknown axis; valid axes: {', '.join(names)}")
        values = _as_list(value, place, name in PARAM_AXES)
        if not values:
            _fail(place, "empty list; give at least one value or remove the axis to use the default")
        for i, v in enumerate(values):
            _check_field(name, v, f"{place}[{i}]" if isinstance(value, list) else place, hints)
        for i, v in enumerate(values):
            where_v = f"{place}[{i}]" if isinstance(value, list) else place
            try:
                canonical_json(v)
            except ValueError:
                _fail(where_v, f"{short(v)} holds a number that is not finite (nan or inf); give finite values")
            except TypeError:
                _fail(where_v, f"{short(v)} holds a value that is not a number, string, boolean, list or mapping "
                               "(e.g. a date); write it as a number or a quoted string")
        if len({canonical_json(v) for v in values}) != len(values):
            _fail(place, "a value is listed twice")
        axes[name] = values
    full_axes = {n: axes.get(n, [defaults[n]]) for n in names}
    n_cells = 1
    for n in names:
        n_cells *= len(full_axes[n])
    if n_cells > MAX_CELLS and not force:
        sizes = " x ".join(f"{n} {len(v)}" for n, v in full_axes.items() if len(v) > 1)
        _fail(f"{source}: axes", f"the grid has {n_cells:,} cells ({sizes}), more than the limit of {MAX_CELLS:,}; "
                                 "split the spec into smaller ones, or pass --force to run it anyway")

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
        params["defense_params"] = {**params["defense_params"], **per["defense"].get(params["defense"], {})}
        try:
            CellSpec(**params)
        except RecPoisonError as exc:
            _fail(f"{source}: cell {excerpt(canonical_json({n: params[n] for n in axes}), 200)}", str(exc))
        key = cell_key(params)
        if key not in seen:
            seen.add(key)
            cells.append(Cell(key, params))
    name = raw.get("name", Path(source).stem if source != "<spec>" else "sweep")
    if not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        _fail(f"{source}: name", f"{short(name)} must be a non-empty string without '/' or '\\' (it names the run folder)")
    doc = {k: v for k, v in raw.items() if k != "metrics"}
    doc["axes"] = axes_raw
    return SweepSpec(name=name, source=source, axes=axes, cells=cells, raw=doc)


def read_yaml(path: str | Path) -> Any:
    """Strict safe YAML of a file (:func:`recpoison.yamlio.load_yaml`: duplicate keys and alias
    bombs refused), with one-line errors for a missing file, bad YAML or binary content."""
    from ..yamlio import MAX_BYTES, load_yaml

    p = Path(path)
    label = excerpt(p, 120)
    if not p.is_file():
        raise ConfigError(f"{label}: spec file not found" + (" (it is a folder)" if p.is_dir() else ""))
    try:
        if p.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{label}: {p.stat().st_size:,} bytes is too large for a spec (at most {MAX_BYTES:,}); split it")
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{label}: not a UTF-8 text file; save the spec as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read it ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise ConfigError(f"{label}: contains NUL bytes, so it is not a YAML text file; save the spec as UTF-8")
    return load_yaml(text, source=label)


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None, force: bool = False) -> SweepSpec:
    """Read and validate a sweep spec file (see the module docstring for the format)."""
    return parse_spec(read_yaml(path), source=excerpt(Path(path).name, 80), overrides=overrides, force=force)


def check_data(spec: SweepSpec) -> int:
    """Load every data set of ``spec`` (headers, value ranges, the leave-one-out protocol) and check
    each cell's counts against it (k, targets and fillers against the items), as ``run_cell``
    would, so a bad file or value fails here rather than in every cell. Returns the number of data
    sets checked; raises :class:`ConfigError` / :class:`DataError` naming the spec and the values."""
    from ..errors import DataError
    from ..pipeline import check_data as check_cell_data
    from ..pipeline import load_data

    loaded: dict[tuple, Any] = {}
    checked: set[tuple] = set()
    for cell in spec.cells:
        p = cell.params
        dkey = (p["dataset"], bool(p.get("implicit", False)))
        ckey = dkey + (p["k"], p["n_targets"], p["n_filler"])
        if ckey in checked:
            continue
        checked.add(ckey)
        cs = cell.spec()
        where = f"{spec.source}: dataset {short(p['dataset'])}" + (" (implicit)" if dkey[1] else "")
        try:
            if dkey not in loaded:
                loaded[dkey] = load_data(cs)
            check_cell_data(cs, loaded[dkey])
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"{where}, k={p['k']}, n_targets={p['n_targets']}, n_filler={p['n_filler']}: {exc}") from None
    return len(loaded)
