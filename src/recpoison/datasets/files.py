"""Generic ratings files: one rating a line, columns ``user, item, rating[, timestamp]``.

Covers the published formats of the data sets DESIGN.md ("Data sources") expects users to provide:

* GroupLens MovieLens-100K ``u.data`` (tab-separated, no header),
* MovieLens-1M/10M ``ratings.dat`` (``::``-separated, no header),
* MovieLens "latest"/25M ``ratings.csv`` (comma-separated, header ``userId,movieId,rating,timestamp``),
* FilmTrust ``ratings.txt`` (whitespace-separated ``user item rating``),
* RecBole atomic ``.inter`` files (tab-separated, header ``user_id:token<TAB>item_id:token<TAB>...``;
  Zhao et al., *RecBole*, CIKM 2021), whose header names select the columns,
* any CSV/TSV/semicolon file with the same column order.

Parsing runs in numpy's C reader (``np.loadtxt``); only when that fails is the file re-read line by
line to report the first bad line, so every malformed file gives a one-line :class:`DataError` such
as ``ratings.csv line 17: rating 'x' is not a number``.
"""

from __future__ import annotations

import io
import math
import re
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..interactions import Interactions
from ..text import excerpt, short

#: Separators tried, in order, when ``sep`` is not given; ``None`` means runs of whitespace.
SEPARATORS: tuple[str | None, ...] = ("::", "\t", ",", ";", None)
_SEP_NAMES = {"::": "'::'", "\t": "tab", ",": "comma", ";": "semicolon", None: "whitespace"}
_SEP_ALIASES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "whitespace": None, "space": None}
#: File name endings that make :func:`recpoison.datasets.load` treat its argument as a path.
RATING_FILE_SUFFIXES = (".csv", ".tsv", ".data", ".dat", ".inter", ".txt")

# header names (lower case, RecBole ":type" suffix removed) recognised for each column
_HEADER_NAMES = {
    "user": {"user", "user_id", "userid", "uid", "users", "reviewerid", "customer_id"},
    "item": {"item", "item_id", "itemid", "iid", "items", "movie", "movie_id", "movieid",
             "product", "product_id", "productid", "asin", "business_id"},
    "rating": {"rating", "ratings", "score", "stars", "overall", "value"},
    "timestamp": {"timestamp", "time", "ts", "unixreviewtime", "date", "datetime"},
}
_ROLES = ("user", "item", "rating", "timestamp")
_BLANK_LINE = re.compile(r"^[ \t\r\f\v]+$", re.MULTILINE)
_PLACEHOLDER_SEP = "\x1f"  # multi-character separators are mapped to this for np.loadtxt


def _split(line: str, sep: str | None) -> list[str]:
    return [f.strip() for f in (line.split() if sep is None else line.split(sep))]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _header_name(field: str) -> str:
    return field.strip().strip("\"'").split(":", 1)[0].strip().lower()


def _columns_from_header(fields: Sequence[str]) -> dict[str, int] | None:
    """Map roles to column indices by header names; ``None`` unless user and item are named."""
    names = [_header_name(f) for f in fields]
    found: dict[str, int] = {}
    for role in _ROLES:
        for k, nm in enumerate(names):
            if nm in _HEADER_NAMES[role] and k not in found.values():
                found[role] = k
                break
    return found if "user" in found and "item" in found else None


def _detect_sep(sample: Sequence[str]) -> str | None:
    for sep in SEPARATORS[:-1]:
        if all(sep in line for line in sample):
            return sep
    return None


class _Layout:
    """Where the columns are: number of fields per line and the index of each role."""

    def __init__(self, n_fields: int, cols: dict[str, int], strict: bool) -> None:
        self.n_fields = n_fields
        self.cols = cols
        self.strict = strict  # every line must have exactly n_fields fields

    @property
    def described(self) -> str:
        return ", ".join(r for r in _ROLES if r in self.cols)


#: Largest absolute rating accepted: beyond it the models' float32 arithmetic overflows.
MAX_RATING = 1e6
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
)


