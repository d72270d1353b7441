"""SRWA, seed 003's name for Fang et al.'s graph attack (§5.1.2: "Supervised random walks attack
(SRWA) [6]: SRWA also formulates the poisoning attack as an optimization problem and assumes target
is a graph-based recommendation model"; [6] = Fang, Yang, Gong, Liu, ACSAC 2018, whose loss is the
Wilcoxon-Mann-Whitney loss of Backstrom & Leskovec's supervised random walks, hence the name).

It is the ``graph`` attack (:mod:`recpoison.attacks.graph`, where the algorithm, its gradient and
its departures are documented) with binary edges by default (``weights="binary"``: every interaction
is an edge of weight 1, as on seed 003's click data, REFERENCES.md §2.7). On implicit data ``graph``
already uses binary edges and 0/1 fake profiles (target and fillers at 1), so there ``srwa`` and
``graph`` produce the same profiles; on explicit data ``srwa`` walks the 0/1 pattern of the ratings
while its fillers are still rated by the attack's ``filler_ratings`` rule. Every other parameter and
default is ``graph``'s (Fang et al.'s ``b = 0.01``; seed 003's ``b = 0.1`` is RAPU-G's, not SRWA's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .base import ATTACKS
from .graph import GraphAttack, GraphConfig


@dataclass(frozen=True)
class SrwaConfig(GraphConfig):
    weights: Literal["rating", "binary"] = "binary"


@ATTACKS.register(
    "srwa",
    paper="Fang, Yang, Gong, Liu, ACSAC 2018 (seed 003 §5.1.2 SRWA)",
    summary="the graph attack with binary edges (seed 003's SRWA baseline on click data)",
)
class SrwaAttack(GraphAttack):
    Config = SrwaConfig
    users = "all"
