"""Data-poisoning attacks behind one protocol (see :mod:`recpoison.attacks.base`)."""

from .base import ATTACKS, Attack
from . import none, random, average, bandwagon, popular  # noqa: F401  (register)

make = ATTACKS.make

__all__ = ["ATTACKS", "Attack", "make"]
