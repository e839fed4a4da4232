"""The method table (matching/methods.py): one entry per method, read by match_cohort."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from matching import MatchingError, match_cohort
from matching._method import MethodOutcome, Option
from matching._validation import Interval
from matching.methods import (
    COMMON_OPTIONS,
    METHODS,
    VARIANCE_CLUSTER,
    MethodSpec,
    describe_method,
    design_problems,
    resolve_design,
)
from tests.matching.test_api import COVS, _frame


@pytest.mark.parametrize("method", list(METHODS))
def test_every_default_satisfies_its_own_constraint(method):
    for opt in (*COMMON_OPTIONS, *METHODS[method].options):
        assert opt.problem(opt.default) is None, (method, opt.name)
    assert METHODS[method].estimands, method
    assert METHODS[method].yields({}) in VARIANCE_CLUSTER


def test_match_cohort_signature_lists_every_option_of_the_table():
    params = inspect.signature(match_cohort).parameters
    for entry in METHODS.values():
        for opt in entry.options:
            assert params[opt.name].kind is inspect.Parameter.KEYWORD_ONLY
            assert all(alias in params for alias in opt.aliases)


def test_nearest_with_replacement_yields_pairs_not_sets():
    """Issue 14, defect 6: with replacement there are no matched sets; the result says so."""
    res = match_cohort(_frame(), COVS, replace=True, ratio=2, random_state=1)
    assert res.yields == "pairs_with_replacement" and res.variance_cluster == "row"
    assert res.match_id.isna().all()
    d = res.to_dict()
    assert d["yields"] == "pairs_with_replacement" and d["variance_cluster"] == "row"
    assert d["details"]["n_controls_reused"] >= 0
    w = match_cohort(_frame(), COVS, method="weighting")
    assert (w.yields, w.variance_cluster) == ("weights", "row")
    assert match_cohort(_frame(), COVS, method="optimal", caliper=None).yields == "sets"


def test_weighting_follows_every_estimand_of_its_entry():
    """Issue 14, defect 7: estimand ATM with weighting runs (matching weights)."""
    res = match_cohort(_frame(), COVS, method="weighting", estimand="ATM")
    assert res.options["weights"] is None and res.estimand == "ATM"
    assert "matching weights" in describe_method("weighting", "ATM", {})
    for estimand in METHODS["weighting"].estimands:
        res = match_cohort(_frame(), COVS, method="weighting", estimand=estimand)
        assert res.ess["control"] > 0


@pytest.mark.parametrize(("method", "estimand", "given", "key", "text"), [
    ("nearest", "ATE", {}, "estimand", "estimand ATE needs method weighting"),
    ("weighting", "ATT", {"weights": "overlap"}, "weights", "target the estimand ATO"),
    ("weighting", "ATT", {"ratio": 2}, "ratio", "'ratio' does not apply to method weighting"),
    ("weighting", "ATT", {"caliper": 0.2}, "caliper", "(it applies to nearest and optimal)"),
    ("nearest", "ATT", {"weights": "ate"}, "weights", "does not apply to method nearest"),
    ("optimal", "ATT", {"replace": True}, "replace", "(it applies to nearest)"),
    ("weighting", "ATT", {"stabilized": True}, "stabilized", "ate weights only"),
    ("weighting", "ATE", {"truncate_rule": "weightit"}, "truncate_rule", "without truncate"),
    ("nearest", "ATT", {"caliper": -1.0}, "caliper", "caliper must be"),
    ("nearest", "ATT", {"replace": True, "m_order": "random"}, "m_order", "no effect"),
    ("nearest", "ATT", {"distance": "logit"}, "distance", "distance must be one of"),
])
def test_design_problems_name_the_option(method, estimand, given, key, text):
    problems = design_problems(method, estimand, given)
    assert [k for k, _ in problems] == [key]
    assert text in problems[0][1]
    with pytest.raises(MatchingError, match="invalid design"):
        resolve_design(method, estimand, given)


def test_caliper_scale_is_the_old_name_of_distance():
    assert resolve_design("nearest", "ATT", {"caliper_scale": "logit"})["distance"] == "logit_ps"
    assert resolve_design("optimal", "ATT", {"caliper_scale": "ps"})["distance"] == "ps"
    with pytest.raises(MatchingError, match="not both"):
        resolve_design("nearest", "ATT", {"caliper_scale": "ps", "distance": "ps"})
    a = match_cohort(_frame(), COVS, caliper_scale="ps")
    b = match_cohort(_frame(), COVS, distance="ps")
    assert a.options == b.options
    assert np.allclose(a.distance, a.ps)


def _run_every_second(inputs):
    """A toy method: every second control gets weight 1."""
    w = np.where(inputs.treated, 1.0, 0.0)
    ctrl = np.flatnonzero(~inputs.treated)
    w[ctrl[:: inputs.options["step"]]] = 1.0
    return MethodOutcome(w, np.full(len(w), -1), {}, [], [])


def test_a_new_method_is_one_function_and_one_entry(monkeypatch):
    """What adding a method takes: its run function (own file) and one table entry."""
    entry = MethodSpec(
        name="every_second", run=_run_every_second, estimator=object,
        options=(Option("step", int, 2, (Interval(int, 1, None),), "Take every step-th."),),
        estimands=("ATT",), yields_when=lambda o: "weights",
        describe=lambda o, e: f"every {o['step']}th control (estimand {e})")
    monkeypatch.setitem(METHODS, "every_second", entry)
    res = match_cohort(_frame(), COVS, method="every_second", step=4)
    assert res.yields == "weights" and res.counts["control_selected"] == 100
    assert describe_method("every_second", "ATT", {"step": 4}) == "every 4th control (estimand ATT)"
    with pytest.raises(MatchingError, match="'caliper' does not apply to method every_second"):
        match_cohort(_frame(), COVS, method="every_second", caliper=0.1)


def test_docs_list_every_method_and_option_of_the_table():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "design.md").read_text()
    for method, entry in METHODS.items():
        assert f"`method: {method}`" in text, method
        for opt in (*COMMON_OPTIONS, *entry.options):
            assert f"`{opt.name}`" in text, (method, opt.name)
            assert all(f"`{alias}`" in text for alias in opt.aliases)
