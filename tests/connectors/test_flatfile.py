"""Flat analysis file source: column mapping, unit conversion, outcome-blind reads, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors import columns as cn
from connectors.flatfile import FlatFileError, load_flat_file, load_flat_outcomes, read_header

CSV = Path(__file__).resolve().parents[1] / "fixtures" / "pm_external_control_a" / \
    "pm_external_control_a.csv"
KW = dict(id_col="patient_id", arm_col="treated", trial_value=1, time_col="pfs_weeks",
          event_col="pfs_event", time_unit="weeks")


def _small(tmp_path: Path, changes: dict | None = None) -> Path:
    df = pd.read_csv(CSV).iloc[[0, 1, 2, 100, 101, 102]].reset_index(drop=True).astype(object)
    for (row, col), value in (changes or {}).items():
        df.loc[row, col] = value
    path = tmp_path / "small.csv"
    df.to_csv(path, index=False)
    return path


def test_maps_columns_and_converts_weeks_to_days():
    raw = pd.read_csv(CSV)
    frame = load_flat_file(CSV, **KW)
    assert len(frame) == len(raw)
    assert frame[cn.PATIENT_ID].tolist() == raw["patient_id"].astype(str).tolist()
    assert (frame[cn.ARM] == cn.TRIAL).sum() == (raw["treated"] == 1).sum() == 60
    np.testing.assert_allclose(frame[cn.PFS_DAYS], raw["pfs_weeks"] * 7.0)
    assert frame[cn.PFS_EVENT].tolist() == raw["pfs_event"].tolist()
    for cov in ("age", "female", "ecog", "histology", "pci", "crs_hipec", "pfi_months"):
        assert cov in frame.columns
    assert "treated" not in frame.columns and "pfs_weeks" not in frame.columns


def test_parquet_gives_the_same_frame(tmp_path: Path):
    pq = tmp_path / "a.parquet"
    pd.read_csv(CSV).to_parquet(pq, index=False)
    pd.testing.assert_frame_equal(load_flat_file(pq, **KW), load_flat_file(CSV, **KW))
    assert read_header(pq) == read_header(CSV)


def test_outcome_blind_read_never_parses_outcome_columns(tmp_path: Path):
    # garbage in the outcome columns: an outcome-blind read must not notice
    path = _small(tmp_path, {(0, "pfs_weeks"): "not a number", (1, "pfs_event"): 7})
    frame = load_flat_file(path, **KW, include_outcomes=False)
    assert not set(cn.OUTCOME_COLUMNS) & set(frame.columns)
    assert len(frame) == 6
    with pytest.raises(FlatFileError, match=r"small.csv: column 'pfs_weeks': .*row\(s\) 1\b"):
        load_flat_file(path, **KW)


def test_outcome_blind_read_works_without_outcome_columns(tmp_path: Path):
    path = tmp_path / "blind.csv"
    pd.read_csv(CSV).drop(columns=["pfs_weeks", "pfs_event"]).to_csv(path, index=False)
    assert len(load_flat_file(path, **KW, include_outcomes=False)) == 960


def test_outcomes_only(tmp_path: Path):
    out = load_flat_outcomes(CSV, id_col="patient_id", time_col="pfs_weeks",
                             event_col="pfs_event", time_unit="weeks")
    assert list(out.columns) == [cn.PATIENT_ID, cn.PFS_DAYS, cn.PFS_EVENT]
    assert out[cn.PFS_DAYS].iloc[0] == pytest.approx(59.84 * 7)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({(2, "patient_id"): "T0000"}, r"column 'patient_id': patient ids are not unique "
                                       r"\(row\(s\) 1, 3\)"),
        ({(4, "pfs_event"): 2}, r"column 'pfs_event': event must be 0 .* found '2' in row\(s\) 5"),
        ({(3, "pfs_weeks"): -1.0}, r"column 'pfs_weeks': negative time in row\(s\) 4"),
        ({(5, "treated"): np.nan}, r"column 'treated': missing arm in row\(s\) 6"),
    ],
)
def test_bad_values_name_file_row_and_column(tmp_path: Path, changes, pattern):
    with pytest.raises(FlatFileError, match=pattern):
        load_flat_file(_small(tmp_path, changes), **KW)


def test_missing_column_and_missing_file(tmp_path: Path):
    with pytest.raises(FlatFileError, match=r"missing column\(s\) pfs_months"):
        load_flat_file(CSV, **{**KW, "time_col": "pfs_months"})
    with pytest.raises(FlatFileError, match="not found"):
        load_flat_file(tmp_path / "nope.csv", **KW)


def test_no_trial_rows_is_an_error():
    with pytest.raises(FlatFileError, match=r"no row has the trial value 2"):
        load_flat_file(CSV, **{**KW, "trial_value": 2})
