"""No attack: the clean baseline every comparison includes (injects no user)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import ATTACKS, Attack


@dataclass(frozen=True)
class NoAttackConfig:
    pass


@ATTACKS.register("none", paper="baseline", summary="no fake users (clean reference)")
class NoAttack(Attack):
    Config = NoAttackConfig
    injects = False
