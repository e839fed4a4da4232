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
    assert out.attrs["n_incomplete"] == 2 and out.loc["A", "normalised"] == 1
    mixed = _labs(("A", 10, "hCG", 1, "IU/L", 5), ("A", 20, "hCG", 1, "mIU/mL", 5))
    with pytest.raises(ConnectorError, match="several units"):
        derive_normalisation(mixed, ["A"], RULE)


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
