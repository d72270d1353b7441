"""Data-poisoning attacks behind one protocol (see :mod:`recpoison.attacks.base`).

Every public module of this package registers one attack; they are imported here.
"""

from ..registry import import_submodules
from .base import ATTACKS, Attack

import_submodules(__name__, __path__)

make = ATTACKS.make

__all__ = ["ATTACKS", "Attack", "make"]
