"""reports.binary_endpoint: the endpoint bundle, the landmark status and its Simon analysis."""

import numpy as np
import pandas as pd
import pytest

from reports.binary_endpoint import (
    SimonSettings,
    analyze_binary_endpoint,
    landmark_simon,
    landmark_status,
)
from reports.simon import simon_analysis, simon_design


def test_landmark_status():
    t = [10, 24, 24, 30, 20, 30]
    e = [1, 1, 0, 1, 0, 0]
    got = landmark_status(t, e, 24)
    np.testing.assert_array_equal(got, [0, 0, 1, 1, np.nan, 1])


def test_landmark_simon_orders_by_enrolment_and_lists_censored():
    rng = np.random.default_rng(0)
    n = 30
    frame = pd.DataFrame(
        {
            "id": [f"T{i:02d}" for i in range(n)],
            "start": pd.date_range("2024-01-01", periods=n, freq="7D")[::-1],  # reversed order
            "time": rng.uniform(5, 60, n),
            "event": rng.binomial(1, 0.7, n),
        }
    )
    frame.loc[3, ["time", "event"]] = (10, 0)  # censored before the landmark
    s = SimonSettings(0.35, 0.6)
    res = landmark_simon(
        frame,
        time_col="time",
        event_col="event",
        landmark=24,
        simon=s,
        id_col="id",
        order_col="start",
        unit="weeks",
    )
    status = landmark_status(frame["time"], frame["event"], 24)
    ordered = status[np.argsort(frame["start"].to_numpy())]
    y = ordered[~np.isnan(ordered)].astype(int)
    d = simon_design(0.35, 0.6)
    expected = simon_analysis(d, int(y[:9].sum()), int(y[9:].sum()), len(y) - 9)
    assert res.simon == expected
    out = res.to_dict()
    by_enrolment = frame.sort_values("start")
    st = landmark_status(by_enrolment["time"], by_enrolment["event"], 24)
    assert out["censored_before_landmark"] == list(by_enrolment["id"][np.isnan(st)])
    assert "T03" in out["censored_before_landmark"]
    assert out["n_evaluable"] == len(y)


def test_too_few_patients_is_reported_not_raised():
    frame = pd.DataFrame({"y": [1, 0, 1, 0, 1, 1], "arm": ["trial"] * 4 + ["control"] * 2})
    res = analyze_binary_endpoint(frame, response_col="y", simon=SimonSettings(0.35, 0.6))
    assert res.simon is None and "fewer than the 9" in res.to_dict()["simon"]["error"]
    assert res.trial_vs_null.null_rate == 0.35
    assert res.to_dict()["trial_vs_null"]["n"] == 4


def test_null_rate_defaults_and_override():
    frame = pd.DataFrame({"y": [1, 0, 1, 0], "arm": ["trial", "trial", "control", "control"]})
    assert analyze_binary_endpoint(frame, response_col="y").trial_vs_null is None
    res = analyze_binary_endpoint(frame, response_col="y", null_rate=0.2)
    assert res.trial_vs_null.p_value == pytest.approx(1 - 0.8**2)


def test_duration_of_response_is_km_from_onset():
    from reports.binary_endpoint import duration_of_response
    from reports.km import km_estimate
    from reports.median import median_survival

    frame = pd.DataFrame(
        {
            "arm": ["trial"] * 5 + ["control"] * 4,
            "y": [1, 1, 1, 0, 1, 1, 0, 1, 1],
            "t": [30, 40, 50, 10, 60, 20, 5, 35, 45],
            "e": [1, 0, 1, 1, 1, 1, 1, 0, 1],
            "onset": [8, 8, 16, 0, 24, 8, 0, 16, 8],
            "w": [1, 1, 1, 1, 1, 0.5, 2, 1.5, 0.7],
        }
    )
    res = duration_of_response(
        frame,
        time_col="t",
        event_col="e",
        onset_col="onset",
        response_col="y",
        weight_col="w",
        time_unit="weeks",
    )
    assert res.n_responders == {"trial": 4, "control": 3}
    tr = frame[(frame.arm == "trial") & (frame.y == 1)]
    want = median_survival(km_estimate(tr.t - tr.onset, tr.e, tr.w))
    assert res.median["trial"].estimate == want.estimate
    bad = frame.assign(onset=frame.onset.where(frame.index != 0, 99))
    with pytest.raises(Exception, match="after progression"):
        duration_of_response(bad, time_col="t", event_col="e", onset_col="onset", response_col="y")
