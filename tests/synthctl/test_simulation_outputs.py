"""Outputs of a simulation study from a synthetic runs table (no simulator needed):
summary per design x estimand, markdown, CSV, figure and the self-contained HTML page."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd

from reports.simulation_html import format_with_mcse, render_simulation_html
from synthctl.simulation.figure import performance_figure
from synthctl.simulation.outputs import markdown_table
from synthctl.simulation.study import ESTIMANDS, summarise_runs


def _runs(n: int = 50, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(n):
        for design, shift in (("naive", 0.4), ("<b>weights</b>", 0.0)):
            for estimand in ESTIMANDS:
                est = shift + 0.2 * rng.standard_normal()
                failed = design == "naive" and rep == 0
                rows.append(
                    {
                        "replicate": rep,
                        "design": design,
                        "estimand": estimand,
                        "estimate": np.nan if failed else est,
                        "se": 0.2,
                        "lower": est - 0.392,
                        "upper": est + 0.392,
                        "truth": 0.0,
                        "truth_mcse": 0.001,
                        "balance_passed": None if failed else rep % 2 == 0,
                        "n_trial": 27,
                        "n_trial_analysed": 0 if failed else 27,
                        "control_ess": 40.0,
                        "error": "MatchingError: no match" if failed else None,
                    }
                )
    runs = pd.DataFrame(rows)
    runs["design"] = pd.Categorical(runs["design"], ["naive", "<b>weights</b>"], ordered=True)
    return runs


def test_summary_one_row_per_design_and_estimand_with_failures_counted():
    summary = summarise_runs(_runs())
    assert len(summary) == 2 * len(ESTIMANDS)
    naive = summary[summary["design"] == "naive"]
    assert (naive["n_failed"] == 1).all() and (naive["n_valid"] == 49).all()
    assert np.allclose(naive["balance_share"], 24 / 49)  # even replicates 2..48
    # the shifted design is detectably biased, the other is not
    assert (naive["bias"] / naive["bias_mcse"] > 5).all()
    weights = summary[summary["design"] == "<b>weights</b>"]
    assert (weights["bias"].abs() < 4 * weights["bias_mcse"]).all()


def test_markdown_table_rows_and_mcse_brackets():
    md = markdown_table(summarise_runs(_runs()))
    lines = md.strip().splitlines()
    assert len(lines) == 2 + 2 * len(ESTIMANDS)
    assert all(line.count("|") == 11 for line in lines)
    assert re.search(r"\| naive \| log_hr \| 0\.0000 \| 49/50 \| 0\.\d{3} \(0\.\d{3}\)", md)


def test_format_with_mcse():
    assert format_with_mcse(0.01234, 0.0041) == "0.012 (0.004)"
    assert format_with_mcse(float("nan"), 0.1) == "NA"
    assert format_with_mcse(0.5, float("nan")) == "0.500"


def test_html_is_self_contained_and_escapes(tmp_path):
    summary = summarise_runs(_runs())
    fig = performance_figure(summary)
    path = tmp_path / "f.png"
    fig.savefig(path, format="png", dpi=60)
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    html = render_simulation_html(
        summary, png, title="Sim <test>", facts={"Seed": "1"}, notes=["a & b"]
    )
    assert "<b>weights</b>" not in html and "&lt;b&gt;weights&lt;/b&gt;" in html
    assert "Sim &lt;test&gt;" in html and "a &amp; b" in html
    # no external resources: every src/href is a data: URI
    assert not re.search(r"""(src|href)=["'](?!data:)""", html)
    embedded = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(embedded) == png
    assert html.count("<table>") == len(ESTIMANDS)
