"""A strict, safe YAML reader for specs and configs.

Built on ``yaml.SafeLoader`` (no Python objects, no code), and stricter than ``yaml.safe_load``:

- a key given twice in one mapping is refused (``safe_load`` silently keeps the last value);
- a document whose aliases expand to more than :data:`MAX_NODES` nodes (a "billion laughs" alias
  bomb), or whose aliases are recursive, is refused before it is built;
- input larger than :data:`MAX_BYTES` or nested deeper than Python can parse is refused.

Errors are :class:`~recpoison.errors.ConfigError` with one line that starts with ``source`` and
the line number.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ConfigError
from .text import excerpt, short

#: nodes a document may expand to, aliases counted at every use
MAX_NODES = 100_000
#: largest YAML text accepted
MAX_BYTES = 10 * 2**20


class _Refused(Exception):
    pass


class StrictSafeLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate keys (merge keys ``<<`` may still be overridden)."""


def _construct_mapping(loader: StrictSafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise _Refused(f"line {key_node.start_mark.line + 1}: a mapping key must be a plain value") from None
        if key in seen:
            raise _Refused(
                f"line {key_node.start_mark.line + 1}: key {short(key)} is given twice in one mapping "
                f"(first on line {seen[key]}); keep one"
            )
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(root: yaml.Node) -> int:
    """Number of nodes of ``root`` with every alias expanded (memoised, so it is computed in time
    linear in the document); raises :class:`_Refused` for recursive aliases or too many nodes."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            raise _Refused(f"line {node.start_mark.line + 1}: a recursive alias (a node that contains itself); remove it")
        active.add(key)
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(c) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if n > MAX_NODES:
            raise _Refused(
                f"expands to more than {MAX_NODES:,} values (aliases counted at each use, e.g. an alias bomb); "
                "write the values out or use fewer aliases"
            )
        memo[key] = n
        return n

    return size(root)


def load_yaml(text: str | bytes, source: str = "<yaml>") -> Any:
    """Parse one YAML document strictly (see the module docstring); ``source`` names it in errors."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(text):,} bytes is too large for a spec (at most {MAX_BYTES:,}); split it")
    loader = StrictSafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    except _Refused as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}:{where} not valid YAML ({excerpt(problem, 120)})") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read; flatten the document") from None
    finally:
        loader.dispose()
