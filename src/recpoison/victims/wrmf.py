"""WRMF: weighted regularised matrix factorisation for implicit feedback, solved by ALS.

Hu, Koren, Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008, eq. (3);
in the notation of seed 003 (RAPU, App. A.4, eq. (10)), the surrogate and one of the victims there::

    L = sum_{u,i} w_ui (r_ui - P_u Q_i^T)^2 + lambda (||P||^2 + ||Q||^2)          R_hat = P Q^T

over *all* (u, i) pairs, ``r_ui`` = 1 for an interaction and 0 otherwise, ``w_ui`` = ``alpha`` for an
interaction and 1 for a missing one. Scores are ``X Y^T`` (``user_factors_ @ item_factors_.T``).

Solver: the ``implicit`` library's ALS (``implicit.cpu.als.AlternatingLeastSquares``, version
0.7), which implements exactly this loss: it receives the users x items matrix of confidences
(``alpha`` on interactions), treats missing entries as preference 0 with confidence 1 and adds
``regularization`` to the diagonal of every normal-equation system (see its pure-Python reference
``implicit.cpu.als.least_squares``). ``use_cg=True`` (its default) solves each system approximately
with 3 conjugate-gradient steps warm-started from the previous sweep; ``use_cg=False`` solves them
exactly (Cholesky), about 7x slower.

Defaults, seed 003 Table 4 (MovieLens): latent dimension 64, weight of a positive 20
(``alpha = 20``; Hu et al. write ``c_ui = 1 + alpha r_ui``, so this is their alpha = 19),
L2 coefficient 1e-5. Departures:

* Table 4 trains WRMF by gradient descent (learning rate 1e-2, 100 epochs). ALS needs no learning
  rate and converges in far fewer sweeps: ``iterations = 15`` (implicit's default). On the
  leave-one-out split of ML-100K (seed 0) HR@10 is 0.125 after 15 sweeps (0.4 s) and 0.129 after
  100 sweeps (2.9 s), the same within the noise of 943 test users (standard error ~0.011).
* Initial factors: implicit draws them uniform in [0, 0.01) from ``random_state`` (the paper gives
  no initialisation).

Determinism: ``random_state = seed``, ``num_threads = threads`` (default 1) and the BLAS thread
pool limited to one thread during the fit (``threadpoolctl``): two fits give identical factors.
Each user's system is solved independently, so more threads change only the speed.

``user_embeddings()`` returns ``P`` (``user_factors_``), e.g. for RVD-style neighbour search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check
from ..interactions import Interactions
from .base import VICTIMS, Recommender


@dataclass(frozen=True)
class WRMFConfig:
    """Hyper-parameters of :class:`WRMF` (defaults: seed 003 Table 4, MovieLens; see the module)."""

    factors: int = 64
    regularization: float = 1e-5
    #: weight w_ui of an observed interaction (missing entries weigh 1)
    alpha: float = 20.0
    iterations: int = 15
    #: exact Cholesky solves instead of implicit's 3-step conjugate gradient
    exact: bool = False
    threads: int = 1
    seed: int = 0
    #: explicit ratings >= threshold become interactions; None: every rating (seed 003 App. A.5)
    threshold: float | None = None

    def __post_init__(self) -> None:
        check(self.factors >= 1, f"wrmf: factors={self.factors} must be at least 1")
        check(self.regularization >= 0, f"wrmf: regularization={self.regularization} must be >= 0")
        check(self.alpha > 0, f"wrmf: alpha={self.alpha} must be positive (weight of an interaction)")
        check(self.iterations >= 1, f"wrmf: iterations={self.iterations} must be at least 1")
        check(self.threads >= 1, f"wrmf: threads={self.threads} must be at least 1")
        check(0 <= self.seed < 2**32, f"wrmf: seed={self.seed} must be in [0, 2**32)")


@VICTIMS.register(
    "wrmf",
    paper="Hu, Koren, Volinsky, ICDM 2008; seed 003 App. A.4 eq. (10), settings of Table 4",
    summary="weighted regularised MF on implicit feedback, ALS through the implicit library",
)
class WRMF(Recommender):
    """WRMF. Learned: ``user_factors_`` (n_users x factors), ``item_factors_`` (n_items x factors)."""

    Config = WRMFConfig
    feedback = "implicit"

    def _fit(self, data: Interactions) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        c = self.config
        conf = data.matrix.astype(np.float32)  # users x items, 1.0 per interaction
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=c.factors,
                regularization=c.regularization,
                alpha=c.alpha,
                iterations=c.iterations,
                use_cg=not c.exact,
                num_threads=c.threads,
                random_state=c.seed,
            )
            model.fit(conf, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        if self.user_factors_.shape != (data.n_users, c.factors) or self.item_factors_.shape != (
            data.n_items,
            c.factors,
        ):
            raise AssertionError("implicit returned factors of unexpected shapes")

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def user_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_

    def loss(self) -> float:
        """Eq. (10) at the learned factors (dense; for small data and tests)."""
        self._check_fitted()
        R = self.train_.matrix if self.train_.implicit else self._prepare(self.train_).matrix
        R = (R.toarray() != 0).astype(np.float64)
        W = np.where(R > 0, self.config.alpha, 1.0)
        X = self.user_factors_.astype(np.float64)
        Y = self.item_factors_.astype(np.float64)
        return float(
            np.sum(W * (R - X @ Y.T) ** 2)
            + self.config.regularization * (np.sum(X**2) + np.sum(Y**2))
        )


@dataclass(frozen=True)
class WRMFGDConfig:
    """Hyper-parameters of :class:`WRMFGD` (defaults: seed 003's code and Table 4, MovieLens)."""

    factors: int = 64
    #: weight w_ui of an observed interaction (missing entries weigh 1)
    alpha: float = 20.0
    epochs: int = 100
    lr: float = 1e-2
    #: Adam's weight decay (the only L2 term of seed 003's code)
    weight_decay: float = 1e-5
    init_std: float = 0.1
    seed: int = 0
    #: explicit ratings >= threshold become interactions; None: every rating (seed 003 App. A.5)
    threshold: float | None = None

    def __post_init__(self) -> None:
        check(isinstance(self.factors, int) and self.factors >= 1, f"wrmf-gd: factors={self.factors} must be an integer >= 1")
        check(self.alpha > 0, f"wrmf-gd: alpha={self.alpha} must be positive (weight of an interaction)")
        check(isinstance(self.epochs, int) and self.epochs >= 1, f"wrmf-gd: epochs={self.epochs} must be an integer >= 1")
        check(self.lr > 0, f"wrmf-gd: lr={self.lr} must be positive")
        check(self.weight_decay >= 0, f"wrmf-gd: weight_decay={self.weight_decay} must be >= 0")
        check(self.init_std > 0, f"wrmf-gd: init_std={self.init_std} must be positive")
        check(0 <= self.seed < 2**32, f"wrmf-gd: seed={self.seed} must be in [0, 2**32)")


@VICTIMS.register(
    "wrmf-gd",
    paper="Hu, Koren, Volinsky, ICDM 2008; trained as seed 003's code (App. A.4 eq. (10), Table 4)",
    summary="WRMF trained as seed 003 trains it: dense weighted squared error, full-batch Adam, 100 epochs",
)
class WRMFGD(WRMF):
    """Eq. (10) of seed 003 trained the way its code and Table 4 train the WRMF victim: the dense
    weighted squared error over all pairs (w+ = ``alpha`` = 20, 1 elsewhere), factors from
    N(0, 0.1^2), full-batch Adam (lr 1e-2, weight decay 1e-5: the only L2 term), 100 epochs
    (REFERENCES.md §2.3; the code's batches of 2,048 users are one batch on ML-100K). The training
    is ``attacks._unrolled.train_factors``, the same code as the attacks' WRMF surrogate, so this
    victim is exactly the model RAPU-G / RevAdv / RAPU-R craft their clicks against (up to the seed).

    Why a second WRMF: ``wrmf`` solves eq. (10) by ALS to near convergence with
    ``regularization`` 1e-5 on the *summed* loss, a much better-fitted (and, as measured in
    docs/seed003.md, far harder to attack) model than 100 Adam steps from a random start. Departure
    from the code: no checkpoint selection on a validation split (the code keeps the best of every
    10 epochs by Recall@50); the last epoch is kept. Dense: memory ``users x items`` floats (about
    6 MB on ML-100K, 2.3 GB on ML-1M)."""

    Config = WRMFGDConfig

    def memory_bytes(self, n_users: int, n_items: int) -> int:
        """Dense R, W, the residual and the scores (float32), plus factors and Adam moments."""
        return 4 * (5 * n_users * n_items + 6 * (n_users + n_items) * self.config.factors)

    def _fit(self, data: Interactions) -> None:
        from ..attacks._unrolled import WRMFSettings, train_factors
        from ._neural import training_threads

        c = self.config
        s = WRMFSettings(d=c.factors, lr=c.lr, weight_decay=c.weight_decay, pos_weight=c.alpha, init_std=c.init_std)
        with training_threads(True):  # one thread: the factors do not depend on the machine's cores
            P, Q = train_factors(data.matrix, s, c.epochs, c.seed)
        self.user_factors_ = P.astype(np.float32)
        self.item_factors_ = Q.astype(np.float32)

    def loss(self) -> float:
        """The weighted squared error of eq. (10) at the learned factors (dense; the weight decay,
        Adam's L2 term, is not a term of this loss)."""
        self._check_fitted()
        R = self.train_.matrix if self.train_.implicit else self._prepare(self.train_).matrix
        R = (R.toarray() != 0).astype(np.float64)
        W = np.where(R > 0, self.config.alpha, 1.0)
        X = self.user_factors_.astype(np.float64)
        Y = self.item_factors_.astype(np.float64)
        return float(np.sum(W * (R - X @ Y.T) ** 2))
