"""Defenses behind one protocol (see :mod:`recpoison.defenses.base`).

Every public module of this package registers defenses; a module is imported when one of its names is first used (:func:`~recpoison.registry.declare_submodules`).
"""

from ..registry import declare_submodules
from .base import DEFENSES, Defense, build, check_victim, parse_chain, split_params

declare_submodules(DEFENSES, __name__, __path__)

make = DEFENSES.make

__all__ = ["DEFENSES", "Defense", "build", "check_victim", "make", "parse_chain", "split_params"]
