"""MovieLens-100K, the embedded default data set (DESIGN.md, "Data sources").

F. Maxwell Harper and Joseph A. Konstan. 2015. *The MovieLens Datasets: History and Context.*
ACM TiiS 5(4). 943 users x 1682 movies, 100,000 ratings on a 1..5 star scale with Unix timestamps;
distributed by GroupLens Research (https://grouplens.org/datasets/movielens/100k/).

The licence forbids redistribution, so the data is never part of this repository. :func:`load_ml100k`
looks, in order, at

1. the local cache ``<cache>/ml-100k/u.data`` where ``<cache>`` is ``$RECPOISON_DATA`` if set, else
   ``platformdirs.user_cache_dir("recpoison")``;
2. the GroupLens archive (:data:`GROUPLENS_URL`, member ``ml-100k/u.data``);
3. the RecBole 1.2.1 wheel on PyPI (Zhao et al., *RecBole*, CIKM 2021), which ships the same ratings
   as ``recbole/dataset_example/ml-100k/ml-100k.inter`` (fetched with ``pip download``, so it honours
   the user's pip index configuration).

Whatever the source, the ratings are brought into a canonical form -- rows sorted by (user, item,
rating, timestamp), written in the GroupLens ``u.data`` format (tab-separated integers, one rating
per line) -- and the SHA-256 of those bytes must equal :data:`ML100K_SHA256`. The cache file holds
exactly those bytes, so a corrupt or partial cache is detected by its checksum, deleted and fetched
again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from ..interactions import Interactions

log = logging.getLogger(__name__)

#: SHA-256 of the canonical ``u.data`` bytes (see :func:`canonical_bytes`) of the real ML-100K,
#: computed once from ``ml-100k.inter`` in the RecBole 1.2.1 wheel (100,000 rows, 943 users, 1682
#: items; the canonical file is 1,979,173 bytes, the size of GroupLens' own ``u.data``).
ML100K_SHA256 = "6cfffb52c89b05fbc3afb75f6912eeda04c81c2add0dc58e773a0ef6c8adb160"

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_MEMBER = "ml-100k/u.data"
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"

#: Seconds allowed for the GroupLens download and for ``pip download``.
HTTP_TIMEOUT = 15.0
PIP_TIMEOUT = 180.0

CACHE_SUBPATH = Path("ml-100k") / "u.data"


# ---------------------------------------------------------------------------- locations
def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The data cache directory: ``cache_dir``, else ``$RECPOISON_DATA``, else the user cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("RECPOISON_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("recpoison"))


def cache_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the canonical ``u.data`` of ML-100K is cached."""
    return cache_root(cache_dir) / CACHE_SUBPATH


# ---------------------------------------------------------------------------- canonical form
def _format_uint_table(table: np.ndarray) -> bytes:
    """Tab-separated decimal text of a non-negative integer table, one row per line.

    Vectorised: digits are written into one byte buffer column by column, digit position by digit
    position (at most 19 passes per column), never row by row.
    """
    table = np.asarray(table, dtype=np.int64)
    n, k = table.shape
    if n == 0:
        return b""
    if table.min() < 0:
        raise ValueError("negative value in a u.data table")
    ndig = np.ones((n, k), dtype=np.int64)
    bound = 10
    while True:
        more = table >= bound
        if not more.any():
            break
        ndig += more
        if bound > np.iinfo(np.int64).max // 10:
            break
        bound *= 10
    line_len = ndig.sum(axis=1) + k  # k - 1 tabs and a newline
    line_end = np.cumsum(line_len)
    buf = np.empty(int(line_end[-1]), dtype=np.uint8)
    start = line_end - line_len
    for c in range(k):
        end = start + ndig[:, c]  # one past the last digit of this field
        v = table[:, c].copy()
        for d in range(int(ndig[:, c].max())):
            has = ndig[:, c] > d
            buf[(end - 1 - d)[has]] = (v[has] % 10 + 48).astype(np.uint8)
            v //= 10
        buf[end] = ord("\t") if c < k - 1 else ord("\n")
        start = end + 1
    return buf.tobytes()


