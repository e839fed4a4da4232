"""Render a `QualityReport` as a self-contained HTML dashboard (``quality.html``).

Counts only: per check (grouped by Kahn category) and per centre (missingness, follow-up).
The page never contains a patient identifier or registry key: those live in
``quality_failures.csv``, which stays inside the registry's perimeter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from connectors.quality import QualityReport
from connectors.quality.catalogue import CATEGORIES

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("synthctl", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)
NO_CENTRE = "(no centre)"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


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
    groups = [
        {"category": cat, "results": [r for r in report.results if r.category == cat]}
        for cat in CATEGORIES
    ]
    template = _ENV.get_template("quality.html.j2")
    return template.render(
        report=report, counts=report.counts, groups=groups, matrix=_centre_matrix(report),
        follow_up=_follow_up(report), pct=_pct,
    )


def write_quality_html(report: QualityReport, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_quality_html(report), encoding="utf-8")
    return path
