"""reports.simon: Simon (1989) designs by enumeration, Koyama & Chen (2008) inference.

Designs must match the published tables exactly; EN0/PET to the table's printed rounding
(one decimal / two decimals). The Koyama-Chen numbers match the authors' code to 1e-9.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from reports.errors import EstimationError
from reports.simon import SimonDesign, rejection_probability, simon_analysis, simon_design

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "simon_koyama_chen"

# Simon (1989), Controlled Clinical Trials 10:1-10, Tables 1-2:
# (p0, p1, alpha, beta) -> design, "r1/n1", "r/n", EN0, PET0
SIMON_TABLE = [
    ((0.05, 0.25, 0.05, 0.20), "optimal", (0, 9), (2, 17), 12.0, 0.63),
    ((0.05, 0.25, 0.05, 0.20), "minimax", (0, 12), (2, 16), 13.8, 0.54),
    ((0.05, 0.25, 0.10, 0.10), "optimal", (0, 9), (2, 24), 14.5, 0.63),
    ((0.10, 0.30, 0.05, 0.20), "optimal", (1, 10), (5, 29), 15.0, 0.74),
    ((0.10, 0.30, 0.05, 0.20), "minimax", (1, 15), (5, 25), 19.5, 0.55),
    ((0.20, 0.40, 0.05, 0.20), "optimal", (3, 13), (12, 43), 20.6, 0.75),
    ((0.30, 0.50, 0.05, 0.20), "minimax", (6, 19), (16, 39), 25.7, 0.67),
]


@pytest.mark.parametrize(("args", "kind", "stage1", "final", "en0", "pet0"), SIMON_TABLE)
def test_reproduces_simon_1989_tables(args, kind, stage1, final, en0, pet0):
    p0, p1, alpha, beta = args
    d = simon_design(p0, p1, alpha, 1 - beta, design=kind)
    assert ((d.r1, d.n1), (d.r, d.n)) == (stage1, final)
    assert round(d.en0, 1) == en0
    assert round(d.pet0, 2) == pet0
    assert d.alpha <= alpha and d.power >= 1 - beta
    assert d.alpha == pytest.approx(rejection_probability(d.r1, d.n1, d.r, d.n, p0), abs=1e-12)


def test_immunorare5_design():
    # H0 35% vs H1 60%, one-sided alpha 5%, power 80%: the mesothelioma cohort's 27 patients
    d = simon_design(0.35, 0.60, 0.05, 0.80)
    assert ((d.r1, d.n1), (d.r, d.n)) == ((3, 9), (13, 27))
    assert d.pet0 == pytest.approx(binom.cdf(3, 9, 0.35), abs=1e-15)
    assert d.en0 == pytest.approx(9 + (1 - d.pet0) * 18, abs=1e-12)


def test_en0_of_the_p05_design_is_11_96():
    # the issue quotes EN0 11.9 for 0/9, 2/17; exactly it is 9 + 8 (1 - 0.95^9) = 11.958
    d = simon_design(0.05, 0.25, 0.05, 0.80)
    assert d.en0 == pytest.approx(9 + 8 * (1 - 0.95**9), abs=1e-12)


def test_no_better_design_exists_brute_force_small_case():
    # brute force over all (r1, n1, r, n) with n <= 20 for p0 .05 / p1 .25
    p0, p1, a, pw = 0.05, 0.25, 0.05, 0.80
    best = None
    for n in range(2, 21):
        for n1 in range(1, n):
            for r1 in range(n1):
                for r in range(r1, n):
                    if rejection_probability(r1, n1, r, n, p0) > a:
                        continue
                    if rejection_probability(r1, n1, r, n, p1) >= pw:
                        pet = binom.cdf(r1, n1, p0)
                        key = (n1 + (1 - pet) * (n - n1), n)
                        if best is None or key < best[0]:
                            best = (key, (r1, n1, r, n))
                    break
    d = simon_design(p0, p1, a, pw, nmax=20)
    assert (d.r1, d.n1, d.r, d.n) == best[1]


def _given(p0, n1, r1, n, r, alpha=0.05):
    return SimonDesign(
        p0, np.nan, r1, n1, r, n, np.nan, np.nan, np.nan, np.nan, alpha, 0.8, "given"
    )


@pytest.mark.parametrize("case", json.loads((FIX / "expected.json").read_text())["cases"])
def test_koyama_chen_published_examples(case):
    d = _given(case["p0"], case["n1"], case["r1"], case["n"], case["r"])
    res = simon_analysis(d, case["x1"], case["x2"], case["m2"], conf_level=0.90)
    assert res.p_value == pytest.approx(case["p_value"], abs=1e-9)
    assert res.lower == pytest.approx(case["lower"], abs=1e-9)
    assert res.upper == pytest.approx(case["upper"], abs=1e-9)
    assert res.median_unbiased == pytest.approx(case["median"], abs=1e-9)


def _all_outcomes(d):
    out = []
    for x1 in range(d.n1 + 1):
        if x1 <= d.r1:
            out.append((x1, None, simon_analysis(d, x1)))
        else:
            out += [(x1, x2, simon_analysis(d, x1, x2)) for x2 in range(d.n - d.n1 + 1)]
    return out


def test_pvalue_agrees_with_the_decision_and_lower_limit_is_exact():
    d = simon_design(0.35, 0.60, 0.05, 0.80)
    outcomes = _all_outcomes(d)
    for x1, x2, a in outcomes:
        rejects = x2 is not None and x1 + x2 > d.r
        assert (a.p_value <= d.alpha_target) == rejects, (x1, x2)
        assert ("H0 rejected" in a.decision) == rejects
    # boundary outcome: the p-value is the design's actual type I error
    edge = next(a for x1, x2, a in outcomes if x2 is not None and x1 + x2 == d.r + 1)
    assert edge.p_value == pytest.approx(d.alpha, abs=1e-12)
    # one-sided lower limit (95%) covers p with probability >= 95% (exact enumeration)
    n2 = d.n - d.n1
    for p in np.linspace(0.05, 0.95, 19):
        cover = sum(
            binom.pmf(x1, d.n1, p) * (1 if x2 is None else binom.pmf(x2, n2, p))
            for x1, x2, a in outcomes
            if a.lower <= p
        )
        assert cover >= 0.95 - 1e-9, p


def test_stopped_at_stage_one():
    d = simon_design(0.35, 0.60, 0.05, 0.80)
    res = simon_analysis(d, 2)
    assert res.stopped_at_stage1 and "futility" in res.decision
    assert res.p_value == pytest.approx(binom.sf(1, 9, 0.35))
    assert (res.n_stage2, res.responses) == (0, 2)
    out = res.to_dict()
    assert {
        "n1",
        "r1",
        "n",
        "r",
        "en0",
        "pet0",
        "alpha",
        "power",
        "responses_stage1",
        "responses",
        "decision",
        "p_value",
    } <= set(out)
    json.dumps(out)


def test_bad_inputs():
    with pytest.raises(EstimationError, match="p0 < p1"):
        simon_design(0.6, 0.35)
    with pytest.raises(EstimationError, match="design must be"):
        simon_design(0.35, 0.6, design="best")
    with pytest.raises(EstimationError, match="raise nmax"):
        simon_design(0.35, 0.4, nmax=10)
    d = simon_design(0.35, 0.60, 0.05, 0.80)
    with pytest.raises(EstimationError, match="responses_stage1"):
        simon_analysis(d, 10)
    with pytest.raises(EstimationError, match="stage 2"):
        simon_analysis(d, 5, 19)
