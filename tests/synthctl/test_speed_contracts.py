"""Speed work must not change what is written or widen what a stage imports (issue 16).

- ``outdir.write_csv`` (Arrow, column at a time) writes the bytes pandas' ``to_csv`` writes.
- ``synthctl design`` leaves the bootstrap, scipy.stats, the survival code and matplotlib
  unimported when it draws nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthctl import outdir
from synthctl.runner import run_study
from tests.synthctl.conftest import CSV, write_spec


def _pandas_bytes(frame: pd.DataFrame, path: Path) -> bytes:
    """The reference: the writer used before issue 16."""
    frame.to_csv(path, index=False, float_format="%.12g", lineterminator="\n")
    return path.read_bytes()


def _cohort_like(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    scale = rng.choice([1.0, 1e-3, 1e-5, 1e-9, 1e7, 1e13], n)
    ps = rng.random(n) * scale
    ps[rng.random(n) < 0.1] = np.nan
    ps[:6] = [0.1 + 0.2, 1 / 3, 0.0, -0.0, 1e-5, 123456789012.5]  # 12 digits, ties, signs
    weight = rng.choice([0.0, 1.0, 0.2, 1 / 3, np.nan], n)
    match_id = np.where(rng.random(n) < 0.3, rng.integers(1, 50, n).astype(str), "")
    return pd.DataFrame({
        "patient_id": [f"P{i:05d}" for i in range(n)],
        "arm": rng.choice(["trial", "registry"], n),
        "ps": ps,
        "weight": weight,
        "match_id": match_id,
        "included": rng.random(n) < 0.5,
    })


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_write_csv_bytes_equal_pandas_on_a_cohort(tmp_path: Path, seed: int):
    frame = _cohort_like(5_000, seed)
    assert (frame["match_id"] == "").any() and frame["ps"].isna().any()
    sha = outdir.write_csv(tmp_path / "new.csv", frame)
    assert (tmp_path / "new.csv").read_bytes() == _pandas_bytes(frame, tmp_path / "old.csv")
    assert sha == outdir.sha256_file(tmp_path / "new.csv")


def test_write_cohort_bytes_equal_pandas(tmp_path: Path):
    frame = _cohort_like(500, 3)
    frame["match_id"] = frame["match_id"].where(frame["match_id"] != "", np.nan)  # as designed
    outdir.write_cohort(tmp_path, frame)
    expected = frame.copy()
    expected["match_id"] = expected["match_id"].fillna("")
    assert (tmp_path / outdir.COHORT).read_bytes() == _pandas_bytes(expected, tmp_path / "o.csv")


def test_write_csv_quotes_text_as_pandas_does(tmp_path: Path):
    frame = pd.DataFrame({
        "id, with comma": ["a,b", 'say "hi"', "line\nbreak", "cr\rx", "", None, "plain"],
        "n": np.arange(7, dtype=np.int64),
        "x": [1.0, 2.5, np.inf, -np.inf, np.nan, 1e16, 2.0**-30],
        "f32": np.array([0.1, 1.5, 3.0, 0, 7, 8, 9], dtype=np.float32),
        "flag": [True, False] * 3 + [True],
    })
    outdir.write_csv(tmp_path / "new.csv", frame)
    assert (tmp_path / "new.csv").read_bytes() == _pandas_bytes(frame, tmp_path / "old.csv")


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=object)}),
    pd.DataFrame({"mixed": [1, "x", 2.5], "date": pd.to_datetime(["2020-01-01"] * 3)}),
    pd.DataFrame({"cat": pd.Categorical(["a", "b", "a"]), "nb": pd.array([True, None, False])}),
], ids=["empty", "mixed-objects-dates", "categorical-nullable"])
def test_write_csv_other_frames_equal_pandas(tmp_path: Path, frame: pd.DataFrame):
    outdir.write_csv(tmp_path / "new.csv", frame)
    assert (tmp_path / "new.csv").read_bytes() == _pandas_bytes(frame, tmp_path / "old.csv")


def test_write_csv_single_text_column_with_empty_rows_equal_pandas(tmp_path: Path):
    frame = pd.DataFrame({"only": ["", "a", ""]})  # the csv module writes '""' for these rows
    outdir.write_csv(tmp_path / "new.csv", frame)
    assert (tmp_path / "new.csv").read_bytes() == _pandas_bytes(frame, tmp_path / "old.csv")


# Modules `synthctl design` does not need on a flat file: the analysis and its bootstrap
# (joblib workers are configured by the CLI's worker guard, so joblib itself may load),
# scipy.stats (seconds to import), sqlalchemy (flat file: no SQL), pyplot (figures are bare
# `Figure`s).
_NOT_FOR_DESIGN = ("reports.analysis", "reports.bootstrap", "reports.compare", "reports.cox",
                   "scipy.stats", "sqlalchemy", "matplotlib.pyplot", "statsmodels", "lifelines")
_CHILD = """
import json, sys
from synthctl.cli import app
try:
    app(sys.argv[1:-1], standalone_mode=False)
finally:
    with open(sys.argv[-1], "w") as fh:
        json.dump(sorted(sys.modules), fh)
"""


def _modules_of(tmp_path: Path, *argv: str) -> set[str]:
    dump = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", _CHILD, *argv, str(dump)], check=True,
                   cwd=Path(__file__).resolve().parents[2])
    return set(json.loads(dump.read_text()))


def test_design_command_imports_only_what_it_uses(tmp_path: Path):
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = write_spec(tmp_path)
    run_study(spec, tmp_path / "out", stages=("extract",))
    loaded = _modules_of(tmp_path, "design", str(spec), "--out", str(tmp_path / "out"), "-q")
    assert (tmp_path / "out" / outdir.COHORT).is_file()  # the design did run (and drew)
    assert "matching.figures" in loaded
    assert not [m for m in _NOT_FOR_DESIGN if m in loaded]


def test_analyze_loads_what_design_leaves_out(tmp_path: Path):
    """The guard above can fail: the same probe sees the modules when a stage uses them."""
    shutil.copy(CSV, tmp_path / "data.csv")
    spec = write_spec(tmp_path)
    run_study(spec, tmp_path / "out", stages=("extract", "design"))
    loaded = _modules_of(tmp_path, "analyze", str(spec), "--out", str(tmp_path / "out"), "-q")
    assert {"reports.analysis", "reports.bootstrap", "scipy.stats"} <= loaded


def test_write_cohort_float_match_ids_as_before(tmp_path: Path):
    """Matchers give float ids (1.0, NaN): the text stays ``astype("string")``'s ("1.0")."""
    frame = _cohort_like(500, 4)
    ids = np.where(frame["match_id"] != "", frame.index.to_numpy() % 97, np.nan).astype(float)
    ids[:4] = [-0.0, 0.0, -3.0, 2.0**52]
    frame["match_id"] = ids
    outdir.write_cohort(tmp_path, frame)
    expected = frame.copy()
    expected["match_id"] = pd.Series(ids).astype("string").where(~np.isnan(ids), "").to_numpy()
    assert (tmp_path / outdir.COHORT).read_bytes() == _pandas_bytes(expected, tmp_path / "o.csv")
    frame.loc[5, "match_id"] = 2.5  # not a whole number: the general path, same text
    outdir.write_cohort(tmp_path, frame)
    expected.loc[5, "match_id"] = "2.5"
    assert (tmp_path / outdir.COHORT).read_bytes() == _pandas_bytes(expected, tmp_path / "o.csv")
