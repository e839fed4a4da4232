"""``quality.html``: the registry extract's data-quality dashboard (pure rendering).

The caller hands a plain object: the per-check results (attributes ``id``, ``category``,
``description``, ``severity``, ``threshold``, ``n_checked``, ``n_failed``, ``share_failed``,
``status``...), the counts, the categories in display order, the missingness matrix per centre
and the follow-up per centre (`QualityPage`). Counts only: the page never contains a patient
identifier or registry key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reports.templating import environment


@dataclass(frozen=True, slots=True)
class QualityPage:
    """What ``quality.html`` shows.

    ``report`` is the quality report object the template reads (``report.failure_cap`` and
    the like); ``groups`` ``[{category, results}]`` in display order; ``matrix``
    ``{centres, rows: [{variable, overall, threshold, status, cells}]}`` (shares of missing
    values per centre); ``follow_up`` ``[{centre, median_months, n_alive, n_stale,
    share_stale}]``.
    """

    report: Any
    counts: Mapping[str, Any]
    groups: Sequence[Mapping[str, Any]]
    matrix: Mapping[str, Any]
    follow_up: Sequence[Mapping[str, Any]] = field(default_factory=list)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def render_quality_html(page: QualityPage) -> str:
    """The dashboard as one HTML string (inline CSS, no external resources)."""
    return environment().get_template("quality.html.j2").render(
        report=page.report, counts=page.counts, groups=page.groups, matrix=page.matrix,
        follow_up=page.follow_up, pct=_pct,
    )
