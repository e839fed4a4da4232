"""Fixed-width text date formats of the mapping (``%d/%m/%Y``): checks and field positions."""

from __future__ import annotations

_FORMAT_WIDTH = {"%d": 2, "%m": 2, "%Y": 4}


def date_format_parts(fmt: str) -> dict[str, tuple[int, int]]:
    """Positions (1-based start, length) of day, month and year in a fixed-width format."""
    parts: dict[str, tuple[int, int]] = {}
    pos, i = 1, 0
    while i < len(fmt):
        token = fmt[i:i + 2]
        if token in _FORMAT_WIDTH:
            parts[token] = (pos, _FORMAT_WIDTH[token])
            pos += _FORMAT_WIDTH[token]
            i += 2
        else:
            pos += 1
            i += 1
    return parts


def date_format_width(fmt: str) -> int:
    """Length of a date written in ``fmt``."""
    return len(fmt) + sum(w - 2 for t, w in _FORMAT_WIDTH.items() for _ in range(fmt.count(t)))


def check_format(fmt: str, short=repr) -> str | None:
    """What is wrong with a date format (None: fine); ``short`` quotes it."""
    stripped = fmt
    for token in _FORMAT_WIDTH:
        if stripped.count(token) != 1:
            return (f"date format {short(fmt)} must hold %d, %m and %Y once each (fixed-width "
                    "fields, e.g. '%d/%m/%Y' or '%Y-%m-%d')")
        stripped = stripped.replace(token, "")
    if "%" in stripped:
        return f"date format {short(fmt)}: only %d, %m and %Y are supported"
    return None
