"""Rating-profile features for fake-user detection, vectorised over a users x items CSR.

Definitions (REFERENCES.md §6.3), with ``n_u`` = number of ratings of user u, ``l_i`` = number of
ratings of item i, ``r̄_i`` = mean rating of item i, all computed on the data the detector is given
(a provider sees the poisoned data, fake users included):

- **RDMA** (Chirita, Nejdl & Zamfir, WIDM 2005): ``(1/n_u) Σ_{i∈I_u} |r_ui − r̄_i| / l_i``.
- **WDMA** (Williams, Mobasher & Burke, UMUAI 2007 / Burke et al., KDD 2006):
  ``(1/n_u) Σ |r_ui − r̄_i| / l_i²``.
- **WDA** (same): ``Σ |r_ui − r̄_i| / l_i`` (RDMA's numerator).
- **LengthVar** (Burke et al. 2006): ``|n_u − n̄| / Σ_v (n_v − n̄)²``.
- **DegSim** (Chirita et al. 2005): the mean Pearson correlation of u with its ``k`` most
  correlated other users (k = 25, Burke et al. 2006); correlation over co-rated items, each user
  centred on the mean of all their ratings.
- **MeanVar** (Williams et al. 2007, average-attack model): for a candidate target j among the items
  u rated r_max, ``Σ_{i∈I_u \\ {j}} (r_ui − r̄_i)² / |I_u \\ {j}|``; the feature is its minimum over
  the candidates (a user with no r_max rating: the variance over all their items).
- **FMTD** (Williams et al. 2007, segment/bandwagon model): ``|mean_{i∈P_T} r_ui − mean_{k∈P_F}
  r_uk|`` with P_T the items u rated r_max and P_F the rest, both the user's own ratings.
- **TMF** (Williams et al. 2007, target model focus): ``F_i`` = number of users who rated i r_max,
  over the largest such number of any item; ``TMF_u = max_{j∈P_T} F_j``.

Edge cases (our choices, none is stated by the papers): an item nobody rated never enters a sum; a
user without ratings gets 0 in every feature but LengthVar (which is defined: |0 - n̄| / Σ); FMTD and TMF are 0 for a user with no r_max rating, and
FMTD is 0 when every rating of u is r_max (P_F empty); DegSim counts a pair with fewer than two
co-rated items, or a constant profile on them, as correlation 0.

SDLib's pitfalls are not repeated (REFERENCES.md §6.3): FMTD uses the user's own ratings, LengthVar
the mean over all profiles given, DegSim excludes the user itself.

Every feature needs rating values: on implicit feedback (all ratings 1) they are undefined, as seed
000 notes, and :func:`profile_features` refuses such data.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from ..interactions import Interactions

#: every feature this module computes, in a fixed order
FEATURES = ("rdma", "wdma", "wda", "lengthvar", "degsim", "meanvar", "fmtd", "tmf")
#: seed 001 §6: the six features of Fang et al.'s SVM
SEED001_FEATURES = ("rdma", "wdma", "wda", "tmf", "fmtd", "meanvar")


def require_ratings(data: Interactions, who: str = "rating features") -> None:
    """Refuse implicit feedback: rating-deviation features are all 0 there (seed 000)."""
    if data.implicit or data.r_min == data.r_max:
        raise ConfigError(
            f"{who} are undefined for implicit feedback (every rating is the same value, seed 000 §VI); "
            "use a data set with rating values, or the perfect / random oracles"
        )


def _item_stats(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per item: number of ratings l_i and mean rating r̄_i (0 where l_i = 0), over all rows."""
    l = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)
    s = np.bincount(m.indices, weights=m.data.astype(np.float64), minlength=m.shape[1])
    mean = np.divide(s, l, out=np.zeros_like(s), where=l > 0)
    return l, mean


