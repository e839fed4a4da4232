"""reports.html: the self-contained study report from plain data."""

from __future__ import annotations

import re

import pandas as pd

from reports.html import ReportContent, attrition_flow_svg, render_report, results_rows

ATTRITION = pd.DataFrame(
    [
        {
            "step": 1,
            "criterion": "registry patients",
            "n_remaining": 2000,
            "n_excluded": 0,
            "reason": "",
        },
        {
            "step": 2,
            "criterion": "with an index line after platinum_pemetrexed",
            "n_remaining": 1500,
            "n_excluded": 500,
            "reason": "no index line",
        },
        {
            "step": 3,
            "criterion": "ecog_at_index <= 1",
            "n_remaining": 1200,
            "n_excluded": 300,
            "reason": "fails criterion",
        },
        {
            "step": 4,
            "criterion": "ecog_at_index <= 1",
            "n_remaining": 1150,
            "n_excluded": 50,
            "reason": "missing ecog_at_index",
        },
        {"step": 5, "criterion": "final", "n_remaining": 1150, "n_excluded": 0, "reason": ""},
    ]
)
COUNTS = {
    "trial": 27,
    "control_pool": 1150,
    "trial_selected": 26,
    "control_selected": 26,
    "control_ess": 26.0,
}


def _est(x, lo, hi, **kw):
    return {"estimate": x, "se": 0.05, "lower": lo, "upper": hi, "method": "m", **kw}


ENDPOINT = {
    "landmarks": [
        {
            "time": 24.0,
            "unit": "weeks",
            "trial": _est(0.55, 0.4, 0.7),
            "control": _est(0.30, 0.2, 0.45, null_test={"p_value": 0.7, "null_rate": 0.35}),
            "difference": _est(0.25, 0.05, 0.45),
        }
    ],
    "median": {"unit": "weeks", "trial": _est(30.1, 22.0, None),
               "control": _est(14.2, 10.0, 20.0)},
    "hazard_ratio": {
        "estimate": 0.55,
        "lower": 0.33,
        "upper": 0.92,
        "se_log": 0.26,
        "p_value": 0.021,
        "method": "robust",
    },
    "rmst": {
        "tau": 52.0,
        "unit": "weeks",
        "trial": _est(31.0, 26.0, 36.0),
        "control": _est(22.0, 18.0, 26.0),
        "difference": _est(9.0, 3.0, 15.0),
    },
}


def _content(**kw) -> ReportContent:
    base = dict(
        title="Demo <study>",
        summary={"Study": "Demo"},
        counts=COUNTS,
        attrition=ATTRITION,
        baseline=pd.DataFrame(
            [
                {
                    "variable": "age_at_index",
                    "trial": "64.1 (8.0)",
                    "pool": "66.0 (9.1)",
                    "control": "64.3 (8.2)",
                    "smd_before": "-0.220",
                    "smd_after": "0.020",
                }
            ]
        ),
        endpoint_name="PFS",
        endpoint=ENDPOINT,
        null_rate=0.35,
        sensitivity={
            "naive": {"description": "unadjusted", **ENDPOINT},
        },
        figures={"km": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "svg")},
        methods="A methods paragraph.",
        warnings=[{"stage": "design", "kind": "warning", "message": "separation <b>"}],
        manifest={"seed": 1},
    )
    base.update(kw)
    return ReportContent(**base)


def test_report_is_self_contained_and_escaped(tmp_path):
    path = tmp_path / "r.html"
    html = render_report(_content(), path)
    assert path.read_text() == html
    # nothing fetched from elsewhere: only data: URIs, no scripts, no links to stylesheets
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert "<script" not in html and "<link" not in html
    assert "Demo &lt;study&gt;" in html and "separation &lt;b&gt;" in html
    # defect 15: results first (headline box, results, figures), then design and data; the
    # manifest in a collapsed appendix
    headings = ("Result: PFS at 24 weeks", "Results: PFS", "Sensitivity analyses",
                "Covariate balance", "Study design and data", "Attrition",
                "Baseline characteristics", "Methods", "Warnings", "Appendix: manifest")
    positions = [html.index(f"<h2>{h}") for h in headings]
    assert positions == sorted(positions)
    assert re.search(r'<details class="appendix">\s*<summary>[^<]*</summary>\s*'
                     r'<pre class="manifest">', html)
    assert "@media print" in html
    assert 'id="balance-failed"' not in html and 'id="redesign"' not in html


