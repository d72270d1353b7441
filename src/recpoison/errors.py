"""User-facing errors.

Every error a user can cause is a subclass of :class:`RecPoisonError`; its message is one line that
says what was wrong and what to do. The CLI prints it without a traceback and exits non-zero.
"""

from __future__ import annotations


class RecPoisonError(Exception):
    """Base class of every user-facing error."""

    exit_code = 2


class ConfigError(RecPoisonError, ValueError):
    """A parameter, option or spec field has a value that is not allowed."""


class UnknownNameError(ConfigError, KeyError):
    """A registry name (dataset, victim, attack, ...) does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(RecPoisonError):
    """A data file is missing, unreachable, corrupt or malformed."""


class NotFittedError(RecPoisonError, RuntimeError):
    """A model was used before ``fit``."""


class FitError(RecPoisonError, ArithmeticError):
    """A model's fit diverged (non-finite factors or scores)."""


class RunDirError(RecPoisonError):
    """A run folder or its results store cannot be used (not a folder, not writable, foreign or
    corrupt store, another sweep holds it, or a different spec ran there)."""