def _row_sum(m: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (one per stored entry of ``m``) over each row (0 for an empty row)."""
    return np.asarray(sp.csr_matrix((values, m.indices, m.indptr), shape=m.shape).sum(axis=1)).ravel()


def _row_max(m: sp.csr_matrix, values: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """Maximum of ``values`` over each row's stored entries (``empty`` for an empty row).

    ``empty`` must not exceed any value: it is appended as a sentinel so that ``reduceat`` never
    reads past a row (the last row's segment runs to the end of the array)."""
    ext = np.append(np.asarray(values, dtype=np.float64), empty)
    red = np.maximum.reduceat(ext, m.indptr[:-1]) if m.shape[0] else np.zeros(0)
    return np.where(np.diff(m.indptr) > 0, red, empty)


def degsim(m: sp.csr_matrix, k: int = 25, block: int = 2048) -> np.ndarray:
    """DegSim: mean Pearson correlation with the ``k`` most correlated other users.

    Pairwise Pearson over co-rated items by sparse products, in row blocks (memory ``block x
    n_users``): with ``z`` the user-centred ratings and ``b`` the rated pattern,
    ``num = z zᵀ``, ``den_u = (z²) bᵀ``, ``den_v = b (z²)ᵀ`` restricted to co-rated items.
    """
    m = sp.csr_matrix(m, dtype=np.float64)
    n = m.shape[0]
    if n < 2:
        return np.zeros(n)
    cnt = np.diff(m.indptr)
    sums = _row_sum(m, m.data)
    mean_u = np.divide(sums, cnt, out=np.zeros(n), where=cnt > 0)
    z = m.copy()
    z.data = m.data - np.repeat(mean_u, cnt)
    z2 = z.multiply(z).tocsr()
    b = m.copy()
    b.data = np.ones_like(b.data)
    zt, z2t, bt = z.T.tocsr(), z2.T.tocsr(), b.T.tocsr()
    kk = min(k, n - 1)
    out = np.zeros(n)
    for s in range(0, n, block):
        e = min(n, s + block)
        num = (z[s:e] @ zt).toarray()
        du = (z2[s:e] @ bt).toarray()
        dv = (b[s:e] @ z2t).toarray()
        co = (b[s:e] @ bt).toarray()  # co-rated item counts
        den = np.sqrt(du * dv)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where((den > 0) & (co >= 2), num / den, 0.0)
        w[np.arange(e - s), np.arange(s, e)] = -np.inf  # never one's own neighbour
        top = -np.partition(-w, kk - 1, axis=1)[:, :kk]
        out[s:e] = top.mean(axis=1)
    return out


def profile_features(
    data: Interactions, names: tuple[str, ...] = FEATURES, degsim_k: int = 25
) -> np.ndarray:
    """A ``(n_users, len(names))`` float64 array of the named features (module docstring)."""
    require_ratings(data)
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ConfigError(f"unknown feature {unknown[0]!r}; allowed: {', '.join(FEATURES)}")
    m = sp.csr_matrix(data.matrix, dtype=np.float64)
    n_users = m.shape[0]
    cnt = np.diff(m.indptr).astype(np.float64)
    has = cnt > 0
    l, mean_i = _item_stats(m)
    dev = m.data - mean_i[m.indices]
    adev = np.abs(dev)
    r_max = data.r_max
    is_max = np.isclose(m.data, r_max)
    cols: dict[str, np.ndarray] = {}

    def per_user(x):
        return np.divide(x, cnt, out=np.zeros(n_users), where=has)

    if {"rdma", "wda"} & set(names):
        wda = _row_sum(m, adev / l[m.indices])
        cols["wda"] = wda
        cols["rdma"] = per_user(wda)
    if "wdma" in names:
        cols["wdma"] = per_user(_row_sum(m, adev / l[m.indices] ** 2))
    if "lengthvar" in names:
        nbar = cnt.mean() if n_users else 0.0
        tot = float(((cnt - nbar) ** 2).sum())
        cols["lengthvar"] = np.abs(cnt - nbar) / tot if tot > 0 else np.zeros(n_users)
    if "degsim" in names:
        cols["degsim"] = degsim(m, degsim_k)
    if "meanvar" in names:
        sq = dev**2
        total = _row_sum(m, sq)
        # removing the candidate with the largest squared deviation minimises the rest's variance
        best = _row_max(m, np.where(is_max, sq, -np.inf), empty=-np.inf)
        n_max = _row_sum(m, is_max.astype(np.float64))
        rest = cnt - 1
        with_t = np.divide(total - best, rest, out=np.zeros(n_users), where=(n_max > 0) & (rest > 0))
        cols["meanvar"] = np.where(n_max > 0, with_t, per_user(total))
    if "fmtd" in names:
        n_t = _row_sum(m, is_max.astype(np.float64))
        n_f = cnt - n_t
        s_f = _row_sum(m, np.where(is_max, 0.0, m.data))
        mean_f = np.divide(s_f, n_f, out=np.zeros(n_users), where=n_f > 0)
        cols["fmtd"] = np.where((n_t > 0) & (n_f > 0), np.abs(r_max - mean_f), 0.0)
    if "tmf" in names:
        tcount = np.bincount(m.indices[is_max], minlength=m.shape[1]).astype(np.float64)
        top = tcount.max() if tcount.size else 0.0
        f = tcount / top if top > 0 else tcount
        cols["tmf"] = _row_max(m, np.where(is_max, f[m.indices], 0.0), empty=0.0)
    return np.column_stack([cols[n] for n in names]) if names else np.zeros((n_users, 0))
