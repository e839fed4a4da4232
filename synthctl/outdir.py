"""The output folder's contract: file names, ``cohort.csv`` columns, and reading/writing them.

This module is the one place that spells an artifact's name or a ``cohort.csv`` column; the
stages, the runner, the manifest and the commands import them. How a folder is written
(ownership marker, lock, atomic swap, recovery) lives in `synthctl.atomic`.

Byte stability: JSON is sorted and indented with floats rounded to 12 significant digits,
CSV floats likewise and ``\\n`` line ends, so the same spec, seed and inputs give byte-identical
artifacts across runs and BLAS builds.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connectors import columns as cn

# --- file names ------------------------------------------------------------------------------
MARKER = ".synthctl"  # ownership marker: run id and every file synthctl wrote (synthctl.atomic)
MANIFEST = "manifest.json"
ATTRITION = "attrition.csv"
COVARIATES = "covariates.parquet"  # both arms at index, covariates only: the design's input
EXTRACT_INFO = "extract.json"  # counts, trial attrition and validation findings (no ids)
DESIGN = "design.json"
COHORT = "cohort.csv"
IMPUTED_COVARIATES = "imputed_covariates.parquet"  # design.missing: impute: completed sets
RESULTS = "results.json"
REPORT = "report.html"
FIGURES = "figures"
LOVE_PLOT = f"{FIGURES}/love_plot.svg"
PS_OVERLAP = f"{FIGURES}/ps_overlap.svg"
KM_FIGURE = f"{FIGURES}/km.svg"
# `synthctl validate`
QUALITY_JSON = "quality.json"
QUALITY_FAILURES = "quality_failures.csv"  # registry keys: keep inside the registry's perimeter
QUALITY_HTML = "quality.html"
QUALITY_FILES = (QUALITY_JSON, QUALITY_FAILURES, QUALITY_HTML)

# --- cohort.csv ------------------------------------------------------------------------------
PS = "ps"  # propensity score
WEIGHT = "weight"  # analysis weight; 0 = not selected
MATCH_ID = "match_id"  # matched set; empty when unmatched or for weighting
INCLUDED = "included"  # True / False
IMPUTATION = "imputation"  # design.missing: impute: the imputation (1..m) of a cohort.csv row
_FLOAT_DIGITS = 12  # significant digits in results.json / cohort.csv: stable across BLAS builds


def cohort_columns(*, with_line_id: bool = False) -> list[str]:
    """``cohort.csv``'s columns in file order (``line_id`` when a patient has several lines)."""
    ids = [cn.PATIENT_ID, cn.LINE_ID] if with_line_id else [cn.PATIENT_ID]
    return [*ids, cn.ARM, PS, WEIGHT, MATCH_ID, INCLUDED]


def write_cohort(folder: Path, cohort: pd.DataFrame) -> str:
    """Write ``cohort.csv`` (columns checked against the contract); return its SHA-256.

    ``match_id`` is written as text, empty where there is no matched set; ``included`` as
    ``True``/``False``.
    """
    expected = cohort_columns(with_line_id=cn.LINE_ID in cohort.columns)
    if list(cohort.columns) != expected:
        raise ValueError(f"{COHORT} columns {list(cohort.columns)} are not {expected}")
    out = cohort.copy()
    match_id = pd.Series(out[MATCH_ID]).reset_index(drop=True)
    out[MATCH_ID] = match_id.astype("string").where(match_id.notna(), "").to_numpy()
    out[INCLUDED] = np.asarray(out[INCLUDED], dtype=bool)
    return write_csv(folder / COHORT, out)


def read_cohort(folder: Path) -> pd.DataFrame:
    """Read ``cohort.csv`` with its types: ids and ``match_id`` as text (NaN where empty),
    ``ps``/``weight`` as floats and ``included`` parsed once into a boolean column.

    Raises
    ------
    ValueError
        If the file lacks a contract column or ``included`` holds anything but True/False
        (the message names the file, the column and the first bad row).
    """
    path = folder / COHORT
    frame = pd.read_csv(path, dtype={cn.PATIENT_ID: str, MATCH_ID: str, INCLUDED: str},
                        keep_default_na=False, na_values={PS: [""], WEIGHT: [""]})
    missing = [c for c in cohort_columns() if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    flag = frame[INCLUDED].str.strip().str.lower()
    bad = ~flag.isin(["true", "false"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: row {row + 2}, column {INCLUDED}: expected True or False, "
                         f"got {frame[INCLUDED].iloc[row]!r}")
    frame[INCLUDED] = flag.eq("true").to_numpy()
    frame[MATCH_ID] = frame[MATCH_ID].where(frame[MATCH_ID] != "", np.nan)
    return frame


# --- JSON artifacts --------------------------------------------------------------------------
def write_design(folder: Path, design: dict[str, Any]) -> str:
    """Write ``design.json``; return its SHA-256 (the design lock's hash)."""
    return write_json(folder / DESIGN, design)


def read_design(folder: Path) -> dict[str, Any]:
    return read_json(folder / DESIGN)


def write_results(folder: Path, results: dict[str, Any]) -> str:
    """Write ``results.json``; return its SHA-256."""
    return write_json(folder / RESULTS, results)


def read_results(folder: Path) -> dict[str, Any] | None:
    """``results.json``'s content, or None when the folder has none (analyze did not run)."""
    path = folder / RESULTS
    return read_json(path) if path.is_file() else None


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