def _guess_nul_encoding(raw: bytes) -> str | None:
    """UTF-16/32 without a byte-order mark, from where the NUL bytes of ASCII text fall."""
    sample = raw[:4096]
    n = len(sample) - len(sample) % 4
    if n < 4:
        return None
    quads = [sample[i:n:4] for i in range(4)]
    zero = [q.count(0) / max(1, len(q)) for q in quads]
    if zero[1] > 0.9 and zero[2] > 0.9 and zero[3] > 0.9 and zero[0] < 0.5:
        return "utf-32-le"
    if zero[0] > 0.9 and zero[1] > 0.9 and zero[2] > 0.9 and zero[3] < 0.5:
        return "utf-32-be"
    odd, even = sample[1:n:2].count(0) / (n // 2), sample[0:n:2].count(0) / (n // 2)
    if odd > 0.8 and even < 0.2:
        return "utf-16-le"
    if even > 0.8 and odd < 0.2:
        return "utf-16-be"
    return None


def _read_text(path: Path, encoding: str | None = None) -> str:
    """The file's text: ``encoding`` when given, else from its byte-order mark (UTF-8/16/32), else
    UTF-16/32 recognised by its NUL bytes, else UTF-8, else Latin-1 (which decodes any byte)."""
    from ..text import excerpt

    label = excerpt(path, 120)
    if not path.exists():
        raise DataError(f"no such file: {label}; check the path")
    if path.is_dir():
        raise DataError(f"{label} is a directory, not a ratings file; give the file's path")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {label}: {exc.strerror or exc}") from None
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(encoding)
        except (LookupError, TypeError):
            raise ConfigError(f"encoding={excerpt(encoding, quote=True)} is not a known text encoding; use e.g. utf-8, utf-16, latin-1") from None
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise DataError(f"{label}: not valid {encoding} text (byte {exc.start}); give the file's encoding") from None
    else:
        enc = next((e for bom, e in _BOMS if raw.startswith(bom)), None) or (_guess_nul_encoding(raw) if b"\x00" in raw[:4096] else None)
        if enc is not None:
            try:
                text = raw.decode(enc)
            except UnicodeDecodeError:
                raise DataError(f"{label}: looks like {enc} text but does not decode as it; save it as UTF-8") from None
            if enc != "utf-8-sig" and text.startswith("\ufeff"):
                text = text[1:]
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
    if "\x00" in text:
        raise DataError(
            f"{label}: contains NUL bytes, so it is not a text ratings file in a known encoding; "
            "save it as UTF-8 text (or pass the encoding=... it is written in)"
        )
    return text


def _unquote(text: str, sep: str) -> str:
    """Standard CSV quoting (``"a,b"``, ``""`` for a quote) resolved: the fields re-joined by
    :data:`_PLACEHOLDER_SEP`, one line per input line (blank lines kept for the line numbers)."""
    import csv

    rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep if sep != " " else " ", skipinitialspace=True, strict=False)
    out = []
    for row in rows:
        out.append(_PLACEHOLDER_SEP.join(f.replace("\n", " ").replace(_PLACEHOLDER_SEP, " ") for f in row))
    return "\n".join(out) + "\n"


def _first_lines(text: str, n: int) -> list[tuple[int, str, int]]:
    """Up to ``n`` non-blank lines as (line number, line, offset just past the line)."""
    out: list[tuple[int, str, int]] = []
    pos, lineno = 0, 0
    while pos < len(text) and len(out) < n:
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end + 1
        lineno += 1
        line = text[pos:end].rstrip("\r\n")
        if line.strip():
            out.append((lineno, line, end))
        pos = end
    return out


def _diagnose(*args, **kwargs) -> DataError:
    """:func:`_find_bad_line`'s description of the first bad line, with what to do about it."""
    exc = _find_bad_line(*args, **kwargs)
    msg = str(exc)
    if "; " not in msg:
        msg += "; fix or remove that line" if " line " in msg else "; check the file's format (user, item, rating[, timestamp])"
    return DataError(msg)


