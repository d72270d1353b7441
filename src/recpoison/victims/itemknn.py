"""ItemKNN: item-based k-nearest-neighbour collaborative filtering with cosine similarity.

Sarwar, Karypis, Konstan, Riedl, "Item-based collaborative filtering recommendation algorithms",
WWW 2001 (cosine similarity, §3.1.1), in the top-N form of Deshpande and Karypis, "Item-based top-N
recommendation algorithms", TOIS 2004 (§4: keep the k most similar items of each item, score an
item by the sum of its similarities to the user's items). On the binary users x items matrix ``B``::

    s_ij = (b_i . b_j) / (||b_i|| ||b_j|| + shrink)        (i != j; s_ii = 0)
    S_k  = s restricted, in each row i, to the k largest s_ij (ties: lower item index first)
    score(u, i) = sum_{j in I_u} (S_k)_ij   i.e.   scores = B S_k^T

``b_i`` is item i's column of ``B``. ``shrink`` (default 0, plain cosine) damps similarities
computed from few co-occurrences. Implicit feedback: any rating becomes 1 (or ratings >=
``threshold``). Everything is sparse and vectorised: ``B^T B`` is one sparse product, and the
top-k per row comes from one ``lexsort`` of the stored similarities. Deshpande and Karypis also
normalise each row of ``S_k`` to sum 1; we do not (the brief's definition, and the usual ItemKNN
of recommender libraries), so popular neighbourhoods weigh more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..config import check
from ..interactions import Interactions
from .base import VICTIMS, Recommender


@dataclass(frozen=True)
class ItemKNNConfig:
    """Hyper-parameters of :class:`ItemKNN`."""

    k: int = 100
    shrink: float = 0.0
    seed: int = 0
    #: explicit ratings >= threshold become interactions; None: every rating (seed 003 App. A.5)
    threshold: float | None = None

    def __post_init__(self) -> None:
        check(self.k >= 1, f"itemknn: k={self.k} must be at least 1")
        check(self.shrink >= 0, f"itemknn: shrink={self.shrink} must be >= 0")
        check(self.seed >= 0, f"itemknn: seed={self.seed} must be >= 0")


def cosine_topk(B: sp.csr_matrix, k: int, shrink: float = 0.0) -> sp.csr_matrix:
    """Items x items cosine similarities of the columns of ``B``, top-``k`` per row, diagonal 0.

    Returns a float64 csr whose row ``i`` holds the ``k`` largest similarities of item ``i`` to
    other items (fewer when item ``i`` co-occurs with fewer items; zero similarities are never kept).
    """
    B = sp.csr_matrix(B, dtype=np.float64, copy=True)
    B.data[:] = 1.0
    C = (B.T @ B).tocoo()  # co-occurrence counts, items x items
    norms = np.sqrt(np.asarray(B.sum(axis=0)).ravel())
    off = C.row != C.col
    row, col = C.row[off], C.col[off]
    sim = C.data[off] / (norms[row] * norms[col] + shrink)
    # rank within each row: by similarity descending, then column ascending (deterministic)
    order = np.lexsort((col, -sim, row))
    row, col, sim = row[order], col[order], sim[order]
    start = np.searchsorted(row, np.arange(B.shape[1]))
    rank = np.arange(row.size) - start[row]
    keep = (rank < k) & (sim > 0)
    out = sp.csr_matrix((sim[keep], (row[keep], col[keep])), shape=(B.shape[1], B.shape[1]))
    out.sort_indices()
    return out


@VICTIMS.register(
    "itemknn",
    paper="Sarwar et al., WWW 2001 (item cosine); Deshpande & Karypis, TOIS 2004 (top-k neighbours)",
    summary="item-item cosine on binary interactions, k neighbours per item, score = sum of sims",
)
class ItemKNN(Recommender):
    """ItemKNN. Learned: ``similarity_`` (items x items csr, row i = item i's k neighbours)."""

    Config = ItemKNNConfig
    feedback = "implicit"

    def _fit(self, data: Interactions) -> None:
        self.similarity_ = cosine_topk(data.matrix, self.config.k, self.config.shrink)
        self._simT = self.similarity_.T.tocsr()
        self._B = data.binary().astype(np.float64)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self._B[users] @ self._simT).toarray()
