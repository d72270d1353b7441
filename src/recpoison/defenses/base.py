"""The ``Defense`` protocol (DESIGN.md, "Core types"): a defense wraps a victim and is one.

A :class:`Defense` is a :class:`~recpoison.victims.base.Recommender`: ``defense.wrap(victim)``
returns the defense itself, and ``fit`` / ``score`` / ``recommend`` then behave as the defended
model's, so every metric, runner and report works unchanged.

Two kinds (``kind``):

* ``"training"`` defenses (APR, LTSMF, RMF) replace the victim's *training*: ``fit`` trains the
  wrapped model with the defense's objective (they defend the victims named in ``defends``);
* ``"inference"`` defenses (RVD) leave training alone (``fit`` fits the wrapped model as usual) and
  replace ``score`` / ``recommend``.

Defenses chain with ``+``, outermost first: ``rvd+ltsmf`` is RVD on top of an LTSMF-trained MF
(RVD fine-tunes through the wrapped model's ``finetune``, so with their losses; seed 004 Fig. 2/4).
:func:`build` turns such a name and its parameters into the wrapped model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ..errors import ConfigError, NotFittedError
from ..interactions import Interactions
from ..registry import Registry
from ..victims.base import Recommender

DEFENSES: Registry["Defense"] = Registry("defense")


class Defense(Recommender):
    """Base class. ``wrap(inner)`` before ``fit``; subclasses implement ``_fit_inner`` (training
    defenses: train ``self.inner`` their way) and/or ``_score``."""

    kind: ClassVar[Literal["training", "inference"]] = "inference"
    #: False only for ``none``: the pipeline skips the defense stage
    active: ClassVar[bool] = True
    #: victim names a training defense can train (None: any victim with the methods it needs)
    defends: ClassVar[tuple[str, ...] | None] = None
    #: methods the wrapped model must have
    needs: ClassVar[tuple[str, ...]] = ()

    inner: Recommender | None = None

    # ------------------------------------------------------------------ wrapping
    def wrap(self, inner: Recommender) -> "Defense":
        """Defend ``inner`` (an unfitted victim, or for an inference defense a fitted one: see
        :meth:`attach`). Returns ``self``."""
        if not isinstance(inner, Recommender):
            raise ConfigError(f"defense {self.name} wraps a recommender, got {type(inner).__name__}")
        base = inner
        while isinstance(base, Defense):  # the victim at the bottom of a chain
            base = base.inner
        if self.defends is not None and base.name not in self.defends:
            raise ConfigError(
                f"defense {self.name} defends {', '.join(self.defends)} only (it changes their training); "
                f"the victim is {base.name}: choose one of those victims or another defense"
            )
        missing = [m for m in self.needs if getattr(type(inner), m, None) is None or getattr(type(inner), m) is getattr(Recommender, m, None)]
        if missing:
            raise ConfigError(
                f"defense {self.name} needs a victim with {', '.join(missing)}; {inner.name} has none: "
                "choose mf, autorec, cdae, nsvd, gmf, ncf or lightgcn"
            )
        self.inner = inner
        return self

    def attach(self, fitted: Recommender) -> "Defense":
        """An inference defense on an already fitted model (no refit): the pipeline defends the
        poisoned model it has just evaluated without training it again."""
        if self.kind != "inference":
            raise ConfigError(f"defense {self.name} changes training: it cannot be attached to a fitted model")
        self.wrap(fitted)
        if getattr(fitted, "train_", None) is None:
            raise NotFittedError(f"defense {self.name}: attach needs a fitted model")
        self.train_ = fitted.train_
        self._after_fit(fitted.train_)
        return self

    @property
    def victim_name(self) -> str:
        base = self.inner
        while isinstance(base, Defense):
            base = base.inner
        return base.name if base is not None else "?"

    @property
    def predicts_ratings(self) -> bool:  # type: ignore[override]
        return bool(self.inner is not None and self.inner.predicts_ratings)

    # ------------------------------------------------------------------ Recommender
    def fit(self, data: Interactions) -> "Defense":
        if self.inner is None:
            raise ConfigError(f"defense {self.name}: wrap(victim) before fit")
        if not isinstance(data, Interactions):
            raise TypeError("fit expects an Interactions (users x items)")
        self._fit_inner(data)
        self.train_ = data
        self._after_fit(data)
        return self

    def _fit_inner(self, data: Interactions) -> None:
        self.inner.fit(data)

    def _after_fit(self, data: Interactions) -> None:
        """Hook: state the defense needs at scoring time."""

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.inner.score(users)

    def recommend(self, users=None, k: int = 10, exclude_seen: bool = True, batch_size: int = 2048) -> np.ndarray:
        """As the victim's; the last call's lists are kept (a defended model does not change after
        ``fit``, and scoring through RVD costs a fine-tuning per user)."""
        key = (None if users is None else np.asarray(users).tobytes(), k, exclude_seen)
        memo = getattr(self, "_memo", None)
        if memo is not None and memo[0] == key and memo[2] is getattr(self, "train_", None):
            return memo[1].copy()
        out = super().recommend(users, k, exclude_seen, batch_size)
        self._memo = (key, out, self.train_)
        return out.copy()

    def memory_bytes(self, n_users: int, n_items: int) -> int:
        return self.inner.memory_bytes(n_users, n_items) if self.inner is not None else 0

    # RVD on top of a training defense fine-tunes through these (with the defense's own loss)
    def user_embeddings(self) -> np.ndarray:
        return self.inner.user_embeddings()


def parse_chain(name: str) -> list[str]:
    """``"rvd+ltsmf"`` -> ``["rvd", "ltsmf"]`` (outermost first); each name must be registered,
    at most one training defense, and it must be the innermost."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("defense must be a name such as rvd, ltsmf or rvd+ltsmf")
    parts = [p.strip() for p in name.split("+")]
    if any(not p for p in parts):
        raise ConfigError(f"defense {name!r} has an empty part; write names joined by '+', e.g. rvd+ltsmf")
    for p in parts:
        DEFENSES.entry(p)  # unknown names: one-line error with the valid ones
    if len(parts) > 1 and "none" in parts:
        raise ConfigError(f"defense {name!r}: 'none' cannot be combined with other defenses")
    if len(set(parts)) != len(parts):
        raise ConfigError(f"defense {name!r} names a defense twice")
    kinds = [DEFENSES.entry(p).factory.kind for p in parts]
    if kinds.count("training") > 1:
        raise ConfigError(f"defense {name!r} combines two training defenses; at most one changes training")
    if "training" in kinds[:-1]:
        raise ConfigError(f"defense {name!r}: the training defense must come last (e.g. rvd+ltsmf)")
    return parts


