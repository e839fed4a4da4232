"""A minimal SAS XPORT v5 writer for tests (pandas reads XPT but cannot write it).

Layout from SAS TS-140 "The record layout of a data set in SAS transport (XPORT) format":
80-byte header records, 140-byte NAMESTR records per variable, then observations with
numerics as 8-byte big-endian IBM System/360 doubles and characters blank-padded; every
section is padded to a multiple of 80 bytes. One member, no labels or formats.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pandas as pd

_STAMP = "01JAN24:00:00:00"


def _rec(text: str) -> bytes:
    raw = text.encode("ascii")
    assert len(raw) <= 80
    return raw.ljust(80, b" ")


def _header(kind: str, tail: str = "0" * 30) -> bytes:
    return _rec(f"HEADER RECORD*******{kind:<8}HEADER RECORD!!!!!!!{tail}")


def ibm_double(x: float | None) -> bytes:
    """IEEE double -> IBM 360 double (exact: the 53-bit mantissa fits the 56-bit fraction)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return b"." + b"\x00" * 7  # SAS standard missing value
    if x == 0:
        return b"\x00" * 8
    sign = 0x80 if x < 0 else 0
    m, e = math.frexp(abs(x))  # |x| = m * 2**e, 0.5 <= m < 1
    exp16 = -(-e // 4)  # ceil(e / 4): |x| = f * 16**exp16 with 1/16 <= f < 1
    fraction = int(math.ldexp(m, 56 + e - 4 * exp16))
    return bytes([sign | (exp16 + 64)]) + fraction.to_bytes(7, "big")


def write_xport(frame: pd.DataFrame, path: str | Path, name: str = "DATA") -> None:
    """Write ``frame``: numeric columns as SAS numerics, everything else as text (None = blank)."""
    kinds, widths = [], []
    for col in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(
            frame[col]
        ):
            kinds.append(1)
            widths.append(8)
        else:
            text = frame[col].map(lambda v: "" if v is None or v is pd.NA else str(v))
            kinds.append(2)
            widths.append(max(1, int(text.str.len().max() or 1)))
    out = bytearray()
    out += _header("LIBRARY")
    out += _rec(f"{'SAS':<8}{'SAS':<8}{'SASLIB':<8}{'9.4':<8}{'X64_10':<8}{'':24}{_STAMP}")
    out += _rec(_STAMP)
    out += _header("MEMBER", "000000000000000001600000000140")
    out += _header("DSCRPTR")
    out += _rec(f"{'SAS':<8}{name:<8}{'SASDATA':<8}{'9.4':<8}{'X64_10':<8}{'':24}{_STAMP}")
    out += _rec(f"{_STAMP}{'':16}{'':40}{'':8}")
    out += _header("NAMESTR", f"000000{len(frame.columns):04d}" + "0" * 20)
    names = bytearray()
    pos = 0
    for i, (col, kind, width) in enumerate(zip(frame.columns, kinds, widths, strict=True)):
        names += struct.pack(">hhhh", kind, 0, width, i + 1)
        names += str(col)[:8].encode("ascii").ljust(8, b" ")
        names += b" " * 40  # label
        names += b" " * 8 + struct.pack(">hhh", 0, 0, 0) + b"\x00\x00"  # format
        names += b" " * 8 + struct.pack(">hh", 0, 0)  # informat
        names += struct.pack(">i", pos) + b"\x00" * 52
        pos += width
    out += names + b" " * (-len(names) % 80)
    out += _header("OBS")
    data = bytearray()
    for row in frame.itertuples(index=False):
        for value, kind, width in zip(row, kinds, widths, strict=True):
            if kind == 1:
                data += ibm_double(None if pd.isna(value) else float(value))
            else:
                text = "" if value is None or value is pd.NA else str(value)
                data += text.encode("utf-8").ljust(width, b" ")
    out += data + b" " * (-len(data) % 80)
    Path(path).write_bytes(bytes(out))
