"""Safe echoing of user text, and strict JSON: helpers every command and message uses.

- :func:`excerpt` cuts any echoed input (a field of a file, a parameter value, a spec) to a short,
  one-line excerpt, so a 5 MB line or an expanded YAML alias bomb is never printed whole.
- :func:`escape` is :func:`excerpt` plus escaping for Rich markup: text such as ``[/]``,
  ``[bold]x`` or ``'recpoison[ray]'`` is printed as written, never parsed as a style.
- :func:`one_line` is what the CLI applies to every error message before printing it.
- :func:`to_jsonable` / :func:`strict_json` turn NaN and infinities into ``null`` (``NaN`` is not
  JSON) and numpy scalars into Python numbers; ``allow_nan=False`` makes any miss fail loudly.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: default length of an echoed value
EXCERPT = 60
#: longest error message the CLI prints (the message itself, not counting "error: ")
MESSAGE = 600


def excerpt(value: Any, limit: int = EXCERPT, *, quote: bool = False) -> str:
    """``value`` (``str()`` of it, or ``repr()`` with ``quote``) on one line, at most ``limit``
    characters: longer text keeps its start (a third) and end around ``… (N characters) …``."""
    s = repr(value) if quote else str(value)
    s = s.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")
    if len(s) <= limit:
        return s
    head = max(1, limit // 3)  # the end of a path (the file name) tells more than its start
    tail = max(1, limit - head - 1)
    return f"{s[:head]}… ({len(s):,} characters) …{s[-tail:]}"


def short(value: Any, limit: int = EXCERPT) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters (for ``name={value}`` in messages)."""
    return excerpt(value, limit, quote=True)


def escape(value: Any, limit: int | None = EXCERPT) -> str:
    """``value`` as literal text for Rich (markup escaped), cut to ``limit`` characters
    (``None``: not cut)."""
    from rich.markup import escape as rich_escape

    s = str(value) if limit is None else excerpt(value, limit)
    return rich_escape(s)


def one_line(message: Any, limit: int = MESSAGE) -> str:
    """An error message as one line of at most about ``limit`` characters."""
    return excerpt(message, limit)


def to_jsonable(obj: Any) -> Any:
    """A copy of ``obj`` with non-finite floats as ``None`` and numpy values as Python ones."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, bool, int)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    try:
        import numpy as np

        if isinstance(obj, np.ndarray):
            return to_jsonable(obj.tolist())
        if isinstance(obj, np.generic):
            return to_jsonable(obj.item())
    except ImportError:  # pragma: no cover
        pass
    return str(obj)


def strict_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes ``null`` for NaN / infinity and never emits non-standard JSON."""
    return json.dumps(to_jsonable(obj), allow_nan=False, **kwargs)
