"""Self-contained HTML page of a simulation study (pure: table + figure in, HTML out).

The page shows, per estimand, one row per design with bias, empirical SE, mean model SE,
RMSE and CI coverage, each followed by its Monte Carlo SE, plus the share of replicates
whose design passed the balance check. The figure is embedded as a base64 PNG so the file
reads offline and prints.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reports.templating import environment

__all__ = ["format_with_mcse", "render_simulation_html", "write_simulation_html"]

_MEASURES = (
    ("bias", "Bias"),
    ("emp_se", "Empirical SE"),
    ("model_se", "Model SE"),
    ("rmse", "RMSE"),
    ("coverage", "Coverage"),
    ("balance_share", "Balance passed"),
)
_ESTIMAND_LABELS = {
    "landmark_diff": "Survival difference at the landmark (trial - control, probability)",
    "log_hr": "Log hazard ratio (trial vs control)",
    "rmst_diff": "RMST difference (trial - control, weeks)",
}


def format_with_mcse(value: float, mcse: float, digits: int = 3) -> str:
    """``"0.012 (0.004)"``: a measure and, in brackets, its Monte Carlo SE; ``"NA"`` if missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    if mcse is None or (isinstance(mcse, float) and math.isnan(mcse)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({mcse:.{digits}f})"


def _table_groups(summary: pd.DataFrame) -> list[dict[str, Any]]:
    groups = []
    for estimand in dict.fromkeys(summary["estimand"]):
        sub = summary[summary["estimand"] == estimand]
        rows = []
        for rec in sub.to_dict(orient="records"):
            cells = [format_with_mcse(rec[key], rec.get(f"{key}_mcse")) for key, _ in _MEASURES]
            rows.append(
                {
                    "design": str(rec["design"]),
                    "valid": f"{rec['n_valid']}/{rec['n_runs']}",
                    "cells": cells,
                    "ess": "NA"
                    if pd.isna(rec.get("mean_control_ess"))
                    else f"{rec['mean_control_ess']:.1f}",
                }
            )
        truth = sub["truth"].iloc[0]
        groups.append(
            {
                "label": _ESTIMAND_LABELS.get(str(estimand), str(estimand)),
                "truth": "NA" if pd.isna(truth) else f"{truth:.4f}",
                "rows": rows,
            }
        )
    return groups


def render_simulation_html(
    summary: pd.DataFrame,
    figure_png: bytes,
    *,
    title: str,
    facts: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """HTML page of a simulation study.

    Parameters
    ----------
    summary : DataFrame
        One row per design x estimand with ``design, estimand, truth, n_runs, n_valid`` and
        the measures ``bias, emp_se, model_se, rmse, coverage, balance_share`` each with a
        ``<measure>_mcse`` column (as ``synthctl.simulation.summarise_runs`` makes it).
    figure_png : bytes
        PNG of the bias/coverage figure, embedded as base64.
    title : str
    facts : mapping of str to str, optional
        Key facts shown as a definition list (scenario, seed, replicates, truth used...).
    notes : sequence of str
        Paragraphs shown under the table (how to read it, caveats).
    """
    template = environment().get_template("simulation.html.j2")
    return template.render(
        title=title,
        facts=dict(facts or {}),
        notes=list(notes),
        headers=[label for _, label in _MEASURES],
        groups=_table_groups(summary),
        figure_b64=base64.b64encode(figure_png).decode("ascii"),
    )


def write_simulation_html(
    path: str | Path, summary: pd.DataFrame, figure_png: bytes, **kwargs: Any
) -> Path:
    """Render with ``render_simulation_html`` and write to ``path`` (UTF-8); returns it."""
    path = Path(path)
    path.write_text(render_simulation_html(summary, figure_png, **kwargs), encoding="utf-8")
    return path
