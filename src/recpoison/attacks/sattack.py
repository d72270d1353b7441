"""The four S-attack variants of seed 001 (§5.1.2 and §7.2); the algorithm is in :mod:`._sattack`."""

from __future__ import annotations

from ._sattack import SAttack
from .base import ATTACKS

_PAPER = "Fang, Gong, Liu, WWW 2020 (seed 001)"


@ATTACKS.register("u-tna", paper=f"{_PAPER} §5.1.2", summary="S-attack over all normal users (S = U)")
class UTNA(SAttack):
    """U-Top-N attack: eq. (5), the loss over every normal user."""

    users = "all"


@ATTACKS.register("s-tna-rand", paper=f"{_PAPER} §5.1.2", summary="S-attack over Delta random users")
class STNARand(SAttack):
    """S-Top-N attack + Random: eq. (6) with ``Delta`` users drawn uniformly."""

    users = "random"


@ATTACKS.register(
    "s-tna-inf", paper=f"{_PAPER} §4, Alg. 1-2", summary="S-attack over the Delta most influential users (influence function)"
)
class STNAInf(SAttack):
    """S-Top-N attack + Influence: ``S`` from Algorithm 1 with the influence of eqs. (8)-(13)."""

    users = "influence"


@ATTACKS.register("weighting", paper=f"{_PAPER} §7.2, eqs. 30-31", summary="S-attack over all users weighted by influence")
class Weighting(SAttack):
    """Weighting: eq. (30), every normal user weighted by ``pi(u, t) / sum pi`` (eq. 31)."""

    users = "weights"