def canonical_table(table: np.ndarray) -> np.ndarray:
    """Rows ``(user, item, rating, timestamp)`` sorted lexicographically (int64)."""
    table = np.asarray(table, dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 4:
        raise ValueError(f"expected an (n, 4) table, got shape {table.shape}")
    order = np.lexsort(table.T[::-1])
    return table[order]


def canonical_bytes(table: np.ndarray) -> bytes:
    """The canonical ``u.data`` bytes of ``(user, item, rating, timestamp)`` rows."""
    return _format_uint_table(canonical_table(table))


def _parse_int_table(raw: bytes, *, skip_header: bool, what: str) -> np.ndarray:
    """Parse tab-separated ``user item rating timestamp`` rows into an (n, 4) int64 table."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(
                io.BytesIO(raw),
                dtype=np.float64,
                delimiter="\t",
                comments=None,
                skiprows=1 if skip_header else 0,
                ndmin=2,
                encoding="utf-8",
            )
    except ValueError as exc:
        raise ValueError(f"{what} is not a table of numbers ({exc})") from None
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty")
    if arr.shape[1] != 4:
        raise ValueError(f"{what} has {arr.shape[1]} columns, expected 4")
    if not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise ValueError(f"{what} contains non-integer values")
    return arr.astype(np.int64)


def _checked(table: np.ndarray, what: str) -> tuple[np.ndarray, bytes]:
    """Canonicalise ``table`` and verify its checksum; returns the table and its u.data bytes."""
    table = canonical_table(table)
    data = _format_uint_table(table)
    digest = hashlib.sha256(data).hexdigest()
    if digest != ML100K_SHA256:
        raise ValueError(
            f"checksum mismatch for {what} ({table.shape[0]} ratings, sha256 {digest[:12]}..., "
            f"expected {ML100K_SHA256[:12]}...)"
        )
    return table, data


# ---------------------------------------------------------------------------- remote sources
def fetch_grouplens(timeout: float = HTTP_TIMEOUT) -> np.ndarray:
    """Download the GroupLens archive and return its ratings as an (n, 4) int64 table."""
    log.info("downloading MovieLens-100K from %s", GROUPLENS_URL)
    req = urllib.request.Request(GROUPLENS_URL, headers={"User-Agent": "recpoison"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
        payload = resp.read()
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        raw = zf.read(GROUPLENS_MEMBER)
    return _parse_int_table(raw, skip_header=False, what=GROUPLENS_MEMBER)


def fetch_recbole_wheel(timeout: float = PIP_TIMEOUT) -> np.ndarray:
    """Fetch the RecBole 1.2.1 wheel with ``pip download`` and read ML-100K out of it.

    The ``.inter`` file is RecBole's atomic-file format: a header line
    ``user_id:token<TAB>item_id:token<TAB>rating:float<TAB>timestamp:float`` then one rating a line.
    """
    log.info("downloading MovieLens-100K from PyPI (%s wheel)", RECBOLE_REQUIREMENT)
    with tempfile.TemporaryDirectory(prefix="recpoison-recbole-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "-q", "-d", tmp, RECBOLE_REQUIREMENT,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"pip download timed out after {timeout:.0f} s") from None
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
            errs = [ln for ln in lines if ln.startswith("ERROR")]
            detail = (errs or lines or [f"exit status {proc.returncode}"])[-1]
            raise RuntimeError(f"pip download failed: {detail}")
        wheels = sorted(Path(tmp).glob("recbole-*.whl"))
        if not wheels:
            raise RuntimeError("pip download produced no recbole wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            raw = zf.read(RECBOLE_MEMBER)
    return _parse_int_table(raw, skip_header=True, what=RECBOLE_MEMBER)


def _sources() -> list[tuple[str, Callable[[], np.ndarray]]]:
    # looked up at call time so tests can monkeypatch the module-level functions
    return [
        (f"GroupLens {GROUPLENS_URL}", fetch_grouplens),
        (f"PyPI wheel {RECBOLE_REQUIREMENT} (pip download)", fetch_recbole_wheel),
    ]


# ---------------------------------------------------------------------------- cache
def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is ordinary user data
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_cache(path: Path) -> np.ndarray:
    """The cached table; raises ``FileNotFoundError`` or ``ValueError`` (corrupt)."""
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() == ML100K_SHA256:
        return _parse_int_table(raw, skip_header=False, what=str(path))
    # a u.data placed by hand in GroupLens' original order: accept it if its content matches
    table, data = _checked(_parse_int_table(raw, skip_header=False, what=str(path)), str(path))
    try:
        _write_atomic(path, data)
    except OSError:
        pass
    return table


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, (ValueError, RuntimeError)) else text


def load_ml100k_table(cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The verified ML-100K ratings as a canonical (100000, 4) int64 table.

    Columns: MovieLens user id, movie id, rating, Unix timestamp.
    """
    path = cache_path(cache_dir)
    failures: list[str] = []
    try:
        return _read_cache(path)
    except FileNotFoundError:
        failures.append(f"local cache {path}: not present")
    except (ValueError, OSError) as exc:
        log.warning("cached MovieLens-100K at %s is corrupt (%s); fetching it again", path, _one_line(exc))
        failures.append(f"local cache {path}: corrupt ({_one_line(exc)}), deleted")
        try:
            path.unlink()
        except OSError:
            pass

    for label, fetch in _sources():
        try:
            table, data = _checked(fetch(), label)
        except Exception as exc:  # noqa: BLE001 -- every failure is reported below
            failures.append(f"{label}: {_one_line(exc)}")
            continue
        try:
            _write_atomic(path, data)
        except OSError as exc:
            log.warning("could not cache MovieLens-100K at %s: %s", path, _one_line(exc))
        return table

    raise DataError(
        "could not obtain MovieLens-100K; tried "
        + "; ".join(f"({k + 1}) {f}" for k, f in enumerate(failures))
        + f". To install it by hand, put the GroupLens file ml-100k/u.data at {path} "
        "(or set RECPOISON_DATA to a directory holding ml-100k/u.data)"
    )


def load_ml100k(cache_dir: str | os.PathLike | None = None) -> Interactions:
    """MovieLens-100K as :class:`Interactions`: 943 users x 1682 items, 100,000 ratings 1..5.

    Raw ids are the MovieLens integer ids; timestamps are Unix seconds. See the module docstring for
    the sources tried and the cache location.
    """
    t = load_ml100k_table(cache_dir)
    return Interactions.from_arrays(
        t[:, 0],
        t[:, 1],
        t[:, 2].astype(np.float64),
        timestamps=t[:, 3].astype(np.float64),
        rating_scale=(1.0, 5.0),
        rating_step=1.0,
        name="ml-100k",
    )
