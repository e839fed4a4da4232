"""Trial progression interval from ADRS visits / the protocol schedule; flat file column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectors import columns as cn
from connectors.flatfile import FlatFileError, load_flat_progression_interval
from connectors.progression import (
    ProgressionIntervalError,
    adrs_progression_interval,
    schedule_progression_interval,
)


def _arm() -> pd.DataFrame:
    return pd.DataFrame({
        cn.PATIENT_ID: ["S1", "S2", "S3", "S4"],
        cn.INDEX_DATE: pd.to_datetime(["2023-01-01"] * 4),
        cn.PFS_DAYS: [84.0, 126.0, 50.0, 0.0],
        cn.PFS_EVENT: [1, 0, 1, 0],
        cn.PFS_DEATH: [False, False, True, False],
        "death_days": [200.0, np.nan, 50.0, np.nan],
    })


def _adrs(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["USUBJID", "PARAMCD", "AVALC", "ADT"])


def _visits():
    d0 = pd.Timestamp("2023-01-01")
    return [
        ("S1", "OVR", "SD", d0 + pd.Timedelta(days=42)),
        ("S1", "OVR", "PD", d0 + pd.Timedelta(days=84)),
        ("S1", "BOR", "SD", d0 + pd.Timedelta(days=90)),  # other PARAMCD: ignored
        ("S2", "OVR", "PR", d0 + pd.Timedelta(days=40)),
        ("S2", "OVR", "SD", d0 + pd.Timedelta(days=85)),
        ("S2", "OVR", "SD", d0 + pd.Timedelta(days=126)),
        ("S3", "OVR", "SD", d0 + pd.Timedelta(days=44)),
    ]


def test_adrs_interval():
    out = adrs_progression_interval(_adrs(_visits()), _arm(), source="adrs.csv")
    assert out[cn.PFS_LAST_PF_DAYS].tolist() == [42.0, 126.0, 44.0, 0.0]
    assert out[cn.PFS_N_ASSESSMENTS].tolist() == [2, 3, 1, 0]
    np.testing.assert_allclose(out[cn.PFS_MEAN_GAP_DAYS], [42.0, 42.0, 44.0, np.nan])
    assert out[cn.PFS_DEATH].tolist() == [False, False, True, False]


def test_adrs_unknown_subject_names_file_row_column():
    rows = [*_visits(), ("S9", "OVR", "SD", pd.Timestamp("2023-02-01"))]
    with pytest.raises(ProgressionIntervalError,
                       match=r"adrs.csv, row\(s\) 9, column USUBJID: .*'S9'"):
        adrs_progression_interval(_adrs(rows), _arm(), source="adrs.csv")


def test_adrs_assessment_after_death():
    rows = [*_visits(), ("S3", "OVR", "SD", pd.Timestamp("2023-03-15"))]
    with pytest.raises(ProgressionIntervalError,
                       match=r"adrs.csv, row\(s\) 9, column ADT: assessment after the "
                             r"subject's death"):
        adrs_progression_interval(_adrs(rows), _arm(), source="adrs.csv")


def test_adrs_missing_date():
    rows = [*_visits(), ("S2", "OVR", "SD", None)]
    with pytest.raises(ProgressionIntervalError, match=r"row\(s\) 9, column ADT: missing"):
        adrs_progression_interval(_adrs(rows), _arm(), source="adrs.csv")


def test_schedule_interval():
    out = schedule_progression_interval(_arm(), 42.0)
    # S1: progression on day 84 (a visit) -> last visit before is 42; S2 censored keeps 126
    assert out[cn.PFS_LAST_PF_DAYS].tolist() == [42.0, 126.0, 42.0, 0.0]
    assert out[cn.PFS_N_ASSESSMENTS].tolist() == [2, 3, 1, 0]
    # visits within their window: day 87 and day 81 are visit 2 (after visit 1 at 42); day 100
    # is off schedule (clinical), after visit 2 at 84; day 3 has no visit before
    arm = _arm().assign(**{cn.PFS_DAYS: [87.0, 81.0, 100.0, 3.0], cn.PFS_EVENT: [1, 1, 1, 1],
                           cn.PFS_DEATH: False})
    out = schedule_progression_interval(arm, 42.0)
    assert out[cn.PFS_LAST_PF_DAYS].tolist() == [42.0, 42.0, 84.0, 0.0]


def test_flat_file_column(tmp_path):
    p = tmp_path / "a.csv"
    pd.DataFrame({"id": [1, 2, 3], "t": [12.0, 8.0, 20.0], "e": [1, 1, 0],
                  "lpf": [6.0, 8.0, 20.0]}).to_csv(p, index=False)
    out = load_flat_progression_interval(p, id_col="id", time_col="t", event_col="e",
                                         last_pf_col="lpf", time_unit="weeks")
    assert out[cn.PFS_LAST_PF_DAYS].tolist() == [42.0, 56.0, 140.0]
    assert out[cn.PFS_DEATH].tolist() == [False, True, False]


def test_flat_file_left_after_time_names_file_row_column(tmp_path):
    p = tmp_path / "a.csv"
    pd.DataFrame({"id": [1, 2], "t": [12.0, 8.0], "e": [1, 1], "lpf": [6.0, 9.0]}).to_csv(
        p, index=False)
    with pytest.raises(FlatFileError, match=r"a.csv: column 'lpf': .*after the 't' time in "
                                            r"row\(s\) 2"):
        load_flat_progression_interval(p, id_col="id", time_col="t", event_col="e",
                                       last_pf_col="lpf")


def _adrs_file(tmp_path, rows):
    from connectors.adrs import read_adrs

    p = tmp_path / "adrs.csv"
    frame = _adrs(rows)
    frame["ADT"] = pd.to_datetime(frame["ADT"]).dt.strftime("%Y-%m-%d")
    frame.to_csv(p, index=False)
    return read_adrs(p)


@pytest.mark.parametrize(("extra", "column", "what"), [
    (("S9", "OVR", "SD", pd.Timestamp("2023-02-01")), "USUBJID", "not in the trial arm"),
    (("S3", "OVR", "SD", pd.Timestamp("2023-03-15")), "ADT", "after the subject's death"),
    (("S1", "OVR", "SD", pd.Timestamp("2023-04-01")), "AVALC", "on or after the subject's PFS"),
])
def test_adrs_file_errors_name_file_row_column(tmp_path, extra, column, what):
    """Read through `read_adrs`: the message names the file, its row (header = row 1) and
    the column, for an unknown subject, a visit after death, a PF visit after the PD."""
    adrs = _adrs_file(tmp_path, [*_visits(), extra])
    with pytest.raises(ProgressionIntervalError) as info:
        adrs_progression_interval(adrs, _arm())
    msg = str(info.value)
    assert f"{tmp_path / 'adrs.csv'}, row 9, column {column}:" in msg and what in msg


def test_adrs_file_interval_equals_frame_interval(tmp_path):
    adrs = _adrs_file(tmp_path, _visits())
    pd.testing.assert_frame_equal(adrs_progression_interval(adrs, _arm()),
                                  adrs_progression_interval(_adrs(_visits()), _arm()))
