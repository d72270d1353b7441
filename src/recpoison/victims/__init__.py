"""Victim recommenders behind one protocol (see :mod:`recpoison.victims.base`)."""

from .base import VICTIMS, Recommender, topk_indices
from . import mf  # noqa: F401  (registers "mf")

make = VICTIMS.make

__all__ = ["VICTIMS", "Recommender", "make", "topk_indices"]
