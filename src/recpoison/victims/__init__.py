"""Victim recommenders behind one protocol (see :mod:`recpoison.victims.base`).

Every public module of this package registers one victim; they are imported here.
"""

from ..registry import import_submodules
from .base import VICTIMS, Recommender, topk_indices

import_submodules(__name__, __path__)

make = VICTIMS.make

__all__ = ["VICTIMS", "Recommender", "make", "topk_indices"]
