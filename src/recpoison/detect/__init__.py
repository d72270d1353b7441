"""Fake-user detectors behind one protocol (see :mod:`recpoison.detect.base`).

Every public module of this package registers detectors; they are imported here.
"""

from ..registry import import_submodules
from .base import DETECTORS, Detector

import_submodules(__name__, __path__)

make = DETECTORS.make

__all__ = ["DETECTORS", "Detector", "make"]
