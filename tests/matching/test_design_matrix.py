"""Design matrix: coding of numeric/boolean/categorical covariates and missing-value policies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching import MatchingError, build_design_matrix


@pytest.fixture
def frame():
    return pd.DataFrame({
        "age": [60.0, 70.0, np.nan, 55.0, 65.0],
        "sex": ["F", "M", "F", None, "M"],
        "crs": [True, False, True, False, True],
        "histology": pd.Categorical(["epi", "bi", "epi", "epi", "bi"],
                                    categories=["epi", "bi", "sarc"]),
        "ecog": pd.array([0, 1, 1, None, 0], dtype="Int64"),
    })


def test_coding_reference_levels_and_booleans(frame):
    dm = build_design_matrix(frame.dropna(), ["age", "sex", "crs", "histology"])
    assert list(dm.model.columns) == ["age", "sex_M", "crs", "histology_bi"]
    assert list(dm.balance.columns) == ["age", "sex_F", "sex_M", "crs", "histology_epi",
                                        "histology_bi"]
    assert dm.reference_levels == {"sex": "F", "histology": "epi"}  # category order, not sorted
    assert dm.model["crs"].tolist() == [1.0, 0.0, 1.0]
    assert dm.binary["crs"] and dm.binary["sex_M"] and not dm.binary["age"]
    assert any("sarc" in n for n in dm.notes)  # empty level reported, not silently dropped


def test_missing_error_names_columns_and_counts(frame):
    with pytest.raises(MatchingError) as e:
        build_design_matrix(frame, ["age", "sex", "ecog", "crs"])
    msg = str(e.value)
    assert "age: 1 missing" in msg and "sex: 1 missing" in msg and "ecog: 1 missing" in msg
    assert "crs" not in msg


def test_missing_complete_case_counts_each_patient_once(frame):
    dm = build_design_matrix(frame, ["age", "sex", "ecog"], missing="complete_case")
    assert dm.included.tolist() == [True, True, False, False, True]
    # row 3 misses sex and ecog: counted once, under the first listed covariate
    assert dm.exclusions == {"missing age": 1, "missing sex": 1}
    assert len(dm.model) == 3


def test_missing_indicator(frame):
    dm = build_design_matrix(frame, ["age", "sex"], missing="indicator")
    assert dm.included.all()
    assert dm.model["age_missing"].tolist() == [0, 0, 1, 0, 0]
    assert dm.model["age"].iloc[2] == pytest.approx(np.mean([60, 70, 55, 65]))
    assert "sex_missing" in dm.balance.columns  # categorical: a "missing" level


def test_bad_covariates():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "x"]})
    with pytest.raises(MatchingError, match="not columns"):
        build_design_matrix(df, ["a", "zzz"])
    with pytest.raises(MatchingError, match="single value"):
        build_design_matrix(df, ["b"])
    with pytest.raises(MatchingError, match="missing must be one of"):
        build_design_matrix(df, ["a"], missing="drop")
    with pytest.raises(MatchingError, match="more than once"):
        build_design_matrix(df, ["a", "a"])


def test_input_frame_untouched(frame):
    before = frame.copy()
    build_design_matrix(frame, ["age", "sex", "ecog"], missing="indicator")
    pd.testing.assert_frame_equal(frame, before)
