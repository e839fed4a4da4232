"""connectors.adrs: ADaM ADRS loader (CSV and XPT) and the trial arm's objective response."""

import pandas as pd
import pytest

from connectors.adrs import read_adrs, trial_response
from connectors.errors import TrialDataError
from connectors.response import ResponseRule

from .xport_writer import write_xport

SUBJECTS = pd.DataFrame(
    {"patient_id": ["S1", "S2", "S3"], "index_date": pd.to_datetime(["2024-01-01"] * 3)}
)
ROWS = [
    # S1: confirmed PR (day 56, day 84); baseline record on day 0 ignored
    ("S1", "OVR", "SD", "2024-01-01"),
    ("S1", "OVR", "PR", "2024-02-26"),
    ("S1", "OVR", "PR", "2024-03-25"),
    ("S1", "BOR", "PR", ""),
    # S2: PR then PD (unconfirmed)
    ("S2", "OVR", "PR", "2024-02-26"),
    ("S2", "OVR", "PD", "2024-04-22"),
    ("S2", "BOR", "SD", ""),
    # S3: no record at all; plus an unrelated parameter
    ("S1", "CLINBEN", "Y", ""),
]


def _write(tmp_path, rows=ROWS, kind="csv"):
    frame = pd.DataFrame(rows, columns=["USUBJID", "PARAMCD", "AVALC", "ADT"])
    path = tmp_path / f"adrs.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        dates = pd.to_datetime(frame["ADT"].replace("", None))
        frame["ADT"] = (dates - pd.Timestamp("1960-01-01")).dt.days.astype("float")
        write_xport(frame, path, "ADRS")
    return path


@pytest.mark.parametrize("kind", ["csv", "xpt"])
def test_read_adrs_keeps_every_parameter(tmp_path, kind):
    adrs = read_adrs(_write(tmp_path, kind=kind))
    assert list(adrs.columns) == ["USUBJID", "PARAMCD", "AVALC", "ADT"]
    assert len(adrs) == len(ROWS)
    assert adrs.loc[1, "ADT"] == pd.Timestamp("2024-02-26")
    assert pd.isna(adrs.loc[3, "ADT"])


@pytest.mark.parametrize("kind", ["csv", "xpt"])
def test_trial_response_from_ovr_and_bor(tmp_path, kind):
    adrs = read_adrs(_write(tmp_path, kind=kind))
    ovr = trial_response(adrs, SUBJECTS).set_index("patient_id")
    assert ovr["response"].tolist() == [1, 0, 0]
    assert ovr["best_response"].tolist() == ["PR", "SD", "NE"]
    assert ovr.loc["S1", "days_to_response"] == 56
    assert not ovr.loc["S3", "assessed"]
    loose = trial_response(adrs, SUBJECTS, ResponseRule(confirmed=False))
    assert loose["response"].tolist() == [1, 1, 0]
    bor = trial_response(adrs, SUBJECTS, paramcd="BOR").set_index("patient_id")
    assert bor["response"].tolist() == [1, 0, 0]
    assert bor.loc["S3", "best_response"] == "NE" and not bor.loc["S3", "assessed"]


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([("S1", "OVR", "XX", "2024-02-26")], r"row 2, column AVALC: OVR response must be"),
        ([("S1", "OVR", "PR", "")], r"row 2, column ADT: missing date"),
        ([("S1", "OVR", "PR", "26/02/2024x")], r"row 2, column ADT: expected a date"),
        ([("", "OVR", "PR", "2024-02-26")], r"row 2, column USUBJID: missing value"),
        ([("S1", "BOR", "PR", ""), ("S1", "BOR", "CR", "")], r"row 3, column USUBJID: second BOR"),
    ],
)
def test_read_adrs_errors_name_file_row_column(tmp_path, rows, match):
    path = _write(tmp_path, rows)
    with pytest.raises(TrialDataError, match=match) as err:
        read_adrs(path)
    assert str(path) in str(err.value)


def test_missing_variable_and_unknown_subject(tmp_path):
    path = tmp_path / "adrs.csv"
    pd.DataFrame({"USUBJID": ["S1"], "PARAMCD": ["OVR"]}).to_csv(path, index=False)
    with pytest.raises(TrialDataError, match=r"missing required variables \['AVALC'\]"):
        read_adrs(path)
    adrs = read_adrs(_write(tmp_path, [*ROWS, ("S9", "OVR", "PR", "2024-02-26")]))
    with pytest.raises(TrialDataError, match=r"row 10, column USUBJID: subject 'S9' is not"):
        trial_response(adrs, SUBJECTS)
    with pytest.raises(TrialDataError, match="no records with PARAMCD 'BOR'"):
        trial_response(read_adrs(_write(tmp_path, ROWS[:3])), SUBJECTS, paramcd="BOR")
