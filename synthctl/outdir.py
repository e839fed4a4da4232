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
ALIGNMENT_FIGURE = f"{FIGURES}/alignment_gaps.svg"  # analysis.endpoint_alignment: gaps per arm
# `synthctl validate`
QUALITY_JSON = "quality.json"
QUALITY_FAILURES = "quality_failures.csv"  # registry keys: keep inside the registry's perimeter
QUALITY_HTML = "quality.html"
QUALITY_FILES = (QUALITY_JSON, QUALITY_FAILURES, QUALITY_HTML)
# `synthctl export-adam` (patient-level: inside the data perimeter, like cohort.csv)
ADAM = "adam"
ADSL_XPT, ADTTE_XPT = f"{ADAM}/adsl.xpt", f"{ADAM}/adtte.xpt"  # SAS XPORT v5
ADSL_CSV, ADTTE_CSV = f"{ADAM}/adsl.csv", f"{ADAM}/adtte.csv"
ADRS_XPT, ADRS_CSV = f"{ADAM}/adrs.xpt", f"{ADAM}/adrs.csv"  # ADRS-derived BOR and ORR
ADAM_DEFINE = f"{ADAM}/define.csv"  # variable metadata: label, type, origin, derivation
REANALYSIS_R = "reanalysis.R"  # re-derives results.json from the ADaM files with R survival

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
    out[MATCH_ID] = _match_id_text(pd.Series(out[MATCH_ID]).reset_index(drop=True))
    out[INCLUDED] = np.asarray(out[INCLUDED], dtype=bool)
    return write_csv(folder / COHORT, out)


def _match_id_text(match_id: pd.Series) -> np.ndarray:
    """``match_id`` as text (``str`` of each value: ``3.0`` for a float id), empty where NaN.

    Whole-number float ids below 2**53 (what the matchers give) take a vectorised path with
    the same text as ``astype("string")``, which formats one value at a time.
    """
    values = match_id.to_numpy()
    if values.dtype.kind == "f":
        ok = np.isfinite(values)
        whole = values[ok]
        if np.array_equal(whole, np.trunc(whole)) and (np.abs(whole) < 2.0**53).all():
            text = np.full(len(values), "", dtype=object)
            text[ok] = [f"{v}.0" for v in whole.astype(np.int64).tolist()]
            text[ok & np.signbit(values) & (values == 0)] = "-0.0"
            return text
    return match_id.astype("string").where(match_id.notna(), "").to_numpy()


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
    """Write a CSV with stable float text and ``\\n`` line ends; return its SHA-256.

    The bytes are those of ``frame.to_csv(index=False, float_format="%.12g",
    lineterminator="\\n")`` (pinned by ``tests/synthctl/test_speed_contracts.py``), built a
    column at a time in Arrow: floats formatted once per distinct value with the ``%``
    operator pandas applies (NaN empty), text quoted as the csv module's QUOTE_MINIMAL does,
    and the rows joined by ``binary_join_element_wise`` instead of pandas' per-row csv writer.
    Frames with other column types (dates, categoricals, mixed objects) go through pandas.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = [_csv_cells(frame.iloc[:, j]) for j in range(frame.shape[1])]
    header = ",".join(_csv_quote(pa.array([str(c) for c in frame.columns], pa.string()))
                      .to_pylist())
    if not len(frame) or len(cells) < 2 or any(c is None for c in cells):  # 1 column: '""' rows
        frame.to_csv(path, index=False, float_format=_FLOAT_FORMAT, lineterminator="\n")
        return sha256_file(path)
    rows = pc.binary_join_element_wise(*cells, pa.array([""] * len(frame), pa.string()), ",")
    # Each row ends in ",": its last byte becomes the line end; the array has no nulls, so its
    # data buffer between the first and last offsets is the file's body.
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset:]
    body = np.frombuffer(rows.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[len(rows)]].copy()
    body[offsets[1:len(rows) + 1] - offsets[0] - 1] = ord("\n")
    data = (header + "\n").encode("utf-8") + body.tobytes()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


_FLOAT_FORMAT = f"%.{_FLOAT_DIGITS}g"


def _csv_quote(text):
    """QUOTE_MINIMAL on an Arrow string array: quote fields holding ``,``, ``"`` or ``\\n``."""
    import pyarrow.compute as pc

    needs = pc.match_substring_regex(text, '[,"\\n]')
    if not pc.any(needs).as_py():
        return text
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, text)


def _csv_cells(column: pd.Series):
    """One column's CSV text as an Arrow string array, or None for a type left to pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = column.to_numpy()
    kind = values.dtype.kind
    if kind == "f":
        # Formatted once per distinct value (weights take a handful of values).
        # by bit pattern, so that -0.0 and 0.0 (printed "-0", "0") stay apart
        bits, inverse = np.unique(values.astype(np.float64).view(np.int64), return_inverse=True)
        text = ["" if v != v else _FLOAT_FORMAT % v for v in bits.view(np.float64).tolist()]
        return pa.array(text, pa.string()).take(pa.array(inverse.ravel()))
    if kind == "b":
        return pc.if_else(pa.array(values), "True", "False")
    if kind in "iu":
        return pc.cast(pa.array(values), pa.string())
    if kind == "O" and isinstance(column.dtype, np.dtype | pd.StringDtype):
        try:
            text = pa.array(values, pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None  # not all text: pandas decides how to print it
        text = text.fill_null("")
        if pc.any(pc.match_substring(text, "\r")).as_py():
            return None  # the csv module's rule for a lone CR differs across Python versions
        return _csv_quote(text)
    return None


def read_json(path: Path) -> Any:
    """Read a JSON file (for manifest and design.json)."""
    return json.loads(path.read_text(encoding="utf-8"))