def test_banners_for_failed_balance_and_redesign():
    html = render_report(_content(balance_passed=False, allow_redesign=True))
    assert 'id="balance-failed"' in html and 'id="redesign"' in html


def test_flow_diagram_shows_each_exclusion_and_final_counts():
    svg = attrition_flow_svg(ATTRITION, COUNTS)
    assert "registry patients: n = 2000" in svg
    assert "(no index line): n = 500" in svg
    assert "(fails criterion): n = 300" in svg and "(missing ecog_at_index): n = 50" in svg
    assert "Eligible registry pool: n = 1150" in svg
    assert "Synthetic control: n = 26, ESS = 26.0" in svg and "Trial arm: n = 27" in svg


def test_results_rows_format_estimates_and_null_rate():
    rows = {r["quantity"]: r for r in results_rows(ENDPOINT, 0.35)}
    lm = rows["Rate at 24 weeks"]
    assert lm["trial"] == "55.0% (40.0% to 70.0%)"
    assert lm["comparison"] == "difference +25.0 pts (+5.0 pts to +45.0 pts)"
    null = rows["Rate at 24 weeks vs design null rate 35.0%"]
    assert null["control"] == "one-sided p = 0.7"
    assert null["trial"] == "above (CI excludes it)"  # no test attached: judged by the CI
    assert rows["Hazard ratio (trial vs control)"]["comparison"] == "0.55 (0.33 to 0.92), p = 0.021"
    # defect 16: units on medians and RMST
    assert rows["Median (weeks)"]["trial"] == "30.1 (22.0 to NA)"
    assert rows["RMST to 52 weeks (weeks)"]["comparison"] == "difference 9.0 (3.0 to 15.0)"


def test_headline_box_against_the_null_rate():
    html = render_report(_content())
    box = html[html.index('id="headline"'):html.index('id="results"')]
    assert "55.0% (40.0% to 70.0%)" in box and "+25.0 pts" in box
    assert "0.55 (0.33 to 0.92)" in box and "H0 35.0%: above (CI excludes it)" in box


def test_no_negative_zero_matched_design_and_variance_ratios():
    """Defect 16: no ``-0.000``; a matched design is not called weighted; variance ratios
    outside 0.5-2 flagged."""
    from reports.html import fmt_num, fmt_pct

    assert fmt_num(-0.0001, 3) == "0.000" and fmt_pct(-0.00001) == "0.0%"
    assert fmt_num(-0.25) == "-0.25"
    base = _content().baseline.assign(smd_after="-0.000")
    vr = [{"covariate": "age", "variance_ratio_before": 0.3, "variance_ratio_after": 0.34},
          {"covariate": "pfi", "variance_ratio_before": 1.0, "variance_ratio_after": 1.1}]
    html = render_report(_content(baseline=base, design_kind="matched", variance_ratios=vr))
    assert "-0.000" not in html
    assert "weighted by the design" not in html and "matched registry patients" in html
    table = html[html.index('id="variance-ratios"'):]
    assert '<td class="flag">outside 0.5-2</td>' in table
    assert table.count("outside 0.5-2") == 1


def test_estimate_methods_listed_once_each():
    from reports.html import estimate_methods

    ep = {**ENDPOINT, "hazard_ratio": {**ENDPOINT["hazard_ratio"], "method": "robust Cox"}}
    assert estimate_methods(ep) == ["m", "robust Cox"]
    html = render_report(_content(endpoint=ep))
    assert "<li>robust Cox</li>" in html
