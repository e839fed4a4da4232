"""Attrition on a DataFrame: one row per step, counts chain, missing counted apart."""

import numpy as np
import pandas as pd
import pytest

from connectors.attrition import ATTRITION_COLUMNS, Attrition, apply_criteria_to_frame
from connectors.errors import CriterionError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(8)],
            "age_at_index": [17, 40, 55, np.nan, 61, 70, 80, 33.0],
            "ecog_at_index": pd.array([0, 2, None, 1, 1, 0, 1, None], dtype="Int64"),
            "prior_immunotherapy": [False, False, False, False, True, False, None, False],
            "pfs_days": [1.0] * 8,
        }
    )


def test_rows_counts_and_reasons_by_hand(tmp_path):
    kept, att = apply_criteria_to_frame(
        _frame(),
        ["age_at_index >= 18", "ecog_at_index <= 1", "not prior_immunotherapy"],
    )
    # by hand: P0 age 17 fails; P3 age missing; then P1 ecog 2 fails, P2 and P7 ecog missing;
    # then P4 prior IO fails, P6 IO missing; kept P5.
    expected = pd.DataFrame(
        [
            (1, "input rows", 8, 0, ""),
            (2, "age_at_index >= 18", 7, 1, "fails criterion"),
            (3, "age_at_index >= 18", 6, 1, "missing age_at_index"),
            (4, "ecog_at_index <= 1", 5, 1, "fails criterion"),
            (5, "ecog_at_index <= 1", 3, 2, "missing ecog_at_index"),
            (6, "not prior_immunotherapy", 2, 1, "fails criterion"),
            (7, "not prior_immunotherapy", 1, 1, "missing prior_immunotherapy"),
            (8, "final", 1, 0, ""),
        ],
        columns=list(ATTRITION_COLUMNS),
    )
    pd.testing.assert_frame_equal(att.table, expected)
    assert kept["patient_id"].tolist() == ["P5"]
    assert att.n_start == 8 and att.n_final == 1 and att.unit == "rows"
    att.to_csv(tmp_path / "a.csv")
    back = pd.read_csv(tmp_path / "a.csv", keep_default_na=False)
    assert list(back.columns) == list(ATTRITION_COLUMNS)
    assert back["n_excluded"].sum() == 7


def test_counts_chain_and_nothing_is_dropped_silently():
    frame = _frame()
    kept, att = apply_criteria_to_frame(frame, ["ecog_at_index <= 1", "age_at_index > 30"])
    t = att.table
    previous = t["n_remaining"].shift(1).fillna(len(frame))
    assert (previous - t["n_excluded"] == t["n_remaining"]).all()
    assert att.n_start - att.table["n_excluded"].sum() == len(kept)


def test_no_criteria_keeps_everything():
    kept, att = apply_criteria_to_frame(_frame(), [])
    assert len(kept) == 8 and att.table["criterion"].tolist() == ["input rows", "final"]


def test_outcome_columns_cannot_be_used():
    with pytest.raises(CriterionError, match="unknown column 'pfs_days'"):
        apply_criteria_to_frame(_frame(), ["pfs_days > 0"])


def test_attrition_is_frozen_and_serialisable():
    _, att = apply_criteria_to_frame(_frame(), ["age_at_index >= 18"])
    assert isinstance(att, Attrition)
    with pytest.raises(AttributeError):
        att.unit = "x"
    d = att.to_dict()
    assert d["unit"] == "rows" and d["steps"][1]["n_excluded"] == 1
