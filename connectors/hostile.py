"""Checks for hostile or damaged input files: control characters, look-alike column names,
truncated SAS XPORT files, floods of pandas warnings.

- A NUL or other control character inside a cell is an error naming file, row and column
  (pandas' C parser silently cuts a value at a NUL: ``epith\\0elioid`` became ``epith``).
- Column names are compared after Unicode NFKC normalisation (full-width ``ＡＧＥ`` and
  mathematical bold ``𝐀𝐆𝐄`` are ``AGE``); a name that still differs only by look-alike
  letters (Cyrillic ``АGЕ``) is reported with its code points (`lookalike_hint`).
- An XPT file whose size does not match its header (record length x observations, padded to
  80-byte records with blanks) is truncated (`check_xpt_size`). A cut exactly at the end of an
  observation that also ends an 80-byte record cannot be seen: the header of an XPORT v5
  file does not hold the number of observations.
- pandas warnings raised while reading a file become one `InputFileWarning` (`one_warning`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pandas as pd

_T = TypeVar("_T")

__all__ = [
    "InputFileWarning",
    "check_xpt_size",
    "control_char_in_csv",
    "control_char_in_frame",
    "describe_value",
    "lookalike_hint",
    "nfkc",
    "normalise_columns",
    "one_warning",
    "read_guarded",
]

# in a parsed value: C0 and C1 controls and DEL (a tab or newline inside a cell included)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# in the raw bytes of a CSV file: controls other than tab, LF and CR (line structure)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_XPT_RECORD = 80


class InputFileWarning(UserWarning):
    """Something in an input file deserves attention but does not stop the run."""


def nfkc(name: object) -> str:
    """The column name in Unicode NFKC form (full-width and styled letters become ASCII)."""
    return unicodedata.normalize("NFKC", str(name))


_CONTROL_NAMES = {"\x00": "NUL", "\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN",
                  "\x1b": "ESCAPE", "\x7f": "DELETE", "\x85": "NEXT LINE"}


def describe_value(value: str, limit: int = 40) -> str:
    """Where the first control character of ``value`` is, and the value (quoted, shortened).

    Examples
    --------
    >>> describe_value("epith" + chr(0) + "elioid")
    "U+0000 (NUL) at position 6 of the value 'epith\\\\x00elioid'"
    """
    shown = repr(value if len(value) <= limit else value[:limit] + "...")
    m = _CONTROL.search(value)
    if m is None:
        return f"the value {shown}"
    ch = m.group()
    name = _CONTROL_NAMES.get(ch, unicodedata.name(ch, ""))
    label = f"U+{ord(ch):04X}" + (f" ({name})" if name else "")
    return f"{label} at position {m.start() + 1} of the value {shown}"


def control_char_in_csv(path: Path, encoding: str = "utf-8") -> tuple[int, str, str] | None:
    """The first cell of a CSV file holding a control character other than tab/LF/CR.

    Returns ``(data_row, column, value)`` (``data_row`` 0-based, after the header) or None.
    Reads the bytes once; parses with the csv module (which keeps NULs) only when one is found.
    """
    raw = path.read_bytes()
    if not _CONTROL_BYTES.search(raw):
        return None
    text = raw.decode(encoding, errors="replace")
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, [])
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if _CONTROL.search(cell.replace("\t", " ").replace("\n", " ").replace("\r", " ")):
                return i, (nfkc(header[j]) if j < len(header) else f"#{j + 1}"), cell
    for j, name in enumerate(header):
        if _CONTROL.search(name):
            return -1, f"#{j + 1}", name
    return None


def control_char_in_frame(frame: pd.DataFrame,
                          columns: Iterable[str] | None = None) -> tuple[int, str, str] | None:
    """The first text cell (row position, column, value) holding a control character."""
    for col in (columns if columns is not None else frame.columns):
        s = frame[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        values = [v if isinstance(v, str) else "" for v in s.tolist()]
        if not _CONTROL.search("".join(values)):  # one scan per column in the common case
            continue
        i = next(k for k, v in enumerate(values) if _CONTROL.search(v))
        return i, str(col), values[i]
    return None


def normalise_columns(names: Sequence[object], where: str) -> list[str]:
    """NFKC names; two names equal after normalisation are an error (ValueError, naming both)."""
    out = [nfkc(n) for n in names]
    seen: dict[str, object] = {}
    for raw, norm in zip(names, out, strict=True):
        if norm in seen:
            raise ValueError(f"{where}: columns {seen[norm]!r} and {raw!r} are the same name "
                             f"{norm!r} after Unicode NFKC normalisation")
        seen[norm] = raw
    return out


def _code_points(name: str) -> str:
    return " ".join(f"U+{ord(c):04X}" + ("" if c.isascii() else
                                         f" ({unicodedata.name(c, '?')})") for c in name
                    if not c.isascii())


def lookalike_hint(wanted: str, names: Iterable[str]) -> str:
    """``"; the file has 'АGЕ' (non-ASCII U+0410 (CYRILLIC ...)...)"`` or ``""``.

    A look-alike: same length as ``wanted`` (after NFKC), equal in every ASCII position,
    non-ASCII where it differs, or equal ignoring case and accents.
    """
    target = nfkc(wanted)
    hits = []
    for name in names:
        norm = nfkc(name)
        if norm == target:
            continue
        same_shape = len(norm) == len(target) and all(
            a == b or not a.isascii() for a, b in zip(norm, target, strict=True))
        folded = _fold(norm) == _fold(target)
        if (same_shape and not norm.isascii()) or folded:
            points = _code_points(norm)
            hits.append(f"{norm!r}" + (f" (non-ASCII {points})" if points else ""))
    if not hits:
        return ""
    return (f"; the file has the look-alike {', '.join(hits[:3])}, which is a different name: "
            "rename the column")


def _fold(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def check_xpt_size(path: Path, record_start: int, record_length: int, nobs: int) -> str | None:
    """Why an XPORT file is truncated (None when its size matches its header).

    ``record_start`` (bytes), ``record_length`` (bytes per observation) and ``nobs`` as the
    XPORT reader computed them from the header and the file size.
    """
    size = path.stat().st_size
    data = size - record_start
    if data < 0:
        return f"the file ends inside its header ({size} bytes)"
    if data % _XPT_RECORD:
        return (f"the file is {size} bytes, not a whole number of 80-byte records after its "
                f"header: it was cut {data % _XPT_RECORD} bytes into a record")
    tail = data - nobs * record_length
    if tail < 0 or tail >= max(_XPT_RECORD, record_length):
        return (f"{data} bytes of observations do not hold {nobs} observations of "
                f"{record_length} bytes")
    with path.open("rb") as fh:
        fh.seek(record_start + nobs * record_length)
        rest = fh.read()
    if rest.strip(b" "):
        return (f"the last observation is incomplete ({len(rest)} of {record_length} bytes): "
                "the file was cut")
    return None


@contextlib.contextmanager
def one_warning(path: Path) -> Iterator[None]:
    """Collect pandas' (and pyarrow's) warnings while reading ``path``; re-issue them as one
    short `InputFileWarning`. Other warnings raised meanwhile pass through unchanged."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    mine = [w for w in caught if _from_reader(w)]
    for w in caught:
        if not _from_reader(w):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    if not mine:
        return
    kinds = sorted({w.category.__name__ for w in mine})
    first = str(mine[0].message).splitlines()[0]
    first = first if len(first) <= 120 else first[:117] + "..."
    warnings.warn(f"{path}: {len(mine)} warning(s) from the file reader ({', '.join(kinds)}),"
                  f" the first: {first}", InputFileWarning, stacklevel=4)


def read_guarded(path: Path, read: Callable[[], _T], fail: Callable[[int, str, str], Exception],
                 *, csv_text: bool, frame: Callable[[_T], pd.DataFrame] | None = None) -> _T:
    """Read an input file guarded against hostile content; the one read path of the file loaders.

    With ``csv_text`` the raw bytes are searched for control characters first (pandas' C parser
    cuts a value at a NUL); ``read()`` then runs under `one_warning`, and the text cells of
    the result (``frame(result)``, default the result itself) are searched again.
    ``fail(data_row, column, value)`` builds the error raised for the first hit (``data_row``
    is 0-based after the header, -1 for the header itself).
    """
    if csv_text:
        hit = control_char_in_csv(path)
        if hit is not None:
            raise fail(*hit)
    with one_warning(path):
        result = read()
    hit = control_char_in_frame(result if frame is None else frame(result))
    if hit is not None:
        raise fail(*hit)
    return result


def _from_reader(w: warnings.WarningMessage) -> bool:
    module = getattr(w.category, "__module__", "")
    where = str(w.filename).replace("\\", "/")
    return module.startswith(("pandas", "pyarrow")) or "/pandas/" in where or \
        "/pyarrow/" in where
