"""Registries of named components (datasets, victims, attacks, ...).

``attacks.make("random", seed=0)`` looks the name up, validates the parameters into the component's
``Config`` dataclass and returns an instance. Names are never ``eval``-ed: they are dictionary keys.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, TypeVar

from .config import build_config, config_dict
from .errors import UnknownNameError
from .text import short

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    paper: str
    summary: str


class Registry(Generic[T]):
    """A name -> component table for one family (``kind`` names the family in errors)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        #: names declared by :func:`declare_submodules` -> the module that registers them (imported
        #: on first use of the name), in declaration order
        self._lazy: dict[str, str] = {}

    def register(self, name: str, *, paper: str, summary: str) -> Callable[[Any], Any]:
        def deco(factory: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = Entry(name, factory, paper, summary)
            if isinstance(factory, type):
                factory.name = name
                factory.paper = paper
            return factory

        return deco

    def declare(self, name: str, module: str) -> None:
        """Record that importing ``module`` registers ``name`` (nothing is imported now)."""
        if name in self._lazy and self._lazy[name] != module:
            raise ValueError(f"{self.kind} {name!r} declared by {self._lazy[name]} and {module}")
        self._lazy[name] = module

    def names(self) -> list[str]:
        """Every name, declared or registered, without importing anything."""
        return list(self._lazy) + [n for n in self._entries if n not in self._lazy]

    def entry(self, name: str) -> Entry[T]:
        if name not in self._entries and isinstance(name, str) and name in self._lazy:
            importlib.import_module(self._lazy[name])
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {short(name)}; valid names: {', '.join(self.names())}"
            ) from None

    def make(self, name: str, **params: Any) -> T:
        return self.entry(name).factory(**params)

    def __iter__(self) -> Iterator[Entry[T]]:
        """Every entry (imports every declared module)."""
        return iter([self.entry(n) for n in self.names()])

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._lazy


class Component:
    """Base of configurable components (scikit-learn style).

    The constructor only stores validated hyper-parameters in ``self.config``; learned state is set
    by ``fit`` in attributes ending with ``_``.
    """

    Config: type
    name: str = "component"
    paper: str = ""

    def __init__(self, **params: Any) -> None:
        self.config = build_config(self.Config, params, owner=f"{self.name}")

    def get_params(self) -> dict[str, Any]:
        return config_dict(self.config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


#: ``X.register("name"`` in a module's source: the literal names a module registers
_REGISTER_CALL = re.compile(r"""\.register\(\s*(?:name\s*=\s*)?(['"])([^'"\\]+)\1""")


def declare_submodules(registry: Registry[Any], package_name: str, package_path) -> None:
    """Declare the names that each public module of a component package registers, without
    importing it: the module is imported when one of its names is first used (``entry``, ``make``,
    iteration). So a run imports the victim, attack, defense and detector it uses, not every module
    of every family (torch among them: about 3 s of every ``recpoison run`` here, docs/victims.md).

    The names come from the modules' source: every ``.register("name"`` call with a literal name
    (a regular expression; nothing is evaluated). A module with a ``.register(`` call whose name is
    not a literal is imported at once. Modules whose name starts with
    ``_`` and the ``base`` module are skipped. ``tests/test_registry.py`` checks that the declared
    names are exactly the names the modules register.
    """
    import pkgutil

    for info in sorted(pkgutil.iter_modules(package_path), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = f"{package_name}.{info.name}"
        path = Path(info.module_finder.path) / f"{info.name}.py"  # type: ignore[attr-defined]
        try:
            source = path.read_text(encoding="utf-8")
        except OSError:  # not a plain source file (a package, a compiled module): import it now
            importlib.import_module(module)
            continue
        found = [m.group(2) for m in _REGISTER_CALL.finditer(source)]
        if len(found) != source.count(".register("):
            importlib.import_module(module)
            continue
        for name in found:
            registry.declare(name, module)
