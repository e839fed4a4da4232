"""Endpoint alignment as an `EndpointBlock` of `reports.analysis.analyze_study` (issue 13)."""

from __future__ import annotations

import numpy as np

from reports.alignment import align_endpoint
from reports.alignment_block import AlignmentBlock
from reports.analysis import AnalysisDesign, analyze_study, time_to_event_settings
from reports.compare import evalues_of

from .test_alignment import GRID, _frame


def _block(**kw) -> AlignmentBlock:
    args = dict(time_col="t", event_col="e", left_col="left", exact_col="death", gap_col="gap",
                grid_every=GRID, grid_label=(6, "weeks"), landmarks=(24.0,), unit="weeks",
                rmst_tau=52.0, imputations=5, random_state=3, days_per_unit=7.0,
                tipping=False)
    args.update(kw)
    return AlignmentBlock(**args)


def _study(d, block):
    settings = time_to_event_settings(
        "PFS", time_col="t", event_col="e", landmarks=[24], unit="weeks", rmst_tau=52,
        blocks={"PFS": (block,)})
    design = AnalysisDesign(d["w"].to_numpy(float), np.ones(len(d), bool),
                            np.full(len(d), np.nan), "weights")
    return analyze_study(d, design, None, settings, naive=False)


def test_block_is_align_endpoint_on_the_designed_rows():
    d = _frame()
    res = _study(d, _block())
    out = res.to_dict()["endpoints"]["PFS"]
    direct = align_endpoint(d, time_col="t", event_col="e", left_col="left", exact_col="death",
                            gap_col="gap", grid_every=GRID, grid_label=(6, "weeks"),
                            weight_col="w", landmarks=[24], time_unit="weeks", rmst_tau=52,
                            imputations=5, random_state=3, days_per_unit=7.0,
                            tipping=False).to_dict()
    assert out["alignment"] == {**direct, "primary": False}
    # not primary: the standard numbers stay, equal to the right-point version
    assert out["landmarks"] == direct["estimates"]["right_point"]["landmarks"]
    # the arms are not assessed alike (42 vs 84 days): the gap warning is a study warning
    assert any("not assessed alike" in w for w in res.warnings)


def test_primary_swaps_the_harmonised_numbers_into_the_result():
    d = _frame()
    res = _study(d, _block(primary=True))
    out = res.to_dict()["endpoints"]["PFS"]
    harm = out["alignment"]["estimates"]["harmonised"]
    assert out["alignment"]["primary"] is True
    assert out["landmarks"] == harm["landmarks"]
    assert out["hazard_ratio"] == harm["hazard_ratio"]
    assert out["rmst"] == harm["rmst"]
    # through the typed result: the primary one is swapped, the analytic one is the standard
    primary = res.endpoints["PFS"].comparison
    analytic = res.analytic["PFS"].comparison
    assert primary.hazard_ratio.estimate == harm["hazard_ratio"]["estimate"]
    assert analytic.hazard_ratio.to_dict() == out["alignment"]["estimates"]["right_point"][
        "hazard_ratio"]
    assert primary.median_trial == analytic.median_trial  # medians stay the standard ones
    # the E-values follow the harmonised limits, never the stale standard ones
    ev = {k: v.to_dict() for k, v in evalues_of(primary.hazard_ratio, primary.landmarks,
                                                 0.95).items()}
    assert out["evalues"] == ev
    assert out["evalues"] != res.analytic["PFS"].to_dict()["evalues"]


def test_unknown_intervals_give_a_reason_and_a_warning_not_an_estimate():
    d = _frame()
    res = _study(d, _block(primary=True, reason="trial arm: no schedule", source="x"))
    out = res.to_dict()["endpoints"]["PFS"]
    assert out["alignment"] == {"grid": {"every": 6, "unit": "weeks"},
                                "reason": "trial arm: no schedule", "estimates": None,
                                "primary": False, "source": "x"}
    assert out["landmarks"] == res.analytic["PFS"].to_dict()["landmarks"]
    assert "endpoint alignment not estimated: trial arm: no schedule" in res.warnings
