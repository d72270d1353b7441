"""Tests of the FilmTrust loader and its given split (:mod:`recpoison.datasets.filmtrust`).

The files are never in the repository: the tests that read them skip when they are not found.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from recpoison import datasets
from recpoison.datasets import filmtrust
from recpoison.errors import DataError
from recpoison.pipeline import CellCache, CellSpec, make_split

SKIP = "FilmTrust files not found: set RECPOISON_DATA or place them in ../shared/data/filmtrust"


@pytest.fixture(scope="module")
def folder():
    try:
        return filmtrust.find_filmtrust()
    except DataError:
        pytest.skip(SKIP)


@pytest.fixture(scope="module")
def data(folder):
    return datasets.load("filmtrust")


def _test_file(folder):
    return np.loadtxt(folder / filmtrust.TEST_FILE, delimiter="\t", ndmin=2)


def test_counts_and_scale(data):
    assert data.name == "filmtrust"
    assert data.n_users == 796 and data.n_items == 2011
    assert data.nnz == 30_880
    assert data.rating_scale == (1.0, 8.0) and data.rating_step == 1.0
    assert set(np.unique(data.matrix.data)) <= set(range(1, 9))
    assert np.array_equal(data.user_ids, np.arange(796))  # raw 0-based ids kept


def test_given_split_holds_out_the_test_file(folder, data):
    split = datasets.given_split("filmtrust", data)
    assert split.train.nnz == 30_084
    assert len(split.test_users) == 796
    test = _test_file(folder)
    for u, i, r in test[[0, 1, 100, 500, 795]]:  # spot-check against the file itself
        row = int(np.flatnonzero(data.user_ids == int(u))[0])
        assert data.item_ids[split.test_items[row]] == int(i)
        assert split.test_ratings[row] == r
        assert split.train.matrix[row, split.test_items[row]] == 0
    assert datasets.given_split("ml-100k", data) is None  # no given split: leave-one-out


def test_split_is_the_same_for_every_seed(data):
    cache = CellCache()
    a = make_split(CellSpec(dataset="filmtrust", seed=0), data, cache)
    b = make_split(CellSpec(dataset="filmtrust", seed=7), data, CellCache())
    assert np.array_equal(a.test_items, b.test_items)
    assert np.array_equal(a.test_ratings, b.test_ratings)
    assert (a.train.matrix != b.train.matrix).nnz == 0
    implicit = make_split(CellSpec(dataset="filmtrust", seed=3, implicit=True), data.to_implicit(), cache)
    assert np.array_equal(implicit.test_items, a.test_items)


def test_checksum_mismatch_is_refused(folder, tmp_path, monkeypatch):
    copy = tmp_path / "filmtrust"
    copy.mkdir()
    for f in (filmtrust.TRAIN_FILE, filmtrust.TEST_FILE):
        shutil.copyfile(folder / f, copy / f)
    raw = bytearray((copy / filmtrust.TEST_FILE).read_bytes())
    raw[2] = ord("9") if raw[2] != ord("9") else ord("8")
    (copy / filmtrust.TEST_FILE).write_bytes(bytes(raw))
    monkeypatch.setenv("RECPOISON_DATA", str(tmp_path))
    with pytest.raises(DataError, match="checksum mismatch") as err:
        datasets.load("filmtrust")
    assert "\n" not in str(err.value)


def test_missing_folder_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("RECPOISON_DATA", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(filmtrust, "REPO_ROOT", tmp_path / "repo")
    with pytest.raises(DataError) as err:
        datasets.load("filmtrust")
    msg = str(err.value)
    assert "\n" not in msg
    assert "RECPOISON_DATA" in msg and str(tmp_path / "nowhere" / "filmtrust") in msg
