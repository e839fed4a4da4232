"""DesignResult: frozen, one-line repr, JSON-safe design.json, ESS."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from matching import kish_ess, match_cohort


@pytest.fixture(scope="module")
def res():
    rng = np.random.default_rng(5)
    n = 300
    df = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)],
                       "arm": np.where(np.arange(n) < 40, "trial", "control"),
                       "age": rng.normal(60, 10, n), "ecog": rng.integers(0, 2, n)})
    return match_cohort(df, ["age", "ecog"], caliper=None)


def test_frozen_and_repr(res):
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.method = "optimal"
    r = repr(res)
    assert "\n" not in r and "n_trial=40/40" in r and "ess_control=40.0" in r


def test_to_dict_is_strict_json(res):
    d = res.to_dict()
    text = json.dumps(d, allow_nan=False)  # NaN/inf (e.g. no caliper -> inf) became null
    assert json.loads(text)["details"]["caliper_abs"] is None
    assert d["balance"]["rows"][0]["covariate"] == "distance"


def test_kish_ess():
    assert kish_ess([1, 1, 1, 0]) == 3
    assert kish_ess([2, 1, 1]) == pytest.approx(16 / 6)
    assert kish_ess([]) == 0
