"""ADaM ADSL + ADTTE loading (CSV and XPT) and every validation, with file/row/column."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors import columns as cn
from connectors.errors import TrialDataError
from connectors.trial import load_trial_arm

from .xport_writer import write_xport


def _adsl() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "STUDYID": "S1",
            "USUBJID": ["S1-001", "S1-002", "S1-003", "S1-004"],
            "SITEID": ["C01", "C02", "C01", "C03"],
            "AGE": [55, 61, 70, 48],
            "SEX": ["F", "M", "M", "F"],
            "TRTSDT": ["2022-01-10", "2022-03-05", "2022-06-30", "2023-01-02"],
            "ECOGBL": [0, 1, 1, 0],
            "HISTGR": ["epithelioid", "biphasic", "Epithelioid", "epithelioid"],
            "PCIBL": [12, 20, 5, 0],
            "PRCRS": ["Y", "N", "Y", "N"],
            "CRSHIPEC": ["Y", "N", "N", "N"],
            "PFIMO": [8.5, 3.25, 12.0, 0.0],
            "PRLINES": [1, 1, 2, 1],
            "PRIOIO": ["N", "N", "N", "N"],
            "DIAGMO": [20.1, 14.0, 33.3, 9.9],
            "KI67BL": [8.0, None, 15.5, 0.0],
            "BAP1BL": ["lost", "retained", None, "lost"],
            "ITTFL": ["Y", "Y", "Y", "N"],
        }
    )


def _adtte() -> pd.DataFrame:
    rows = []
    for sid, pfs, pcn, os_, ocn in [
        ("S1-001", 168, 0, 400, 1), ("S1-002", 84, 1, 300, 0),
        ("S1-003", 0, 1, 0, 1), ("S1-004", 42, 0, 90, 0),
    ]:
        rows.append(("S1", sid, "OS", "Overall survival", os_, "DAYS", ocn))
        rows.append(("S1", sid, "PFS", "Progression-free survival", pfs, "DAYS", pcn))
    return pd.DataFrame(rows, columns=["STUDYID", "USUBJID", "PARAMCD", "PARAM", "AVAL",
                                       "AVALU", "CNSR"])


def _write(tmp_path: Path, adsl=None, adtte=None, ext="csv") -> tuple[Path, Path]:
    adsl = _adsl() if adsl is None else adsl
    adtte = _adtte() if adtte is None else adtte
    a, t = tmp_path / f"adsl.{ext}", tmp_path / f"adtte.{ext}"
    if ext == "csv":
        adsl.to_csv(a, index=False)
        adtte.to_csv(t, index=False)
    else:
        write_xport(adsl, a, "ADSL")
        write_xport(adtte, t, "ADTTE")
    return a, t


def test_csv_loads_the_itt_subjects_with_both_endpoints(tmp_path):
    frame = load_trial_arm(*_write(tmp_path))
    assert frame[cn.PATIENT_ID].tolist() == ["S1-001", "S1-002", "S1-003"]  # S1-004 not ITT
    assert frame.attrs["n_not_itt"] == 1 and frame.attrs["absent_variables"] == []
    assert (frame[cn.ARM] == cn.TRIAL).all() and frame[cn.LINE_ID].isna().all()
    assert frame[cn.INDEX_DATE].tolist() == list(pd.to_datetime(
        ["2022-01-10", "2022-03-05", "2022-06-30"]))
    assert frame[cn.HISTOLOGY].tolist() == ["epithelioid", "biphasic", "epithelioid"]
    assert frame[cn.PRIOR_CRS].tolist() == [True, False, True]
    assert frame[cn.PRIOR_CRS].dtype == bool
    assert str(frame[cn.ECOG].dtype) == "Int64" and frame[cn.ECOG].tolist() == [0, 1, 1]
    assert np.isnan(frame[cn.KI67].iloc[1]) and frame[cn.BAP1].iloc[2] is None
    # CNSR 0 = event
    assert frame[cn.PFS_DAYS].tolist() == [168.0, 84.0, 0.0]
    assert frame[cn.PFS_EVENT].tolist() == [1, 0, 0]
    assert frame[cn.OS_DAYS].tolist() == [400.0, 300.0, 0.0]
    assert frame[cn.OS_EVENT].tolist() == [0, 1, 0]
    for col in cn.COVARIATE_COLUMNS:
        assert col in frame.columns


def test_xpt_round_trip_equals_csv(tmp_path):
    adsl = _adsl()
    # in XPT, dates are SAS date numbers (days since 1960-01-01)
    adsl["TRTSDT"] = (pd.to_datetime(adsl["TRTSDT"]) - pd.Timestamp("1960-01-01")).dt.days
    (tmp_path / "x").mkdir()
    from_xpt = load_trial_arm(*_write(tmp_path / "x", adsl=adsl, ext="xpt"))
    from_csv = load_trial_arm(*_write(tmp_path))
    pd.testing.assert_frame_equal(from_xpt, from_csv)
    assert from_xpt[cn.PFI_MONTHS].iloc[0] == 8.5 and from_xpt[cn.PFS_EVENT].iloc[0] == 1


def test_xpt_errors_name_the_record(tmp_path):
    adtte = _adtte()
    adtte.loc[5, "CNSR"] = 2
    with pytest.raises(TrialDataError, match=r"adtte\.xpt, record 6, column CNSR"):
        load_trial_arm(*_write(tmp_path, adtte=adtte, ext="xpt"))


def test_paramcd_and_units(tmp_path):
    adtte = _adtte()
    adtte["PARAMCD"] = adtte["PARAMCD"].replace("PFS", "PFSINV")
    adtte.loc[adtte["PARAMCD"] == "PFSINV", "AVALU"] = "WEEKS"
    frame = load_trial_arm(*_write(tmp_path, adtte=adtte), paramcd="PFSINV")
    assert frame[cn.PFS_DAYS].tolist() == [168.0 * 7, 84.0 * 7, 0.0]
    only_os = load_trial_arm(*_write(tmp_path, adtte=adtte), paramcd="OS")
    assert cn.PFS_DAYS not in only_os.columns and only_os[cn.OS_DAYS].iloc[0] == 400.0


def test_variable_map_and_exact_age_from_birth_date(tmp_path):
    adsl = _adsl().rename(columns={"ECOGBL": "ECOG0"})
    adsl["BRTHDT"] = ["1966-07-01", "1960-03-05", "1952-01-01", "1975-01-01"]
    frame = load_trial_arm(*_write(tmp_path, adsl=adsl), variable_map={cn.ECOG: "ECOG0"})
    assert frame[cn.ECOG].tolist() == [0, 1, 1]
    days = (pd.Timestamp("2022-01-10") - pd.Timestamp("1966-07-01")).days
    assert frame[cn.AGE].iloc[0] == days / 365.25
    without = load_trial_arm(*_write(tmp_path, adsl=adsl.drop(columns="ECOG0")))
    assert without.attrs["absent_variables"] == ["ECOGBL"] and without[cn.ECOG].isna().all()


def _broken(col, row, value, table="adsl"):
    def edit(adsl, adtte):
        frame = adsl if table == "adsl" else adtte
        frame.loc[row, col] = value
    return edit


CASES = [
    # (edit, file, message regex) -- CSV rows: header is row 1, so data index i is row i + 2
    (lambda a, t: a.drop(columns="USUBJID", inplace=True), "adsl.csv",
     r"missing required variables \['USUBJID'\]"),
    (lambda a, t: a.drop(columns="TRTSDT", inplace=True), "adsl.csv",
     r"missing required variables \['TRTSDT'\]"),
    (lambda a, t: t.drop(columns="CNSR", inplace=True), "adtte.csv",
     r"missing required variables \['CNSR'\]"),
    (_broken("USUBJID", 2, "S1-001"), "adsl.csv",
     r"row 4, column USUBJID: duplicate subject 'S1-001' \(first at row 2\)"),
    (_broken("USUBJID", 1, ""), "adsl.csv", r"row 3, column USUBJID: missing value"),
    (_broken("TRTSDT", 0, "2022-13-45"), "adsl.csv", r"row 2, column TRTSDT: expected a date"),
    (_broken("TRTSDT", 0, ""), "adsl.csv", r"row 2, column TRTSDT: missing value"),
    (_broken("PRCRS", 1, "Yes"), "adsl.csv", r"row 3, column PRCRS: expected Y or N, got 'Yes'"),
    (_broken("ITTFL", 0, "X"), "adsl.csv", r"row 2, column ITTFL: expected Y or N"),
    (_broken("SEX", 3, "U"), "adsl.csv", r"row 5, column SEX: expected F or M"),
    (_broken("ECOGBL", 0, 7), "adsl.csv", r"row 2, column ECOGBL: expected an ECOG score"),
    (_broken("ECOGBL", 0, 1.5), "adsl.csv", r"row 2, column ECOGBL: expected an ECOG score"),
    (_broken("PCIBL", 0, 40), "adsl.csv", r"column PCIBL: expected a Peritoneal Cancer Index"),
    (_broken("HISTGR", 0, "mixed"), "adsl.csv", r"column HISTGR: expected one of epithelioid"),
    (_broken("KI67BL", 0, "high"), "adsl.csv", r"row 2, column KI67BL: expected a percentage"),
    (_broken("CNSR", 3, 2, "adtte"), "adtte.csv",
     r"row 5, column CNSR: expected 0 \(event\) or 1 \(censored\), got '2'"),
    (_broken("CNSR", 3, "", "adtte"), "adtte.csv", r"row 5, column CNSR: missing value"),
    (_broken("AVAL", 0, -3, "adtte"), "adtte.csv", r"row 2, column AVAL: expected a time >= 0"),
    (_broken("AVAL", 0, "abc", "adtte"), "adtte.csv",
     r"row 2, column AVAL: expected a time >= 0, got 'abc'"),
    (_broken("AVAL", 0, "inf", "adtte"), "adtte.csv", r"row 2, column AVAL"),
    (_broken("AVALU", 0, "FORTNIGHTS", "adtte"), "adtte.csv", r"row 2, column AVALU"),
    (_broken("USUBJID", 6, "S1-999", "adtte"), "adtte.csv",
     r"row 8, column USUBJID: subject 'S1-999' is not in ADSL"),
    (_broken("USUBJID", 3, "S1-001", "adtte"), "adtte.csv",
     r"row 5, column USUBJID: second PFS record for subject 'S1-001'"),
    (lambda a, t: t.drop(index=[3], inplace=True), "adtte.csv",
     r"column PARAMCD: no PFS record for subject\(s\) \['S1-002'\]"),
    (lambda a, t: t.__setitem__("PARAMCD", "OS"), "adtte.csv",
     r"no records with PARAMCD 'PFS'"),
]


@pytest.mark.parametrize(("edit", "filename", "pattern"), CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_malformed_files_name_file_row_and_column(tmp_path, edit, filename, pattern):
    adsl, adtte = _adsl().astype(object), _adtte().astype(object)
    edit(adsl, adtte)
    paths = _write(tmp_path, adsl=adsl, adtte=adtte)
    with pytest.raises(TrialDataError, match=pattern) as err:
        load_trial_arm(*paths)
    assert str(err.value).startswith(str(tmp_path / filename))


def test_file_level_errors(tmp_path):
    a, t = _write(tmp_path)
    with pytest.raises(TrialDataError, match="no such file"):
        load_trial_arm(tmp_path / "nope.csv", t)
    odd = tmp_path / "adsl.sas7bdat"
    odd.write_bytes(b"x")
    with pytest.raises(TrialDataError, match=r"unknown file type '\.sas7bdat'"):
        load_trial_arm(odd, t)
    bad_xpt = tmp_path / "bad.xpt"
    bad_xpt.write_bytes(b"not an xport file" * 10)
    with pytest.raises(TrialDataError, match="cannot be read as XPT"):
        load_trial_arm(bad_xpt, t)
    with pytest.raises(TrialDataError, match="unknown analysis column 'ecog'"):
        load_trial_arm(a, t, variable_map={"ecog": "ECOGBL"})


# -- hostile and damaged files (issue 20) -----------------------------------------------------


def test_nul_inside_a_csv_cell_is_an_error_naming_row_and_column(tmp_path):
    a, t = _write(tmp_path)
    a.write_bytes(a.read_bytes().replace(b"biphasic", b"bip\x00hasic"))
    with pytest.raises(TrialDataError) as err:
        load_trial_arm(a, t)
    msg = str(err.value)
    assert msg == (f"{a}, row 3, column HISTGR: control character U+0000 (NUL) at position 4 "
                   "of the value 'bip\\x00hasic'")


@pytest.mark.parametrize("char", ["\x01", "\x1b", "\x7f", "\n", "\u0085"])
def test_control_characters_inside_csv_cells_are_errors(tmp_path, char):
    adsl = _adsl()
    adsl.loc[1, "SITEID"] = f"C{char}02"
    a, t = _write(tmp_path, adsl=adsl)
    with pytest.raises(TrialDataError, match=r"row 3, column SITEID: control character U\+"):
        load_trial_arm(a, t)


def test_control_character_in_xpt_text_is_an_error(tmp_path):
    adtte = _adtte()
    adtte.loc[2, "PARAMCD"] = "P\x00FS"
    a, t = _write(tmp_path, adtte=adtte, ext="xpt")
    with pytest.raises(TrialDataError, match=r"adtte\.xpt, record 3, column PARAMCD: control"):
        load_trial_arm(a, t)


@pytest.mark.parametrize("name", ["ＵＳＵＢＪＩＤ", "𝐔𝐒𝐔𝐁𝐉𝐈𝐃"])
def test_full_width_and_bold_names_match_after_nfkc(tmp_path, name):
    (tmp_path / "plain").mkdir()
    expected = load_trial_arm(*_write(tmp_path / "plain"))
    got = load_trial_arm(*_write(tmp_path, adsl=_adsl().rename(columns={"USUBJID": name})))
    pd.testing.assert_frame_equal(got, expected)


def test_cyrillic_lookalike_name_is_reported_with_code_points(tmp_path):
    adsl = _adsl().rename(columns={"USUBJID": "USUВJID"})  # Cyrillic VE
    with pytest.raises(TrialDataError) as err:
        load_trial_arm(*_write(tmp_path, adsl=adsl))
    msg = str(err.value)
    assert "missing required variables ['USUBJID']" in msg
    assert "'USUВJID' (non-ASCII U+0412 (CYRILLIC CAPITAL LETTER VE))" in msg


def test_cyrillic_lookalike_of_a_covariate_is_not_taken_as_absent(tmp_path):
    adsl = _adsl().rename(columns={"AGE": "АGE"})  # Cyrillic A
    with pytest.raises(TrialDataError, match=r"variable AGE not found.*U\+0410"):
        load_trial_arm(*_write(tmp_path, adsl=adsl))


def test_two_columns_equal_after_nfkc_are_an_error(tmp_path):
    adsl = _adsl()
    adsl["ＡＧＥ"] = adsl["AGE"]
    with pytest.raises(TrialDataError, match="'AGE' and 'ＡＧＥ' are the same name"):
        load_trial_arm(*_write(tmp_path, adsl=adsl))


def _records(path: Path) -> tuple[bytes, int]:
    """File bytes and the offset where observations start (after the OBS header)."""
    raw = path.read_bytes()
    return raw, raw.index(b"HEADER RECORD*******OBS") + 80


@pytest.mark.parametrize("cut", ["mid_record", "mid_observation_80_boundary"])
def test_truncated_adsl_xpt_is_blamed_on_adsl(tmp_path, cut):
    a, t = _write(tmp_path, ext="xpt")
    raw, start = _records(a)
    if cut == "mid_record":
        a.write_bytes(raw[: len(raw) - 37])
    else:  # an 80-byte boundary inside the 4th observation: pandas reads 3, silently
        with pd.read_sas(a, format="xport", iterator=True) as reader:
            length = reader.record_length
        end = start + (3 * length + length // 2) // 80 * 80
        assert start + 3 * length < end < start + 4 * length
        a.write_bytes(raw[:end])
    with pytest.raises(TrialDataError) as err:
        load_trial_arm(a, t)
    assert str(err.value).startswith(f"{a}: truncated SAS XPORT file")
