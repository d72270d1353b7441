"""FilmTrust with its given leave-one-out split (seed 004, Table 1).

G. Guo, J. Zhang and N. Yorke-Smith. 2013. *A Novel Bayesian Similarity Measure for Recommender
Systems.* IJCAI 2013 (the data set crawled from the FilmTrust site). Used here in the leave-one-out
form of Wu et al. (SIGIR 2021, TPAMI 2023) that seed 004 evaluates on: 796 users, 2,011 items,
30,880 ratings on a 1..8 scale (the original 0.5..4 stars doubled), 0-based integer ids.

The files are never part of this repository. :func:`find_filmtrust` looks for a folder ``filmtrust/``
holding ``filmtrust.train.rating`` (30,084 lines) and ``filmtrust.test.rating`` (796 lines, one
held-out rating per user), both tab-separated ``user item rating``, in this order:

1. ``$RECPOISON_DATA/filmtrust`` when ``RECPOISON_DATA`` is set;
2. ``../shared/data/filmtrust`` relative to the current working directory;
3. ``../shared/data/filmtrust`` relative to the repository root (from this package's location).

Both files must match :data:`FILMTRUST_SHA256`; anything else is refused with a one-line
:class:`~recpoison.errors.DataError`.

The data set is the union of the two files (:func:`load_filmtrust`). The split is *given*, not
drawn: :func:`filmtrust_split` holds out exactly the test file's (user, item) pairs, so it is the
same for every seed. :mod:`recpoison.datasets` registers it in ``GIVEN_SPLITS`` and the pipeline
uses it instead of :func:`~recpoison.splits.leave_one_out`.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..interactions import Interactions
from ..splits import Split, split_out

TRAIN_FILE = "filmtrust.train.rating"
TEST_FILE = "filmtrust.test.rating"
#: SHA-256 of the raw bytes of each file (as distributed, CRLF line ends).
FILMTRUST_SHA256 = {
    TRAIN_FILE: "0aaa16510756b42075dc70a1bed52d9d907f4917b2e1f5d3b541592b035f3e2c",
    TEST_FILE: "82b94a706ae86e920daa2888ffbededa1e6666a5d4c2d560f764955df67334a6",
}
#: The repository root when the package runs from a checkout (src layout).
REPO_ROOT = Path(__file__).resolve().parents[3]


def candidate_dirs() -> list[Path]:
    """The folders tried, in order (see the module docstring)."""
    out = []
    env = os.environ.get("RECPOISON_DATA")
    if env:
        out.append(Path(env).expanduser() / "filmtrust")
    out.append(Path.cwd() / ".." / "shared" / "data" / "filmtrust")
    out.append(REPO_ROOT / ".." / "shared" / "data" / "filmtrust")
    return out


def find_filmtrust() -> Path:
    """The first candidate folder holding both files; a one-line :class:`DataError` if none does."""
    tried = candidate_dirs()
    for d in tried:
        if all((d / f).is_file() for f in FILMTRUST_SHA256):
            return d
    where = "; ".join(str(d.resolve() if d.exists() else d) for d in tried)
    raise DataError(
        f"FilmTrust files ({TRAIN_FILE}, {TEST_FILE}) not found; looked in: {where}. "
        "Set RECPOISON_DATA to a folder holding filmtrust/ with both files"
    )


def _read_table(path: Path) -> np.ndarray:
    """The verified file as an (n, 3) float table ``user, item, rating``."""
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    expected = FILMTRUST_SHA256[path.name]
    if digest != expected:
        raise DataError(
            f"checksum mismatch for {path} (sha256 {digest[:12]}..., expected {expected[:12]}...); "
            "replace it with the original FilmTrust file"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.loadtxt(io.BytesIO(raw), dtype=np.float64, delimiter="\t", ndmin=2, encoding="utf-8")


def read_filmtrust() -> tuple[np.ndarray, np.ndarray]:
    """The verified (train, test) tables, each (n, 3): user, item, rating."""
    d = find_filmtrust()
    return _read_table(d / TRAIN_FILE), _read_table(d / TEST_FILE)


def load_filmtrust() -> Interactions:
    """FilmTrust as :class:`Interactions`: train and test ratings together, 796 x 2011, scale 1..8."""
    train, test = read_filmtrust()
    t = np.concatenate([train, test])
    return Interactions.from_arrays(
        t[:, 0].astype(np.int64),
        t[:, 1].astype(np.int64),
        t[:, 2],
        rating_scale=(1.0, 8.0),
        rating_step=1.0,
        name="filmtrust",
    )


def filmtrust_split(data: Interactions) -> Split:
    """The given split of ``data`` (FilmTrust, explicit or implicit): the test file's pairs held out."""
    _, test = read_filmtrust()
    return split_out(data, test[:, 0].astype(np.int64), test[:, 1].astype(np.int64))
