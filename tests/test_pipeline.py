"""Pipeline pieces: the fake-profile cache (memory, disk, prefix) and the HR denominators."""

import numpy as np
import pytest
import scipy.sparse as sp



def test_fake_profiles_are_kept_on_disk_and_served_by_prefix(tmp_path):
    """CellCache(fakes_dir): a second cache (another worker, a resumed sweep) reuses the stored run
    without calling the attack; a prefix-stable attack serves a smaller size from a larger run."""
    from recpoison import attacks as attacks_mod
    from recpoison.pipeline import CellCache
    from recpoison.testing import planted_blocks

    view = planted_blocks(seed=1)
    calls = []
    attack = attacks_mod.make("random")

    def make(n):
        calls.append(n)
        return attack.generate(view, np.array([3]), n, 5, np.random.default_rng(0))

    key = ("k", 1)
    first = CellCache(tmp_path).fakes(key, 4, lambda: make(4), view, prefix=True)
    assert calls == [4] and list(tmp_path.glob("*.npz"))
    again = CellCache(tmp_path).fakes(key, 2, lambda: make(2), view, prefix=True)  # from disk, first 2 rows
    assert calls == [4]
    assert (again.matrix != first.matrix[:2]).nnz == 0 and again.n_normal == 0
    assert again.rating_scale == view.rating_scale and list(again.item_ids) == list(view.item_ids)
    CellCache(tmp_path).fakes(key, 6, lambda: make(6), view, prefix=True)  # longer: a new run replaces it
    assert calls == [4, 6]
    CellCache(tmp_path).fakes(key, 2, lambda: make(2), view, prefix=False)  # not prefix-stable: exact size only
    assert calls == [4, 6, 2]
    for f in tmp_path.glob("*.npz"):  # a damaged file is ignored: the attack runs again
        f.write_bytes(b"not a zip")
    CellCache(tmp_path).fakes(key, 2, lambda: make(2), view, prefix=False)
    assert calls == [4, 6, 2, 2]


def test_hit_ratio_over_all_users_counts_raters_as_misses():
    from recpoison.interactions import Interactions
    from recpoison.metrics import hit_ratio_from_topk

    m = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32))
    data = Interactions(m)
    topk = np.array([[2], [0], [0], [2]])  # users 1, 2 get item 0; user 0 rated it
    assert hit_ratio_from_topk(topk, data, np.array([0]))[0] == pytest.approx(2 / 2)
    assert hit_ratio_from_topk(topk, data, np.array([0]), denominator="all")[0] == pytest.approx(2 / 4)
