"""Data-poisoning attacks behind one protocol (see :mod:`recpoison.attacks.base`).

Every public module of this package registers one attack; a module is imported when one of its names is first used (:func:`~recpoison.registry.declare_submodules`).
"""

from ..registry import declare_submodules
from .base import ATTACKS, Attack

declare_submodules(ATTACKS, __name__, __path__)

make = ATTACKS.make

__all__ = ["ATTACKS", "Attack", "make"]
