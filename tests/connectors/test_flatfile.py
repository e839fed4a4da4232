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


# -- hostile files (issue 20) ------------------------------------------------------------------


def test_nul_inside_a_cell_is_an_error_not_a_truncation(tmp_path):
    path = _small(tmp_path, {(1, "histology"): "epith\x00elioid"})
    with pytest.raises(FlatFileError) as err:
        load_flat_file(path, **KW)
    assert str(err.value) == (f"{path}: column 'histology': control character U+0000 (NUL) at "
                              "position 6 of the value 'epith\\x00elioid' in row 2")


def test_control_character_in_a_parquet_cell_is_an_error(tmp_path):
    df = pd.read_csv(_small(tmp_path))
    df.loc[4, "histology"] = "epith\x1belioid"
    path = tmp_path / "small.parquet"
    df.to_parquet(path)
    with pytest.raises(FlatFileError, match=r"'histology': control character U\+001B \(ESCAPE\) "
                                            r"at position 6 .* in row 5"):
        load_flat_file(path, **KW)


def test_full_width_header_matches_after_nfkc(tmp_path):
    path = _small(tmp_path)
    expected = load_flat_file(path, **KW)
    df = pd.read_csv(path).rename(columns={"treated": "ｔｒｅａｔｅｄ", "age": "𝐚𝐠𝐞"})
    df.to_csv(path, index=False)
    assert "treated" in read_header(path) and "age" in read_header(path)
    pd.testing.assert_frame_equal(load_flat_file(path, **KW), expected)


def test_cyrillic_lookalike_header_is_reported_with_code_points(tmp_path):
    path = _small(tmp_path)
    pd.read_csv(path).rename(columns={"age": "аge"}).to_csv(path, index=False)  # Cyrillic a
    with pytest.raises(FlatFileError) as err:
        load_flat_file(path, **KW, covariates=["age", "ecog"])
    assert "missing column(s) age;" in str(err.value)
    assert "'аge' (non-ASCII U+0430 (CYRILLIC SMALL LETTER A))" in str(err.value)


@pytest.mark.slow
def test_many_mixed_type_columns_give_no_flood_of_warnings(tmp_path):
    """2,000 rows x 1,000 columns whose last value is text: pandas' chunked reader prints a
    4 kB DtypeWarning naming every column (3.4 MB for the issue's file); we read in one pass."""
    import warnings

    n_rows, n_cols = 2_000, 1_000
    path = tmp_path / "wide.csv"
    with path.open("w") as fh:
        fh.write("patient_id,treated,pfs_weeks,pfs_event," + ",".join(
            f"x{j}" for j in range(n_cols)) + "\n")
        for i in range(n_rows):
            value = "a" if i == n_rows - 1 else str(i)
            fh.write(f"P{i},{i % 2},10.0,1," + ",".join([value] * n_cols) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load_flat_file(path, **KW)
    assert frame.shape == (n_rows, 4 + n_cols)
    assert sum(len(str(w.message)) for w in caught) < 300, [str(w.message) for w in caught]


def test_reader_warnings_are_collected_into_one(tmp_path):
    import warnings

    from connectors.hostile import InputFileWarning, one_warning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with one_warning(tmp_path / "f.csv"):
            for j in range(50):
                warnings.warn(f"Columns ({j}) have mixed types" + " x" * 500,
                              pd.errors.DtypeWarning, stacklevel=1)
    assert len(caught) == 1 and caught[0].category is InputFileWarning
    message = str(caught[0].message)
    assert message.startswith(f"{tmp_path / 'f.csv'}: 50 warning(s) from the file reader "
                              "(DtypeWarning), the first: Columns (0) have mixed types")
    assert len(message) < 300


def test_unrelated_warnings_pass_through_unchanged(tmp_path):
    import warnings

    from connectors.hostile import one_warning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with one_warning(tmp_path / "f.csv"):
            warnings.warn("a socket was left open", ResourceWarning, stacklevel=1)
    assert [(w.category, str(w.message)) for w in caught] == [
        (ResourceWarning, "a socket was left open")]