def build(name: str, params: dict[str, Any], victim: Recommender, seed: int | None = None, attach: bool = False) -> Recommender:
    """The victim defended by ``name`` (a chain such as ``rvd+ltsmf``). ``params`` go to the
    defense that declares them (a parameter two defenses of the chain share goes to both; one
    no defense of the chain has is refused). ``seed`` fills a ``seed`` parameter not given.
    ``none`` returns ``victim`` itself. With ``attach``, ``victim`` is already fitted and every
    defense of the chain must be an inference defense: the result is ready to score."""
    parts = split_params(name, params)
    if not parts:
        return victim
    model: Recommender = victim
    for p, own in reversed(parts):  # innermost first
        if seed is not None and "seed" in DEFENSES.entry(p).factory.Config.__dataclass_fields__:
            own = {"seed": seed, **own}
        d = DEFENSES.make(p, **own)
        model = d.attach(model) if attach else d.wrap(model)
    return model


def split_params(name: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``[(defense, its parameters), ...]`` of a chain, outermost first (``[]`` for none), each
    set of parameters validated by building the defense's config; unknown names are refused."""
    parts = parse_chain(name)
    if parts == ["none"]:
        if params:
            raise ConfigError(f"defense 'none' takes no parameters (got {', '.join(sorted(params))})")
        return []
    fields = {p: set(getattr(DEFENSES.entry(p).factory.Config, "__dataclass_fields__", {})) for p in parts}
    unknown = sorted(set(params) - set().union(*fields.values()))
    if unknown:
        allowed = ", ".join(sorted(set().union(*fields.values()))) or "none"
        raise ConfigError(f"defense {name}: unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}")
    out = [(p, {k: v for k, v in params.items() if k in fields[p]}) for p in parts]
    for p, own in out:
        DEFENSES.make(p, **own)  # the config's own checks
    return out


def check_victim(name: str, victim: str) -> None:
    """Refuse, before any work, a chain that cannot defend ``victim`` (a training defense made for
    other victims, or a victim without the methods an inference defense calls)."""
    from ..victims import VICTIMS

    cls = VICTIMS.entry(victim).factory
    kinds = [DEFENSES.entry(p).factory for p in parse_chain(name)]
    for d in kinds:
        if d.defends is not None and victim not in d.defends:
            raise ConfigError(f"defense {d.name} defends {', '.join(d.defends)} only; the victim is {victim}: choose one of those victims or another defense")
    if any(d.kind == "training" for d in kinds):
        return  # the training defense provides what the inference defenses above it call
    for d in kinds:
        # a method only the base class has (user_embeddings raises there) does not count
        missing = [m for m in d.needs if getattr(cls, m, None) is None or getattr(cls, m) is getattr(Recommender, m, None)]
        if missing:
            raise ConfigError(
                f"defense {d.name} needs a victim with {', '.join(d.needs)}; {victim} lacks {', '.join(missing)}: "
                "choose mf, autorec, cdae, nsvd, gmf, ncf or lightgcn"
            )


@dataclass(frozen=True)
class NoDefenseConfig:
    """``none`` has no parameters."""


@DEFENSES.register("none", paper="-", summary="no defense (the victim as trained)")
class NoDefense(Defense):
    """The undefended victim (the baseline row of every defense table)."""

    Config = NoDefenseConfig
    active = False
