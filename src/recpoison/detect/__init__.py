"""Fake-user detectors behind one protocol (see :mod:`recpoison.detect.base`).

Every public module of this package registers detectors; a module is imported when one of its names is first used (:func:`~recpoison.registry.declare_submodules`).
"""

from ..registry import declare_submodules
from .base import DETECTORS, Detector

declare_submodules(DETECTORS, __name__, __path__)

make = DETECTORS.make

__all__ = ["DETECTORS", "Detector", "make"]
