"""reports.binary_endpoint: the Simon and duration-of-response blocks, the landmark status."""

import numpy as np
import pandas as pd
import pytest

from reports.analysis import AnalysisDesign, AnalysisSettings, analyze_study
from reports.binary_endpoint import (
    LandmarkSimonBlock,
    ResponseSimonBlock,
    SimonSettings,
    landmark_simon,
    landmark_status,
)
from reports.endpoints import Binary, DesignedFrame, TimeToEvent
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


def _designed(frame):
    return DesignedFrame(frame, "arm", "trial", None, None, None)


def test_too_few_patients_is_reported_not_raised():
    frame = pd.DataFrame({"y": [1, 0, 1, 0, 1, 1], "arm": ["trial"] * 4 + ["control"] * 2})
    res = ResponseSimonBlock(SimonSettings(0.35, 0.6), "y").estimate(_designed(frame), 0.95)
    assert res.simon is None and "fewer than the 9" in res.to_dict()["error"]
    assert "Simon two-stage analysis is not available" in res.problems()[0]


def test_response_simon_block_orders_trial_by_enrolment():
    n = 27
    order = np.random.default_rng(1).permutation(n)
    y = np.zeros(n, int)
    y[:9] = [1, 1, 1, 1, 0, 0, 0, 0, 0]  # 4 > r1 = 3 in the first 9 enrolled
    y[9:] = np.random.default_rng(2).binomial(1, 0.5, n - 9)
    frame = pd.DataFrame({"y": y[order], "start": order, "arm": "trial"})
    frame = pd.concat([frame, pd.DataFrame({"y": [0, 1], "start": [0, 0],
                                            "arm": "control"})], ignore_index=True)
    res = ResponseSimonBlock(SimonSettings(0.35, 0.6), "y", "start").estimate(
        _designed(frame), 0.95)
    want = simon_analysis(simon_design(0.35, 0.6), 4, int(y[9:].sum()), n - 9)
    assert res.simon == want and res.problems() == []


def test_blocks_land_in_the_endpoint_object_and_run_once():
    """Simon is a block of analyze_study: in endpoints.<name>.simon, computed on the locked
    design only (never per bootstrap replicate)."""
    rng = np.random.default_rng(3)
    n = 80
    frame = pd.DataFrame({"id": [f"P{i}" for i in range(n)],
                          "arm": ["trial"] * 27 + ["control"] * (n - 27),
                          "y": rng.binomial(1, 0.4, n), "start": np.arange(n),
                          "t": rng.uniform(1, 60, n), "e": rng.binomial(1, 0.6, n)})
    calls = {"n": 0}

    class Counting(ResponseSimonBlock):
        def estimate(self, data, conf_level):
            calls["n"] += 1
            return ResponseSimonBlock.estimate(self, data, conf_level)

    settings = AnalysisSettings(
        endpoints=(Binary("ORR", "y", 0.35), TimeToEvent("OS", "t", "e", (24.0,), "weeks")),
        id_col="id", bootstrap=5, random_state=1,
        blocks={"ORR": (Counting(SimonSettings(0.35, 0.6), "y", "start"),),
                "OS": (LandmarkSimonBlock(SimonSettings(0.35, 0.6), "t", "e", 24.0, "id",
                                          "weeks", "start", outcome="alive"),)})
    design = AnalysisDesign(np.ones(n), np.ones(n, bool), np.full(n, np.nan), "weights")

    def redesign(rep, seed):
        return AnalysisDesign.unweighted(len(rep))

    out = analyze_study(frame, design, redesign, settings).to_dict()["endpoints"]
    assert calls["n"] == 1
    assert (out["ORR"]["simon"]["n1"], out["ORR"]["simon"]["r"]) == (9, 13)
    os_simon = out["OS"]["simon"]
    assert os_simon["outcome"] == "alive at 24 weeks"
    trial = frame[frame.arm == "trial"]
    st = landmark_status(trial["t"], trial["e"], 24)
    assert os_simon["n_censored_before_landmark"] == int(np.isnan(st).sum())
    assert os_simon["n_evaluable"] == int((~np.isnan(st)).sum())


def test_null_rate_gives_the_exact_test():
    frame = pd.DataFrame({"y": [1, 0, 1, 0], "arm": ["trial", "trial", "control", "control"]})
    assert Binary("ORR", "y").estimate(_designed(frame), 0.95).trial_vs_null is None
    res = Binary("ORR", "y", null_rate=0.2).estimate(_designed(frame), 0.95)
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
