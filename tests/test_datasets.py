"""Tests of :mod:`recpoison.datasets`: registry, synthetic generator, file loader, ML-100K cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recpoison import datasets
from recpoison.datasets import movielens
from recpoison.datasets.files import load_ratings_file
from recpoison.datasets.synthetic import make_synthetic
from recpoison.errors import ConfigError, DataError, UnknownNameError

# ---------------------------------------------------------------------------- registry / load


def test_registered_names_and_listing():
    assert set(datasets.DATASETS.names()) == {"ml-100k", "filmtrust", "synthetic"}
    rows = datasets.list_datasets()
    assert {r[0] for r in rows} == {"ml-100k", "filmtrust", "synthetic"}
    assert all(len(r) == 3 and all(isinstance(x, str) and x for x in r) for r in rows)


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownNameError) as err:
        datasets.load("ml-99k")
    msg = str(err.value)
    assert "ml-100k" in msg and "synthetic" in msg and "path" in msg
    assert "\n" not in msg


def test_path_like_names_go_to_the_file_loader(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        datasets.load(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="no such file"):
        datasets.load("missing-ratings.dat")
    f = tmp_path / "r"
    f.write_text("1\t1\t5\n2\t1\t3\n")
    d = datasets.load(str(f))  # exists, no suffix
    assert d.shape == (2, 1)


def test_load_file_rejects_unknown_parameters(tmp_path):
    f = tmp_path / "r.tsv"
    f.write_text("1\t1\t5\n")
    with pytest.raises(ConfigError, match="allowed: sep"):
        datasets.load(str(f), bogus=1)


# ---------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic():
    a = datasets.load("synthetic", seed=7)
    b = make_synthetic(seed=7)
    c = make_synthetic(seed=8)
    assert (a.matrix != b.matrix).nnz == 0
    assert (a.timestamps != b.timestamps).nnz == 0
    assert (a.matrix != c.matrix).nnz > 0


def test_synthetic_shape_scale_and_density():
    d = make_synthetic(n_users=150, n_items=120, density=0.1, rating_scale=(1, 5), seed=1)
    assert d.shape == (150, 120)
    assert d.n_normal == 150 and d.rating_scale == (1.0, 5.0) and d.rating_step == 1.0
    vals = d.matrix.data
    assert vals.min() >= 1 and vals.max() <= 5 and np.all(vals == np.round(vals))
    assert set(np.unique(vals)) == {1, 2, 3, 4, 5}
    assert np.diff(d.matrix.indptr).min() >= 3
    assert abs(d.nnz / (150 * 120) - 0.1) < 0.02
    assert d.timestamps is not None and d.timestamps.nnz == d.nnz
    assert np.all(d.timestamps.data > 9e8)


def test_synthetic_other_scale_and_implicit():
    d = make_synthetic(n_users=30, n_items=40, rating_scale=(1, 10), seed=2)
    assert d.rating_scale == (1.0, 10.0) and d.matrix.data.max() <= 10
    imp = datasets.load("synthetic", n_users=30, n_items=40, implicit=True)
    assert imp.implicit and imp.rating_scale == (1.0, 1.0) and np.all(imp.matrix.data == 1)
    # every user rates at least 3 items even at a tiny density
    tiny = make_synthetic(n_users=50, n_items=10, density=0.01)
    assert np.diff(tiny.matrix.indptr).min() >= 3


def test_synthetic_popularity_is_long_tailed():
    d = make_synthetic(n_users=500, n_items=400, density=0.05, seed=3)
    counts = np.sort(d.item_counts())[::-1]
    assert counts[:40].sum() > 0.3 * counts.sum()  # top 10 % of items get > 30 % of the ratings
    flat = make_synthetic(n_users=500, n_items=400, density=0.05, popularity_exponent=0.0, seed=3)
    assert np.sort(flat.item_counts())[::-1][:40].sum() < counts[:40].sum()


def _loo_hit_rates(d, k: int = 10) -> dict[str, float]:
    """Leave one interaction out per user; HR@k of rank-8 PureSVD, popularity and random."""
    rng = np.random.default_rng(0)
    m = d.binary().tocsr()
    counts = np.diff(m.indptr)
    held_pos = m.indptr[:-1] + rng.integers(0, counts)
    held = m.indices[held_pos]
    keep = np.ones(m.nnz, dtype=bool)
    keep[held_pos] = False
    coo = m.tocoo()
    train = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=m.shape)
    u, s, vt = sp.linalg.svds(train.astype(np.float64), k=8)
    scores = {
        "svd": (u * s) @ vt,
        "pop": np.tile(np.asarray(train.sum(axis=0), dtype=np.float64), (d.n_users, 1)),
        "random": rng.random(d.shape),
    }
    out = {}
    for name, sc in scores.items():
        sc = sc.copy()
        sc[train.nonzero()] = -np.inf
        top = np.argsort(-sc, axis=1)[:, :k]
        out[name] = float(np.mean((top == held[:, None]).any(axis=1)))
    return out


def test_synthetic_has_learnable_low_rank_structure():
    hr = _loo_hit_rates(make_synthetic(n_users=400, n_items=300, density=0.05, seed=0))
    assert hr["svd"] > 3 * hr["random"] + 0.05
    assert hr["svd"] > hr["pop"]  # personal (low-rank) signal beyond popularity


def test_synthetic_ratings_follow_affinity():
    # users' high ratings concentrate on items a low-rank model of the ratings predicts well
    d = make_synthetic(n_users=300, n_items=200, density=0.1, seed=4)
    m = d.matrix.toarray().astype(np.float64)
    mask = m > 0
    centred = np.where(mask, m - m[mask].mean(), 0.0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    approx = (u[:, :8] * s[:8]) @ vt[:8]
    corr = np.corrcoef(approx[mask], m[mask])[0, 1]
    assert corr > 0.5


def test_synthetic_rejects_bad_parameters():
    with pytest.raises(ConfigError, match="allowed: n_users"):
        datasets.load("synthetic", n_user=10)
    with pytest.raises(ConfigError, match="density"):
        datasets.load("synthetic", density=0.0)
    with pytest.raises(ConfigError, match="n_items"):
        make_synthetic(n_items=2)
    with pytest.raises(ConfigError, match="rating_scale"):
        make_synthetic(rating_scale=(5, 1))
    # values from the command line arrive as strings
    d = datasets.load("synthetic", n_users="20", n_items="30", rating_scale="1,10")
    assert d.shape == (20, 30) and d.rating_scale == (1.0, 10.0)


# ---------------------------------------------------------------------------- ratings files


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _dense(d) -> dict[tuple, float]:
    coo = d.matrix.tocoo()
    return {(d.user_ids[r].item(), d.item_ids[c].item()): float(v) for r, c, v in zip(coo.row, coo.col, coo.data)}


def test_tab_file_like_u_data(tmp_path):
    p = _write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n")
    d = load_ratings_file(p)
    assert d.shape == (3, 3) and d.nnz == 3 and d.name == "u"
    assert _dense(d) == {(196, 242): 3.0, (186, 302): 3.0, (22, 377): 1.0}
    assert d.user_ids.dtype.kind == "i" and list(d.user_ids) == [22, 186, 196]
    assert d.rating_scale == (1.0, 3.0) and d.rating_step == 1.0
    row = list(d.user_ids).index(196)
    assert d.timestamps[row].data.tolist() == [881250949.0]


def test_comma_file_with_header_and_float_ratings(tmp_path):
    p = _write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.5,100\n1,20,0.5,200\n2,10,3,300\n")
    d = load_ratings_file(p)
    assert d.shape == (2, 2) and d.nnz == 3
    assert _dense(d)[(1, 10)] == 4.5
    assert d.rating_scale == (0.5, 4.5) and d.rating_step is None


def test_header_names_select_columns(tmp_path):
    p = _write(tmp_path, "x.csv", "rating,item,user\n5,a,u1\n2,b,u2\n")
    d = load_ratings_file(p)
    assert _dense(d) == {("u1", "a"): 5.0, ("u2", "b"): 2.0}


def test_double_colon_file_like_ml1m(tmp_path):
    p = _write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    d = load_ratings_file(p, rating_scale=(1, 5))
    assert d.shape == (2, 2) and d.rating_scale == (1.0, 5.0)
    assert _dense(d) == {(1, 1193): 5.0, (1, 661): 3.0, (2, 1193): 4.0}


def test_recbole_inter_semicolon_and_whitespace(tmp_path):
    inter = _write(
        tmp_path,
        "ml.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n22\t377\t1\t878887116\n",
    )
    assert _dense(load_ratings_file(inter)) == {(196, 242): 3.0, (22, 377): 1.0}
    semi = _write(tmp_path, "r.txt", "1;2;3\n2;3;4\n")
    assert _dense(load_ratings_file(semi)) == {(1, 2): 3.0, (2, 3): 4.0}
    ws = _write(tmp_path, "filmtrust.txt", "1 1  2.5\n\n  2 3 4\n")  # blank line, runs of spaces
    assert _dense(load_ratings_file(ws)) == {(1, 1): 2.5, (2, 3): 4.0}


def test_string_ids_implicit_and_duplicates(tmp_path):
    p = _write(tmp_path, "clicks.csv", "alice,A1,5,10\nbob,A2,1,20\nalice,A1,2,5\n")
    d = load_ratings_file(p)
    assert _dense(d) == {("alice", "A1"): 5.0, ("bob", "A2"): 1.0}  # the latest rating wins
    imp = load_ratings_file(_write(tmp_path, "pairs.csv", "u1,i1\nu2,i1\n"), implicit=True, name="pairs")
    assert imp.implicit and imp.shape == (2, 1) and imp.name == "pairs"


@pytest.mark.parametrize(
    "name, text, kwargs, expected",
    [
        ("ratings.csv", "1,1,5\n" * 16 + "1,2,x\n", {}, r"ratings\.csv line 17: rating 'x' is not a number"),
        ("r.tsv", "1\t1\t5\t100\n2\t2\t4\n", {}, r"r\.tsv line 2: 3 columns, expected 4"),
        ("r.csv", "user,item,rating\n1,1,5\n2,2\n", {}, r"r\.csv line 3: 2 columns, expected 3"),
        ("r.dat", "1::1::5\n2::2::nan\n", {}, r"r\.dat line 2: rating 'nan' is not a finite number"),
        ("r.csv", "1,1,5,100\n2,2,4,yesterday\n", {}, r"r\.csv line 2: timestamp 'yesterday' is not a number"),
        ("r.csv", "1,1,5\n2,2,7\n", {"rating_scale": (1, 5)}, r"r\.csv line 2: rating 7 is outside the rating scale"),
        ("r.csv", "1,1,5\n2,2,0\n", {}, r"r\.csv line 2: rating 0 cannot be stored"),
        ("r.csv", "1,1,5\n,2,4\n", {}, r"r\.csv line 2: empty user id"),
        ("r.csv", "just-one-column\n", {}, r"r\.csv line 1: 1 column, expected 3 or 4"),
        ("r.csv", "1,2,3,4,5\n", {}, r"r\.csv line 1: 5 columns"),
        ("r.csv", "", {}, r"r\.csv: empty file"),
        ("r.csv", "\n  \n", {}, r"r\.csv: empty file"),
        ("r.csv", "user,item,rating\n", {}, r"r\.csv: no ratings after the header"),
    ],
)
def test_malformed_files_give_one_line_data_errors(tmp_path, name, text, kwargs, expected):
    p = _write(tmp_path, name, text)
    with pytest.raises(DataError, match=expected) as err:
        load_ratings_file(p, **kwargs)
    assert "\n" not in str(err.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file: .*absent.csv"):
        load_ratings_file(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="is a directory"):
        load_ratings_file(tmp_path)


# ---------------------------------------------------------------------------- ML-100K (offline)

_FAKE = np.array(
    [[3, 7, 4, 100], [1, 7, 5, 200], [1, 2, 1, 300], [2, 9, 3, 400], [3, 2, 2, 500]], dtype=np.int64
)


@pytest.fixture
def fake_ml100k(monkeypatch, tmp_path):
    """ML-100K replaced by a tiny fake: checksum patched, sources counted, cache in tmp_path."""
    monkeypatch.setenv("RECPOISON_DATA", str(tmp_path))
    monkeypatch.setattr(movielens, "ML100K_SHA256", hashlib.sha256(movielens.canonical_bytes(_FAKE)).hexdigest())
    calls = {"grouplens": 0, "pypi": 0}

    def grouplens():
        calls["grouplens"] += 1
        raise OSError("Name or service not known")

    def pypi():
        calls["pypi"] += 1
        return _FAKE[::-1].copy()  # any order: the loader canonicalises

    monkeypatch.setattr(movielens, "fetch_grouplens", grouplens)
    monkeypatch.setattr(movielens, "fetch_recbole_wheel", pypi)
    return tmp_path / "ml-100k" / "u.data", calls


def test_canonical_bytes_are_u_data_format():
    assert movielens.canonical_bytes(_FAKE) == b"1\t2\t1\t300\n1\t7\t5\t200\n2\t9\t3\t400\n3\t2\t2\t500\n3\t7\t4\t100\n"


def test_fetch_writes_verified_cache_then_reads_it(fake_ml100k):
    path, calls = fake_ml100k
    d = datasets.load("ml-100k")
    assert calls == {"grouplens": 1, "pypi": 1}
    assert d.shape == (3, 3) and d.nnz == 5 and d.name == "ml-100k"
    assert list(d.user_ids) == [1, 2, 3] and list(d.item_ids) == [2, 7, 9]
    assert path.read_bytes() == movielens.canonical_bytes(_FAKE)
    assert not list(path.parent.glob("*.tmp"))  # atomic write left no temporary file
    d2 = datasets.load("ml-100k")
    assert calls == {"grouplens": 1, "pypi": 1}  # served from the cache
    assert (d2.matrix != d.matrix).nnz == 0 and (d2.timestamps != d.timestamps).nnz == 0


def test_truncated_cache_is_detected_and_refetched(fake_ml100k, caplog):
    path, calls = fake_ml100k
    good = movielens.canonical_bytes(_FAKE)
    path.parent.mkdir(parents=True)
    path.write_bytes(good[: len(good) // 2])  # a partial download
    d = datasets.load("ml-100k")
    assert calls["pypi"] == 1
    assert d.nnz == 5
    assert path.read_bytes() == good
    assert "corrupt" in caplog.text


def test_cache_with_wrong_content_is_refetched(fake_ml100k):
    path, calls = fake_ml100k
    path.parent.mkdir(parents=True)
    tampered = _FAKE.copy()
    tampered[0, 2] = 1
    path.write_bytes(movielens.canonical_bytes(tampered))
    assert datasets.load("ml-100k").nnz == 5 and calls["pypi"] == 1
    assert path.read_bytes() == movielens.canonical_bytes(_FAKE)


def test_hand_placed_original_order_u_data_is_accepted(fake_ml100k):
    path, calls = fake_ml100k
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(b"%d\t%d\t%d\t%d\n" % tuple(r) for r in _FAKE))  # GroupLens order
    d = datasets.load("ml-100k")
    assert calls == {"grouplens": 0, "pypi": 0} and d.nnz == 5
    assert path.read_bytes() == movielens.canonical_bytes(_FAKE)  # rewritten canonically


def test_source_with_wrong_data_is_rejected(fake_ml100k, monkeypatch):
    path, calls = fake_ml100k
    monkeypatch.setattr(movielens, "fetch_recbole_wheel", lambda: _FAKE[:4])
    with pytest.raises(DataError, match="checksum mismatch"):
        datasets.load("ml-100k")
    assert not path.exists()


def test_all_sources_fail_message(fake_ml100k, monkeypatch):
    path, calls = fake_ml100k

    def pypi_down():
        raise RuntimeError("pip download failed: ERROR: No matching distribution found for recbole==1.2.1")

    monkeypatch.setattr(movielens, "fetch_recbole_wheel", pypi_down)
    with pytest.raises(DataError) as err:
        datasets.load("ml-100k")
    msg = str(err.value)
    assert "\n" not in msg
    assert f"local cache {path}: not present" in msg
    assert "GroupLens https://files.grouplens.org/datasets/movielens/ml-100k.zip" in msg
    assert "Name or service not known" in msg
    assert "recbole==1.2.1" in msg and "No matching distribution" in msg
    assert f"put the GroupLens file ml-100k/u.data at {path}" in msg and "RECPOISON_DATA" in msg
    assert not path.exists()


def test_cache_dir_parameter(monkeypatch, tmp_path, fake_ml100k):
    other = tmp_path / "elsewhere"
    d = datasets.load("ml-100k", cache_dir=str(other))
    assert d.nnz == 5 and (other / "ml-100k" / "u.data").exists()
    with pytest.raises(ConfigError, match="allowed: cache_dir"):
        datasets.load("ml-100k", cache=str(other))


# ---------------------------------------------------------------------------- the real ML-100K


@pytest.mark.slow
def test_real_ml100k():
    """Loads the real data from the default cache (or fetches it: GroupLens, then PyPI)."""
    d = datasets.load("ml-100k")
    assert d.shape == (943, 1682)
    assert d.nnz == 100_000
    assert d.rating_scale == (1.0, 5.0) and d.rating_step == 1.0
    vals = d.matrix.data
    assert set(np.unique(vals)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert d.timestamps is not None and d.timestamps.nnz == 100_000
    assert list(d.user_ids[:3]) == [1, 2, 3] and d.item_ids[-1] == 1682
    assert abs(float(vals.mean()) - 3.52986) < 1e-5
    assert movielens.cache_path().exists()
