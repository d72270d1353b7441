import numpy as np
import pytest

from recpoison.errors import ConfigError
from recpoison.interactions import Interactions
from recpoison.splits import leave_one_out


def small():
    return Interactions.from_arrays(
        ["a", "a", "b", "c", "c", "c"],
        [10, 20, 20, 30, 10, 20],
        [5, 3, 4, 1, 2, 4],
        timestamps=[0, 5, 3, 2, 1, 9],
        name="t",
    )


def test_from_arrays_maps_ids_and_keeps_latest_duplicate():
    d = Interactions.from_arrays([1, 1, 2], [7, 7, 8], [2, 5, 3], timestamps=[10, 5, 1])
    assert d.shape == (2, 2) and d.nnz == 2
    assert d.matrix[0, 0] == 2  # the rating at t=10 is the latest
    np.testing.assert_array_equal(d.user_ids, [1, 2])
    np.testing.assert_array_equal(d.item_ids, [7, 8])


def test_is_immutable():
    d = small()
    with pytest.raises(ValueError):
        d.matrix.data[0] = 1.0
    with pytest.raises(Exception):
        d.n_normal = 0


def test_append_users_marks_fakes_and_never_reuses_ids():
    d = Interactions.from_arrays([1, 2], [0, 1], [5, 4], rating_scale=(1, 5))
    fake = Interactions.from_matrix(np.array([[5.0, 0.0], [0.0, 1.0]]))
    p = d.append_users(fake)
    assert p.n_users == 4 and p.n_normal == 2 and p.n_fake == 2
    np.testing.assert_array_equal(p.is_fake, [False, False, True, True])
    assert len(set(p.user_ids.tolist())) == 4
    p2 = p.append_users(fake)
    assert len(set(p2.user_ids.tolist())) == 6
    with pytest.raises(ConfigError):
        d.append_users(np.array([[9.0, 0.0]]))  # outside the 1..5 scale


def test_drop_and_select_users():
    p = Interactions.from_arrays([1, 2], [0, 1], [5, 4], rating_scale=(1, 5)).append_users(np.array([[5.0, 0.0]]))
    q = p.drop_users(np.array([False, True, True]))
    assert q.n_users == 1 and q.n_normal == 1 and q.n_fake == 0
    assert p.normal().n_users == 2


def test_item_stats_and_scale():
    d = small()
    mean, std = d.item_stats()
    np.testing.assert_allclose(mean, [3.5, 11 / 3, 1.0])
    assert d.global_stats()[0] == pytest.approx(19 / 6)
    np.testing.assert_array_equal(d.to_scale([0.2, 3.4, 3.6, 9]), [1, 3, 4, 5])


def test_to_implicit_threshold():
    d = small()
    assert d.to_implicit().nnz == 6
    imp = d.to_implicit(threshold=4)
    assert imp.implicit and imp.nnz == 3 and set(imp.matrix.data) == {1.0}


def test_leave_one_out_holds_out_latest():
    s = leave_one_out(small(), np.random.default_rng(0))
    # a: latest is item 20 (t=5); b has one rating: nothing held out; c: latest item 20 (t=9)
    np.testing.assert_array_equal(s.test_items, [1, -1, 1])
    np.testing.assert_array_equal(s.test_ratings[[0, 2]], [3, 4])
    assert s.train.nnz == 4
    assert s.train.matrix[0, 1] == 0 and s.train.matrix[2, 1] == 0
    assert s.train.timestamps is not None and s.train.timestamps.nnz == 4
