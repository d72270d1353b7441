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


def test_attacks_that_optimise_a_top_k_list_receive_the_cells_k(monkeypatch):
    """The S-attacks and dl-ncf get the cell's K (their list length unless pinned); K is part of the
    fake-profile key only for them, so other attacks' profiles are shared across K."""
    from recpoison import attacks as attacks_mod
    from recpoison.pipeline import CellCache, CellSpec, run_cell

    seen = []
    real = attacks_mod.base.Attack.generate

    def spy(self, view, targets, n_fake, n_filler, rng, k=None):
        out = real(self, view, targets, n_fake, n_filler, rng, k=k)
        seen.append((self.name, k, self.list_length() if self.k_param else None))
        return out

    monkeypatch.setattr(attacks_mod.base.Attack, "generate", spy)
    cache = CellCache()
    small = {"d": 4, "sweeps": 3, "warm_sweeps": 1, "steps": 2, "delta": 20}
    for k in (5, 20):
        run_cell(CellSpec(dataset="synthetic", victim="mostpop", attack="u-tna", attack_params=small, attack_size=0.01, n_targets=1, k=k), cache)
        run_cell(CellSpec(dataset="synthetic", victim="mostpop", attack="random", attack_size=0.01, n_targets=1, k=k), cache)
    assert ("u-tna", 5, 5) in seen and ("u-tna", 20, 20) in seen
    assert [s for s in seen if s[0] == "random"] == [("random", 5, None)]  # the K=20 cell reused K=5's profiles
    pinned = attacks_mod.make("u-tna", top_n=7, **small)
    assert not pinned.uses_cell_k() and pinned.list_length() == 7


def test_accuracy_threshold_counts_only_users_whose_held_out_rating_meets_it():
    """Seed 004 App. D: accuracy over the users whose held-out rating is >= the threshold, beside
    the accuracy over all users; both recomputed here from the split and the victim's top-K."""
    from recpoison import victims
    from recpoison.metrics import loo_accuracy_from_topk
    from recpoison.pipeline import CellCache, CellSpec, load_data, make_split, run_cell
    from recpoison.seeding import derive_seed

    spec = CellSpec(dataset="synthetic", victim="mostpop", attack="none", n_targets=1, k=5, accuracy_threshold=4)
    res = run_cell(spec, CellCache())
    assert res["accuracy_threshold"] == 4
    split = make_split(spec, load_data(spec), CellCache())
    model = victims.make("mostpop", seed=derive_seed(0, "victim")).fit(split.train)
    users = np.arange(split.train.n_normal)
    topk = model.recommend(users, 5)
    liked = split.test_ratings[users] >= 4
    assert 0 < liked.sum() < len(users)  # the threshold splits the users
    expect = loo_accuracy_from_topk(topk, np.where(liked, split.test_items[users], -1), users)
    assert res["accuracy_before"]["hr_liked"] == pytest.approx(expect["hr"])
    assert res["accuracy_before"]["ndcg_liked"] == pytest.approx(expect["ndcg"])
    assert res["accuracy_before"]["hr"] == pytest.approx(loo_accuracy_from_topk(topk, split.test_items, users)["hr"])
    assert "hr_liked" not in run_cell(CellSpec(dataset="synthetic", victim="mostpop", attack="none", n_targets=1, k=5), CellCache())["accuracy_before"]
