"""Defenses behind one protocol (see :mod:`recpoison.defenses.base`).

Every public module of this package registers defenses; they are imported here.
"""

from ..registry import import_submodules
from .base import DEFENSES, Defense, build, check_victim, parse_chain, split_params

import_submodules(__name__, __path__)

make = DEFENSES.make

__all__ = ["DEFENSES", "Defense", "build", "check_victim", "make", "parse_chain", "split_params"]
