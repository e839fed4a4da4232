"""connectors.biomarker: normalisation by N consecutive values below the ULN by a landmark."""

import numpy as np
import pandas as pd
import pytest

from connectors.biomarker import NormalisationRule, derive_normalisation
from connectors.errors import ConnectorError


def _labs(*rows):
    return pd.DataFrame(rows, columns=["key", "days", "analyte", "value", "unit", "uln"])


RULE = NormalisationRule("hCG", n_consecutive=3, landmark_days=168)


def test_consecutive_normal_values_by_the_landmark():
    labs = _labs(
        # A: 3 consecutive normal values (days 56, 84, 112) -> normalised from day 56
        ("A", 28, "hCG", 50, "IU/L", 5),
        ("A", 56, "hCG", 3, "IU/L", 5),
        ("A", 84, "hCG", 2, "IU/L", 5),
        ("A", 112, "hCG", 1, "IU/L", 5),
        # B: interrupted by a rise -> not normalised
        ("B", 28, "hCG", 3, "IU/L", 5),
        ("B", 56, "hCG", 2, "IU/L", 5),
        ("B", 84, "hCG", 9, "IU/L", 5),
        ("B", 112, "hCG", 1, "IU/L", 5),
        # C: third normal value after the landmark -> not normalised by it
        ("C", 120, "hCG", 1, "IU/L", 5),
        ("C", 150, "hCG", 1, "IU/L", 5),
        ("C", 190, "hCG", 1, "IU/L", 5),
        # D: only another analyte and a baseline value -> unmeasured
        ("D", 30, "AFP", 1, "ng/mL", 10),
        ("D", 0, "hCG", 1, "IU/L", 5),
        # value equal to the ULN is not below it
        ("E", 10, "hCG", 5, "IU/L", 5),
        ("E", 20, "HCG", 4, "IU/L", 5),
        ("E", 30, "hcg ", 4, "IU/L", 5),
        ("E", 40, "hCG", 4, "IU/L", 5),
    )
    out = derive_normalisation(labs, ["A", "B", "C", "D", "E", "F"], RULE)
    assert out["normalised"].tolist() == [1, 0, 0, 0, 1, 0]
    assert out.loc["A", "days_to_normalisation"] == 56
    assert out.loc["E", "days_to_normalisation"] == 20
    assert out["measured"].tolist() == [True, True, True, False, True, False]
    assert out.attrs["n_unmeasured"] == 2
    loose = derive_normalisation(labs, ["D"], NormalisationRule("hCG", missing_as_failure=False))
    assert np.isnan(loose.loc["D", "normalised"])


def test_incomplete_rows_are_counted_and_units_checked():
    labs = _labs(
        ("A", 10, "hCG", None, "IU/L", 5),
        ("A", 20, "hCG", 1, "IU/L", None),
        ("A", 30, "hCG", 1, "IU/L", 5),
    )
    out = derive_normalisation(labs, ["A"], NormalisationRule("hCG", n_consecutive=1))
    assert out.attrs["n_incomplete"] == 1 and out.attrs["n_no_uln"] == 1
    assert out.loc["A", "normalised"] == 1 and out.attrs["unit"] == "IU/L"
    mixed = _labs(("A", 10, "hCG", 1, "IU/L", 5), ("A", 20, "hCG", 1, "mIU/mL", 5))
    with pytest.raises(ConnectorError, match="several units"):
        derive_normalisation(mixed, ["A"], RULE)


# Hand-made sequences (docs/data_dictionary.md, "Biomarker normalisation"), N = 2, landmark 168
TWO = NormalisationRule("hcg", n_consecutive=2, landmark_days=168)


@pytest.mark.parametrize(
    ("rows", "normalised", "day", "measured"),
    [
        # below the ULN twice, then above: normalised (by the landmark), from the first of the two
        ([(14, 40), (28, 4), (42, 3), (56, 9)], 1, 28, True),
        # below once, above, below once: never two in a row
        ([(14, 4), (28, 9), (42, 4)], 0, np.nan, True),
        # too few measurements: one normal result only
        ([(14, 40), (28, 4)], 0, np.nan, True),
        # the second normal result after the landmark (day 170 > 168) does not count
        ([(154, 4), (170, 3)], 0, np.nan, True),
        # both on or before the landmark (day 168 counts)
        ([(161, 4), (168, 3)], 1, 161, True),
        # only a baseline (day 0) and a result after the landmark: not measured, counted
        ([(0, 3), (175, 2)], 0, np.nan, False),
        # a result without ULN is not normal: it breaks the run
        ([(14, 4), (28, None), (42, 3)], 0, np.nan, True),
        # a result without value is ignored: the two around it are consecutive
        ([(14, 4), (28, "value-missing"), (42, 3)], 1, 14, True),
    ],
)
def test_hand_made_sequences(rows, normalised, day, measured):
    labs = []
    for d, v in rows:
        if v == "value-missing":
            labs.append(("P", d, "hcg", None, "IU/L", 5))
        elif v is None:
            labs.append(("P", d, "hcg", 2, "IU/L", None))
        else:
            labs.append(("P", d, "hcg", v, "IU/L", 5))
    out = derive_normalisation(_labs(*labs), ["P"], TWO)
    assert out.loc["P", "normalised"] == normalised
    assert out.loc["P", "measured"] == measured
    np.testing.assert_equal(out.loc["P", "days_to_normalisation"], day)


def test_unit_mismatch_is_a_clear_error_and_a_missing_unit_too():
    with pytest.raises(ConnectorError, match=r"'hcg'.*several units.*mapping"):
        derive_normalisation(_labs(("P", 7, "hcg", 3, "IU/L", 5),
                                   ("Q", 7, "hcg", 3, "ng/mL", 5)), ["P", "Q"], TWO)
    with pytest.raises(ConnectorError, match="without a unit"):
        derive_normalisation(_labs(("P", 7, "hcg", 3, "IU/L", 5),
                                   ("P", 14, "hcg", 3, None, 5)), ["P"], TWO)
    # units are compared trimmed and case-insensitively; results outside the window do not count
    out = derive_normalisation(_labs(("P", 7, "hcg", 3, "IU/L", 5), ("P", 14, "hcg", 3, " iu/l", 5),
                                     ("P", 400, "hcg", 3, "ng/mL", 5)), ["P"], TWO)
    assert out.loc["P", "normalised"] == 1


def test_rule_by_landmark():
    rule = NormalisationRule.by_landmark("hcg", 3, 24, "weeks")
    assert rule.landmark_days == 168 and rule.n_consecutive == 3
    assert "3 consecutive" in rule.describe()
    with pytest.raises(ConnectorError, match="unit"):
        NormalisationRule.by_landmark("hcg", 2, 24, "fortnights")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"analyte": ""}, "analyte"),
        ({"analyte": "hCG", "n_consecutive": 0}, "n_consecutive"),
        ({"analyte": "hCG", "landmark_days": -1}, "landmark_days"),
    ],
)
def test_rule_validation(kwargs, match):
    with pytest.raises(ConnectorError, match=match):
        NormalisationRule(**kwargs)
