"""Atomic output folders and byte-stable artifact writers.

A stage never writes into the user's folder directly: it works in a temporary folder beside the
target (same filesystem, so the final ``rename`` is atomic) and the folder is swapped in only
when every stage succeeded. A failed run leaves the previous folder (or nothing) in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from synthctl.errors import SpecError

MANIFEST = "manifest.json"
_FLOAT_DIGITS = 12  # significant digits in results.json / cohort.csv: stable across BLAS builds


@contextlib.contextmanager
def atomic_output(target: str | Path, *, start_from_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` when the block succeeds.

    Parameters
    ----------
    target : str or Path
        The output folder. If it exists it must be a synthctl output (hold ``manifest.json``)
        or be empty: synthctl never replaces a folder it did not write.
    start_from_existing : bool, default=False
        Copy the existing folder's content first (single-stage commands add to a folder).
    """
    target = Path(target).expanduser().resolve()
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        if start_from_existing and target.is_dir():
            shutil.copytree(target, tmp, dirs_exist_ok=True)
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)


def _check_replaceable(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise SpecError(f"output folder {target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).is_file():
        raise SpecError(
            f"output folder {target} is not empty and holds no {MANIFEST}: synthctl only "
            "replaces folders it wrote; choose another --out"
        )


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_frame(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's canonical CSV (rows sorted by all columns, stable float text)."""
    canon = frame.reindex(sorted(frame.columns), axis=1)
    canon = canon.sort_values(list(canon.columns), kind="mergesort", na_position="last")
    text = canon.to_csv(index=False, float_format=f"%.{_FLOAT_DIGITS}g", lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


def stable_floats(obj: Any) -> Any:
    """Round floats to 12 significant digits (NaN/inf to None) for byte-stable JSON."""
    if isinstance(obj, dict):
        return {str(k): stable_floats(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [stable_floats(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return float(f"{obj:.{_FLOAT_DIGITS}g}")
    return obj


def write_json(path: Path, obj: Any) -> str:
    """Write sorted, indented JSON with stable floats; return its SHA-256."""
    text = json.dumps(stable_floats(obj), indent=2, sort_keys=True, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return sha256_file(path)


def write_csv(path: Path, frame: pd.DataFrame) -> str:
    """Write a CSV with stable float text and ``\\n`` line ends; return its SHA-256."""
    frame.to_csv(path, index=False, float_format=f"%.{_FLOAT_DIGITS}g", lineterminator="\n")
    return sha256_file(path)


def read_json(path: Path) -> Any:
    """Read a JSON file (for manifest and design.json)."""
    return json.loads(path.read_text(encoding="utf-8"))
