"""Registries of named components (datasets, victims, attacks, ...).

``attacks.make("random", seed=0)`` looks the name up, validates the parameters into the component's
``Config`` dataclass and returns an instance. Names are never ``eval``-ed: they are dictionary keys.
"""

from __future__ import annotations

from dataclasses import dataclass
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

    def names(self) -> list[str]:
        return list(self._entries)

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {short(name)}; valid names: {', '.join(self._entries)}"
            ) from None

    def make(self, name: str, **params: Any) -> T:
        return self.entry(name).factory(**params)

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries


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


def import_submodules(package_name: str, package_path) -> None:
    """Import every public module of a component package so that each registers itself.

    Modules whose name starts with ``_`` and the ``base`` module are skipped. Names come from the
    package folder, never from user input.
    """
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(package_path), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        importlib.import_module(f"{package_name}.{info.name}")
