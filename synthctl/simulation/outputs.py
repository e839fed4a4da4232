"""Write a simulation study's outputs: CSV, markdown table, figure (PNG) and HTML page."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from reports.simulation_html import format_with_mcse, render_simulation_html
from synthctl.simulation.figure import performance_figure
from synthctl.simulation.study import ESTIMANDS, SimulationResult

__all__ = ["OUTPUT_FILES", "markdown_table", "result_notes", "write_outputs"]

OUTPUT_FILES = {
    "table_csv": "simulation.csv",
    "runs_csv": "simulation_runs.csv",
    "table_md": "simulation.md",
    "figure": "simulation.png",
    "html": "simulation.html",
    "json": "simulation.json",
}
_MD_MEASURES = ("bias", "emp_se", "model_se", "rmse", "coverage", "balance_share")
_MD_HEADERS = ("bias", "emp. SE", "model SE", "RMSE", "coverage", "balance passed")


def markdown_table(summary: pd.DataFrame) -> str:
    """Pipe table: design x estimand, each measure followed by its MC SE in brackets."""
    head = ["design", "estimand", "truth", "valid", *_MD_HEADERS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["--:"] * 8) + "|"]
    for rec in summary.to_dict(orient="records"):
        cells = [
            str(rec["design"]),
            str(rec["estimand"]),
            f"{rec['truth']:.4f}",
            f"{rec['n_valid']}/{rec['n_runs']}",
            *(format_with_mcse(rec[m], rec[f"{m}_mcse"]) for m in _MD_MEASURES),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def result_notes(result: SimulationResult) -> list[str]:
    """How to read the table; which truth the scenario is judged against."""
    spec = result.spec
    if spec.kind == "binary":
        from synthctl.simulation.binary import binary_notes

        return binary_notes(result)
    truth_note = (
        "Truth: the counterfactual control PFS of the trial population on the latent "
        "(continuous) progression times, from the data-generating process. Observed PFS is "
        "read at assessment visits; with unequal visit schedules between the trial and the "
        "registry, even a perfect design is biased against this truth (see "
        "benchmarks/README.md)."
        if spec.truth == "latent"
        else "Truth: the counterfactual PFS of the trial population with both arms observed "
        "on the trial's imaging schedule (sample_data.truth 'trial_schedule'): the target of "
        "a perfect design when the scenario gives the registry the trial's schedule."
    )
    return [
        truth_note,
        "Estimands: " + "; ".join(f"{k} = {v}" for k, v in ESTIMANDS.items()) + ".",
        f"Landmark {spec.landmark_weeks:g} weeks; RMST horizon {spec.rmst_tau_weeks:g} weeks; "
        f"{spec.conf_level:.0%} intervals as reports.compare_arms gives them without bootstrap "
        "(analytic: Greenwood / robust; cluster-robust by matched set for matching).",
        "A design that fails on a replicate (e.g. no match within the caliper) is counted in "
        "'valid' and leaves that replicate out of its measures.",
    ]


def write_outputs(result: SimulationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write every output file into ``out_dir`` (created if needed); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / name for key, name in OUTPUT_FILES.items()}
    result.summary.to_csv(paths["table_csv"], index=False)
    result.runs.to_csv(paths["runs_csv"], index=False)
    title = f"Simulation study: {result.spec.name}"
    md = [
        f"# {title}\n",
        f"{result.replicates} replicates, seed {result.seed}, truth: "
        f"{result.spec.truth if result.spec.kind == 'survival' else 'ATT (Monte Carlo)'}.\n",
        markdown_table(result.summary),
        *(f"\n{note}\n" for note in result_notes(result)),
    ]
    paths["table_md"].write_text("".join(md), encoding="utf-8")
    fig = performance_figure(result.summary, nominal=result.spec.conf_level)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    png = buf.getvalue()
    paths["figure"].write_bytes(png)
    facts = {
        "Scenario": json.dumps(result.spec.scenario) if result.spec.scenario else "defaults",
        "Replicates": str(result.replicates),
        "Seed": str(result.seed),
        "Truth": result.spec.truth,
        "Covariates": ", ".join(result.spec.covariates),
        "Eligibility": "; ".join(result.spec.eligibility) or "none",
        "Wall time": f"{result.elapsed_seconds:.1f} s",
    }
    html = render_simulation_html(
        result.summary, png, title=title, facts=facts, notes=result_notes(result)
    )
    paths["html"].write_text(html, encoding="utf-8")
    paths["json"].write_text(json.dumps(result.to_dict(), indent=2, default=float), "utf-8")
    return paths
