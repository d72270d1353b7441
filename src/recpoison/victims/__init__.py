"""Victim recommenders behind one protocol (see :mod:`recpoison.victims.base`).

Every public module of this package registers one victim; a module is imported when one of its names is first used (:func:`~recpoison.registry.declare_submodules`).
"""

from ..registry import declare_submodules
from .base import VICTIMS, Recommender, topk_indices

declare_submodules(VICTIMS, __name__, __path__)

make = VICTIMS.make

__all__ = ["VICTIMS", "Recommender", "make", "topk_indices"]
