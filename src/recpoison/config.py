"""Typed, validated hyper-parameters for every component.

Each component declares a frozen dataclass ``Config`` whose defaults are the papers' settings.
:func:`build_config` turns user input (keyword arguments, YAML, CLI ``--param k=v``) into that
dataclass, rejecting unknown keys and values of the wrong type with an error that names the field,
the value and what is allowed (DESIGN.md: "unknown config keys silently dropped" is a pitfall of peers).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Mapping

from .errors import ConfigError
from .text import short

#: Largest integer any hyper-parameter may take (sizes, counts, seeds all fit in 31 bits).
MAX_INT = 2**31 - 1
#: Largest absolute value of a float hyper-parameter (beyond it float32 arithmetic overflows).
MAX_FLOAT = 1e12
#: Fields that count iterations (ALS sweeps, epochs, steps ...): more than this is a typo, not a plan.
ITERATION_FIELDS = frozenset({
    "sweeps", "warm_sweeps", "fit_sweeps", "inner_sweeps", "epochs", "iterations", "iters",
    "refine_iters", "max_iter", "steps", "cg_iters",
})
MAX_ITERATIONS = 100_000


def _allowed_types(tp: Any) -> tuple[type, ...] | None:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        out: list[type] = []
        for arg in typing.get_args(tp):
            sub = _allowed_types(arg)
            if sub is None:
                return None
            out.extend(sub)
        return tuple(out)
    if origin is typing.Literal:
        return None
    if tp is float:
        return (float, int)
    if tp is type(None) or tp is None:
        return (type(None),)
    if isinstance(tp, type):
        return (tp,)
    return None  # generic containers etc.: checked by the component


def _coerce(owner: str, name: str, tp: Any, value: Any) -> Any:
    if typing.get_origin(tp) is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{owner}: {name}={short(value)} is not allowed; use one of {list(allowed)}")
        return value
    origin = typing.get_origin(tp)
    if origin in (tuple, list) and isinstance(value, str):  # "64,32,16" from the command line
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        kind = args[0] if args and args[0] in (int, float) else None
        parts = [x.strip() for x in value.strip("()[] ").split(",") if x.strip()]
        try:
            return tuple(kind(x) for x in parts) if kind else tuple(parts)
        except ValueError:
            raise ConfigError(f"{owner}: {name}={short(value)} must be a comma-separated list of {_type_name(kind)} values, e.g. 64,32,16") from None
    allowed = _allowed_types(tp)
    if allowed is None:
        return value
    if isinstance(value, bool) and bool not in allowed:
        raise ConfigError(f"{owner}: {name}={short(value)} must be {_type_name(tp)}, not a boolean")
    if isinstance(value, str) and str not in allowed:
        # values from the command line arrive as strings
        for kind in allowed:
            if kind in (int, float):
                try:
                    return kind(value)
                except ValueError:
                    continue
            if kind is bool and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{owner}: {name}={short(value)} must be {_type_name(tp)}")
    if not isinstance(value, allowed):
        raise ConfigError(f"{owner}: {name}={short(value)} must be {_type_name(tp)}")
    if float in allowed and isinstance(value, int) and int not in allowed:
        return float(value)
    return value


def check_number(owner: str, name: str, value: Any) -> None:
    """The boundary check every numeric hyper-parameter passes (nested in tuples and lists too):
    floats finite and at most :data:`MAX_FLOAT` in size, integers at most :data:`MAX_INT`,
    iteration counts (:data:`ITERATION_FIELDS`) at most :data:`MAX_ITERATIONS`."""
    if isinstance(value, bool):
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            check_number(owner, name, v)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{owner}: {name}={value} is not a finite number; give a finite value")
        if abs(value) > MAX_FLOAT:
            raise ConfigError(f"{owner}: {name}={value:g} is out of range; use a value within ±{MAX_FLOAT:g}")
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ConfigError(f"{owner}: {name}={short(value, 30)} is out of range; use a value within ±{MAX_INT}")
        if name in ITERATION_FIELDS and value > MAX_ITERATIONS:
            raise ConfigError(f"{owner}: {name}={value} is absurd for an iteration count; use at most {MAX_ITERATIONS:,}")


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (``None`` where unknown)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def check_memory_need(owner: str, need: int, params: str, n_users: int, n_items: int) -> None:
    """Refuse work whose estimated memory ``need`` (bytes) exceeds the machine's physical memory,
    before anything is allocated; ``params`` names the parameters that drive it (``"d=4096"``)."""
    have = physical_memory()
    if have is None or need <= have:
        return
    raise ConfigError(
        f"{owner}: {params} needs about {need / 2**30:,.0f} GiB for {n_users:,} users x "
        f"{n_items:,} items, more than this machine's {have / 2**30:,.0f} GiB; use smaller values"
    )


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def build_config(cls: type, params: Mapping[str, Any] | None, owner: str) -> Any:
    """Validate ``params`` into the frozen dataclass ``cls``.

    Unknown keys and wrongly typed values raise :class:`ConfigError` naming ``owner``.
    """
    params = dict(params or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ConfigError(
            f"{owner}: unknown parameter {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(fields) or '(none)'}"
        )
    coerced = {k: _coerce(owner, k, hints[k], v) for k, v in params.items()}
    for k, v in coerced.items():
        check_number(owner, k, v)
    try:
        return cls(**coerced)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{owner}: {exc}") from None


def check(cond: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``cond`` (for ``__post_init__``)."""
    if not cond:
        raise ConfigError(message)


def config_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return dataclasses.asdict(config)
