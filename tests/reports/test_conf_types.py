"""Defect 4: every ``conf_type`` the spec accepts is survfit's (plain, log, log-log, logit,
arcsin), checked against R survival 3.5-3 (tests/fixtures/km_conf_types).

Tolerance 1e-9 relative: the same closed-form transforms of the same (Greenwood or IJ) SE."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.estimate import Estimate
from reports.km import CONF_TYPES, km_estimate
from reports.landmark import test_null_rate

FIX = Path(__file__).resolve().parents[1] / "fixtures"
REF = json.loads((FIX / "km_conf_types" / "km_conf_types.json").read_text())


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = pd.read_csv(FIX / "pm_external_control_a" / "pm_external_control_a.csv")
    d = d[d["treated"] == 0].iloc[:120]
    w = 0.5 + (np.arange(1, 121) % 4) / 3
    return d["pfs_weeks"].to_numpy(float), d["pfs_event"].to_numpy(float), w


def _num(xs) -> np.ndarray:
    return np.array([np.nan if x == "NA" or x is None else x for x in xs], dtype=float)


@pytest.mark.parametrize("conf_type", CONF_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_limits_equal_survfit(conf_type, weighted):
    t, e, w = _data()
    ref = REF[f"{conf_type} {'w' if weighted else 'none'}"]
    curve = km_estimate(t, e, w if weighted else None, conf_type=conf_type)
    np.testing.assert_allclose(curve.time, ref["time"], rtol=1e-12)
    np.testing.assert_allclose(curve.surv, _num(ref["surv"]), rtol=1e-9)
    np.testing.assert_allclose(curve.lower, _num(ref["lower"]), rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(curve.upper, _num(ref["upper"]), rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("conf_type", ["plain", "logit", "arcsin"])
def test_null_rate_test_is_on_the_stated_scale(conf_type):
    """The one-sided test uses the interval's scale: z = 0 at S = null, sign follows S - null."""
    at_null = test_null_rate(Estimate(0.35, 0.05, 0, 1, 0.95, "x"), 0.35, conf_type)
    above = test_null_rate(Estimate(0.5, 0.05, 0, 1, 0.95, "x"), 0.35, conf_type)
    assert at_null.z == pytest.approx(0.0, abs=1e-12) and above.z > 0
    assert conf_type in above.method
    if conf_type == "plain":
        assert above.z == pytest.approx((0.5 - 0.35) / 0.05)
