"""How many threads the training loops of the torch models use (victims, surrogates, defenses).

Default 1: results then do not depend on the machine's cores, and a sweep runs one process per
core. A single run on an idle machine may ask for more (``recpoison run --threads N``): on the
idle two-core machine two threads made the torch victims' fits 1.13-1.56x faster for twice the
CPU, and on a loaded machine 4-8x slower (docs/victims.md). Results are bitwise reproducible for a
fixed thread count; one and two threads may differ in the last bits (sums split by rows).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .errors import ConfigError

_training = 1


def check_threads(n: int) -> int:
    """``n`` if it is a valid thread count, else a one-line ConfigError."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"threads={n!r} must be a whole number >= 1")
    return n


def set_training_threads(n: int) -> None:
    """Let the training loops use ``n`` intra-op threads (at least 1)."""
    global _training
    _training = check_threads(n)


def training_thread_count() -> int:
    return _training


@contextmanager
def use_training_threads(n: int) -> Iterator[None]:
    """:func:`set_training_threads` for the duration of a ``with`` block, then the previous count."""
    prev = _training
    set_training_threads(n)
    try:
        yield
    finally:
        set_training_threads(prev)