def _find_bad_line(
    text: str,
    label: str,
    sep: str | None,
    layout: _Layout,
    header_lineno: int,
    implicit: bool,
    rating_scale: tuple[float, float] | None,
    sep_name: str = "",
) -> DataError:
    """Re-read ``text`` line by line (error path only) and describe the first bad line."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if lineno <= header_lineno or not line.strip():
            continue
        fields = _split(line, sep)
        n = len(fields)
        bad_count = n != layout.n_fields if layout.strict else n <= max(layout.cols.values())
        if bad_count:
            return DataError(
                f"{label} line {lineno}: {n} column{'s' if n != 1 else ''}, expected "
                f"{layout.n_fields} ({layout.described}) separated by {sep_name}"
            )
        for role in ("user", "item"):
            if not fields[layout.cols[role]]:
                return DataError(f"{label} line {lineno}: empty {role} id")
        if "rating" in layout.cols and not implicit:
            v = fields[layout.cols["rating"]]
            if not _is_number(v):
                return DataError(f"{label} line {lineno}: rating {short(v)} is not a number")
            if not math.isfinite(float(v)):
                return DataError(f"{label} line {lineno}: rating {short(v)} is not a finite number")
            if abs(float(v)) > MAX_RATING:
                return DataError(
                    f"{label} line {lineno}: rating {short(v)} is out of range; ratings must be within "
                    f"±{MAX_RATING:,.0f} (rescale them)"
                )
            if float(v) == 0.0:
                return DataError(
                    f"{label} line {lineno}: rating 0 cannot be stored (a zero means 'not rated'); "
                    "shift the ratings to a scale above 0"
                )
            if rating_scale is not None and not rating_scale[0] <= float(v) <= rating_scale[1]:
                return DataError(
                    f"{label} line {lineno}: rating {excerpt(v)} is outside the rating scale "
                    f"({rating_scale[0]:g}, {rating_scale[1]:g})"
                )
        if "timestamp" in layout.cols:
            v = fields[layout.cols["timestamp"]]
            if not _is_number(v) or not math.isfinite(float(v)):
                return DataError(f"{label} line {lineno}: timestamp {short(v)} is not a number")
    return DataError(f"{label}: could not be parsed as a ratings file")


def _loadtxt(data: str, sep: str | None, dtype, usecols) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns about blank lines, which are fine
        return np.loadtxt(
            io.StringIO(data), dtype=dtype, delimiter=sep, comments=None, usecols=usecols, ndmin=1
        )


def _ids(col: np.ndarray) -> np.ndarray:
    """Integer ids when every id is an integer, else stripped strings."""
    col = np.char.strip(col.astype(str))
    try:
        return col.astype(np.int64)
    except ValueError:
        return col


def _check_scale(rating_scale) -> tuple[float, float] | None:
    if rating_scale is None:
        return None
    if isinstance(rating_scale, str):  # "1,5" from the command line
        rating_scale = [x for x in rating_scale.replace(" ", "").strip("()[]").split(",") if x]
    try:
        lo, hi = (float(x) for x in rating_scale)
    except (TypeError, ValueError):
        raise ConfigError(f"rating_scale={rating_scale!r} must be a pair (min, max)") from None
    if not lo <= hi:
        raise ConfigError(f"rating_scale={rating_scale!r} has min > max")
    return lo, hi


def load_ratings_file(
    path: str | os.PathLike,
    *,
    sep: str | None = None,
    implicit: bool = False,
    rating_scale: tuple[float, float] | None = None,
    name: str | None = None,
    encoding: str | None = None,
) -> Interactions:
    """Load a ratings file into :class:`Interactions` (users x items).

    Args:
        path: the file; one rating a line, columns ``user, item, rating[, timestamp]`` (``user,
            item`` suffices when ``implicit``). Blank lines are skipped. A first line whose rating
            column is not a number is a header; if its names identify the columns (``userId``,
            ``movieId``, RecBole's ``user_id:token`` ...) they select them, in any order.
        sep: column separator; auto-detected among ``'::'``, tab, comma, ``';'`` and whitespace
            when ``None``. ``"tab"``, ``"comma"``, ``"semicolon"``, ``"whitespace"`` are accepted.
        implicit: treat every line as one interaction of value 1 (ratings are not read).
        rating_scale: ``(min, max)``; defaults to the range of the ratings in the file. Ratings
            outside a given scale are an error.
        name: the data set's name for reports (default: the file name without its suffix).
        encoding: the file's text encoding; by default taken from a byte-order mark (UTF-8, UTF-16,
            UTF-32), else UTF-16/32 recognised by its NUL bytes, else UTF-8, else Latin-1.

    Fields may be quoted as in standard CSV (``"user 1","item, a",5``). Ratings must be finite,
    non-zero and within ±1e6.

    Raw user and item ids are integers when every id in the file is one, else strings. Duplicate
    (user, item) pairs keep the latest rating. ``rating_step`` is 1.0 when every rating is an
    integer, else ``None`` (continuous).

    Raises:
        DataError: missing, empty or malformed file; the message names the file and, for malformed
            content, the first bad line.
    """
    from ..text import excerpt

    p = Path(path).expanduser()
    label = excerpt(path, 120)
    if isinstance(sep, str) and sep.lower() in _SEP_ALIASES:
        sep = _SEP_ALIASES[sep.lower()]
    if sep is not None and (not isinstance(sep, str) or sep == "" or "\n" in sep):
        raise ConfigError(f"sep={short(sep)} is not a usable column separator")
    scale = _check_scale(rating_scale)
    text = _read_text(p, encoding)

    head = _first_lines(text, 6)
    if not head:
        raise DataError(f"{label}: empty file (no ratings); give a file with one rating a line")
    if sep is None:
        sample = [ln for _, ln, _ in head[1:]] or [head[0][1]]
        sep = _detect_sep(sample)
    sep_name = _SEP_NAMES.get(sep, repr(sep))
    if '"' in text and (sep is None or len(sep) == 1):
        # quoted fields: resolve standard CSV quoting once, then parse as usual
        shown = sep
        text = _unquote(text, sep if sep is not None else " ")
        sep = _PLACEHOLDER_SEP
        sep_name = _SEP_NAMES[shown]
        head = _first_lines(text, 6)
        if not head:
            raise DataError(f"{label}: empty file (no ratings); give a file with one rating a line")

    # header and column layout
    first_no, first_line, first_end = head[0]
    fields = _split(first_line, sep)
    min_fields = 2 if implicit else 3
    named = _columns_from_header(fields)
    if implicit:  # no rating column to test: a header must name the user and item columns
        is_header = named is not None and not all(_is_number(f) for f in fields)
    else:  # a first line whose rating column is not a number
        is_header = len(fields) >= 3 and not _is_number(fields[2])
    if is_header and named is not None and (implicit or "rating" in named):
        layout = _Layout(len(fields), named, strict=len(fields) <= 4)
    else:
        n_fields = len(fields)
        if not min_fields <= n_fields <= 4:
            expected = (
                "2 to 4 (user, item[, rating[, timestamp]])"
                if implicit
                else "3 or 4 (user, item, rating[, timestamp])"
            )
            raise DataError(
                f"{label} line {first_no}: {n_fields} column{'s' if n_fields != 1 else ''}, "
                f"expected {expected} separated by {sep_name}"
                + ("; for (user, item) pairs without ratings use --implicit (implicit: true in a sweep spec)" if n_fields == 2 else "")
            )
        layout = _Layout(n_fields, {r: k for k, r in enumerate(_ROLES[:n_fields])}, strict=True)
    if implicit:
        layout.cols.pop("rating", None)
    header_lineno = first_no if is_header else 0
    body = text[first_end:] if is_header else text
    if not body.strip():
        raise DataError(f"{label}: no ratings after the header line; give a file with one rating a line")

    def fail() -> DataError:
        return _diagnose(text, label, sep, layout, header_lineno, implicit, scale, sep_name)

    # fast path: numpy's C parser; the slow line-by-line pass runs only to explain a failure
    load_sep = sep
    body = _BLANK_LINE.sub("", body)  # whitespace-only lines become empty ones, which numpy skips
    if sep is not None and len(sep) > 1:
        body = body.replace(sep, _PLACEHOLDER_SEP)
        load_sep = _PLACEHOLDER_SEP
    roles = [r for r in _ROLES if r in layout.cols]
    usecols = None if layout.strict else tuple(layout.cols[r] for r in roles)
    cols: dict[str, np.ndarray]
    try:
        kinds = {"user": "i8", "item": "i8", "rating": "f8", "timestamp": "f8"}
        if layout.strict:
            by_index = {k: r for r, k in layout.cols.items()}
            dt = [
                (f"c{k}", kinds[by_index[k]] if k in by_index else "O")
                for k in range(layout.n_fields)
            ]
        else:
            dt = [(f"c{layout.cols[r]}", kinds[r]) for r in roles]
        rec = _loadtxt(body, load_sep, np.dtype(dt), usecols)
        cols = {r: np.asarray(rec[f"c{layout.cols[r]}"]) for r in roles}
    except (ValueError, OverflowError):
        try:
            table = _loadtxt(body, load_sep, str, usecols)
        except ValueError:
            raise fail() from None
        table = table.reshape(-1, len(roles) if usecols is not None else layout.n_fields)
        pos = {r: (k if usecols is not None else layout.cols[r]) for k, r in enumerate(roles)}
        try:
            cols = {r: table[:, pos[r]] for r in roles}
            for r in ("rating", "timestamp"):
                if r in cols:
                    cols[r] = np.char.strip(cols[r]).astype(np.float64)
        except ValueError:
            raise fail() from None
        cols["user"] = _ids(cols["user"])
        cols["item"] = _ids(cols["item"])
        for r in ("user", "item"):
            if cols[r].dtype.kind == "U" and np.any(np.char.str_len(cols[r]) == 0):
                raise fail()

    n = len(cols["user"])
    if n == 0:
        raise DataError(f"{label}: empty file (no ratings); give a file with one rating a line")
    ratings = None
    step: float | None = None
    if not implicit:
        ratings = cols["rating"].astype(np.float64)
        if not np.all(np.isfinite(ratings)) or np.any(ratings == 0) or np.any(np.abs(ratings) > MAX_RATING):
            raise fail()
        if scale is not None and (ratings.min() < scale[0] or ratings.max() > scale[1]):
            raise fail()
        lo = scale[0] if scale is not None else float(ratings.min())
        step = 1.0 if (np.all(ratings == np.round(ratings)) and lo == round(lo)) else None
    ts = None
    if "timestamp" in cols:
        ts = cols["timestamp"].astype(np.float64)
        if not np.all(np.isfinite(ts)):
            raise fail()
    return Interactions.from_arrays(
        cols["user"],
        cols["item"],
        ratings,
        timestamps=ts,
        rating_scale=scale,
        rating_step=step,
        implicit=implicit,
        name=name if name is not None else p.stem or p.name,
    )
