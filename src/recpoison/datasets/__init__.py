"""Data sets: registered names (``ml-100k``, ``filmtrust``, ``synthetic``) and ratings files given by path.

``load("ml-100k")`` returns the real MovieLens-100K (downloaded once into the user cache, see
:mod:`recpoison.datasets.movielens`); ``load("filmtrust")`` FilmTrust read from local files
(:mod:`recpoison.datasets.filmtrust`); ``load("synthetic", n_users=500)`` a generated data set
(:mod:`recpoison.datasets.synthetic`); ``load("path/to/ratings.csv")`` any ratings file
(:mod:`recpoison.datasets.files`). DESIGN.md, "Data sources".

Given splits: a registered data set that comes with its own train/test split has an entry in
:data:`GIVEN_SPLITS` (name -> function ``(data) -> Split``, ``data`` being the loaded data set or its
implicit view). :func:`given_split` returns that split, or ``None`` when the data set has none, and
the pipeline then draws :func:`~recpoison.splits.leave_one_out` instead. A given split does not
depend on the seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import build_config
from ..errors import ConfigError, UnknownNameError
from ..interactions import Interactions
from ..registry import Registry
from ..splits import Split
from ..text import short
from .filmtrust import filmtrust_split, load_filmtrust
from .files import RATING_FILE_SUFFIXES, load_ratings_file
from .movielens import load_ml100k
from .synthetic import load_synthetic, make_synthetic

DATASETS: Registry[Interactions] = Registry("dataset")


@dataclass(frozen=True)
class _ML100KConfig:
    cache_dir: str | None = None


@DATASETS.register(
    "ml-100k",
    paper="Harper & Konstan, The MovieLens Datasets, ACM TiiS 2015 (GroupLens)",
    summary="MovieLens-100K: 943 users x 1682 movies, 100,000 ratings 1-5 with timestamps",
)
def _load_ml100k(**params: Any) -> Interactions:
    cfg = build_config(_ML100KConfig, params, owner="dataset 'ml-100k'")
    return load_ml100k(cfg.cache_dir)


@dataclass(frozen=True)
class _NoParams:
    pass


@DATASETS.register(
    "filmtrust",
    paper="Guo, Zhang & Yorke-Smith, A Novel Bayesian Similarity Measure for Recommender Systems, "
    "IJCAI 2013; seed 004 Table 1; leave-one-out files of Wu et al. (SIGIR 2021)",
    summary="FilmTrust: 796 users x 2011 items, 30,880 ratings 1-8, given leave-one-out split "
    "(files from $RECPOISON_DATA/filmtrust or ../shared/data/filmtrust)",
)
def _load_filmtrust(**params: Any) -> Interactions:
    build_config(_NoParams, params, owner="dataset 'filmtrust'")
    return load_filmtrust()


#: Data sets with their own split: name -> ``(data) -> Split`` (see the module docstring).
GIVEN_SPLITS: dict[str, Callable[[Interactions], Split]] = {"filmtrust": filmtrust_split}


def given_split(name: str, data: Interactions) -> Split | None:
    """The split that comes with the registered data set ``name``, or ``None`` if it has none."""
    fn = GIVEN_SPLITS.get(name) if isinstance(name, str) else None
    return fn(data) if fn is not None else None


DATASETS.register(
    "synthetic",
    paper="power-law popularity + low-rank PMF preferences (Salakhutdinov & Mnih, NIPS 2007)",
    summary="generated ratings with known low-rank structure (n_users, n_items, density, rank, seed ...)",
)(load_synthetic)

_FILE_PARAMS = ("sep", "implicit", "rating_scale", "name", "encoding")


def looks_like_path(name_or_path: str) -> bool:
    """True if ``name_or_path`` should be read as a ratings file rather than a registered name."""
    s = str(name_or_path)
    return (
        os.path.exists(s)
        or "/" in s
        or os.sep in s
        or s.lower().endswith(RATING_FILE_SUFFIXES)
    )


def load(name_or_path: str | os.PathLike, **params: Any) -> Interactions:
    """Load a registered data set by name, or a ratings file by path.

    Registered names take precedence; a name that is not registered but looks like a path (it
    exists, contains a path separator or ends with .csv/.tsv/.data/.dat/.inter/.txt) is read with
    :func:`~recpoison.datasets.files.load_ratings_file` (``params``: sep, implicit, rating_scale,
    name).

    Raises:
        UnknownNameError: neither a registered name nor a path.
        ConfigError: an unknown or invalid parameter.
        DataError: the data cannot be obtained or is malformed.
    """
    if isinstance(name_or_path, str) and name_or_path in DATASETS:
        return DATASETS.make(name_or_path, **params)
    if isinstance(name_or_path, os.PathLike) or looks_like_path(str(name_or_path)):
        unknown = sorted(set(params) - set(_FILE_PARAMS))
        if unknown:
            raise ConfigError(
                f"ratings file {short(str(name_or_path))}: unknown parameter "
                f"{', '.join(map(repr, unknown))}; allowed: {', '.join(_FILE_PARAMS)}"
            )
        implicit = params.get("implicit", False)
        if isinstance(implicit, str):
            implicit = implicit.strip().lower() in ("1", "true", "yes")
        return load_ratings_file(
            Path(name_or_path),
            sep=params.get("sep"),
            implicit=bool(implicit),
            rating_scale=params.get("rating_scale"),
            name=params.get("name"),
            encoding=params.get("encoding"),
        )
    raise UnknownNameError(
        f"unknown dataset {short(str(name_or_path))}; valid names: {', '.join(DATASETS.names())}; "
        "a path to a ratings file (user, item, rating[, timestamp]) is also accepted"
    )


def list_datasets() -> list[tuple[str, str, str]]:
    """(name, paper/source, summary) rows for ``recpoison list``."""
    return [(e.name, e.paper, e.summary) for e in DATASETS]


__all__ = [
    "DATASETS",
    "load",
    "list_datasets",
    "GIVEN_SPLITS",
    "given_split",
    "load_filmtrust",
    "load_ml100k",
    "load_ratings_file",
    "make_synthetic",
    "looks_like_path",
]
