"""``quality.html`` from a `QualityReport`: the data for `reports.quality_html` (which renders).

Counts only: per check (grouped by Kahn category) and per centre (missingness, follow-up).
The page never contains a patient identifier or registry key: those live in
``quality_failures.csv``, which stays inside the registry's perimeter. This module only turns
the connectors' report into the plain `QualityPage`; the template and its one Jinja
environment live in ``reports``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.quality import QualityReport
from connectors.quality.catalogue import CATEGORIES

NO_CENTRE = "(no centre)"


def _centre_matrix(report: QualityReport) -> dict[str, Any]:
    """Missingness share per (variable, centre), from the completeness.missing.* checks."""
    checks = [r for r in report.results
              if r.id.startswith("completeness.missing.") and r.status != "not_applicable"]
    centres = sorted({c.centre or NO_CENTRE for r in checks for c in r.per_centre})
    rows = []
    for r in checks:
        by_centre = {(c.centre or NO_CENTRE): c for c in r.per_centre}
        rows.append({
            "variable": r.id.removeprefix("completeness.missing."),
            "overall": r.share_failed, "threshold": r.threshold, "status": r.status,
            "cells": [by_centre[c].share_failed if c in by_centre else None for c in centres],
        })
    return {"centres": centres, "rows": rows}


def _follow_up(report: QualityReport) -> list[dict[str, Any]]:
    try:
        stale = report["completeness.follow_up_stale"]
    except KeyError:
        return []
    medians = stale.metrics.get("median_follow_up_days_by_centre", {})
    counts = {(c.centre or NO_CENTRE): c for c in stale.per_centre}
    names = sorted(set(counts) | {m or NO_CENTRE for m in medians})
    out = []
    for name in names:
        median = medians.get("" if name == NO_CENTRE else name)
        c = counts.get(name)
        out.append({
            "centre": name,
            "median_months": None if median is None else median / (365.25 / 12),
            "n_alive": c.n_checked if c else 0, "n_stale": c.n_failed if c else 0,
            "share_stale": c.share_failed if c else None,
        })
    return out


def render_quality_html(report: QualityReport) -> str:
    """The dashboard as one HTML string (inline CSS, no external resources)."""
    from reports.quality_html import QualityPage
    from reports.quality_html import render_quality_html as render

    groups = [
        {"category": cat, "results": [r for r in report.results if r.category == cat]}
        for cat in CATEGORIES
    ]
    return render(QualityPage(report, report.counts, groups, _centre_matrix(report),
                              _follow_up(report)))


def write_quality_html(report: QualityReport, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_quality_html(report), encoding="utf-8")
    return path
