"""The report's "Endpoint alignment" section: plain rows from ``endpoints.PFS.alignment``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reports.html import _ci, _fmt_g, _ok, _pct_points, fmt_num

VERSION_LABELS = {
    "right_point": "Standard (right point: the scan that found the progression)",
    "midpoint": "Midpoint of the progression interval",
    "left_point": "Left point (last progression-free scan)",
    "turnbull": "Turnbull NPMLE (interval-censored)",
    "harmonised": "Harmonised to the common grid (multiple imputation)",
}


def _gap(g: Mapping[str, Any] | None) -> str:
    if not g:
        return "NA"
    if g.get("reason"):
        return f"NA ({g['reason']})"
    return (f"{fmt_num(g.get('median'), 0)} days (IQR {fmt_num(g.get('q1'), 0)}-"
            f"{fmt_num(g.get('q3'), 0)}; n = {g.get('n')})")


def _shift(s: Any) -> str:
    if not _ok(s):
        return "not reached within the searched range"
    return f"{s:+.1f} days ({'later' if s > 0 else 'earlier'} registry progressions)"


def alignment_view(endpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """Rows for the template, or None when the endpoint has no alignment block."""
    al = endpoint.get("alignment")
    if not isinstance(al, Mapping):
        return None
    grid = al.get("grid") or {}
    view: dict[str, Any] = {
        "grid": f"every {grid.get('every', 'NA'):g} {grid.get('unit', '')}"
        if _ok(grid.get("every")) else "NA",
        "reason": al.get("reason"),
        "source": al.get("source"),
        "warning": al.get("warning"),
        "gaps": {arm: _gap((al.get("assessment_gaps") or {}).get(arm))
                 for arm in ("trial", "control")},
        "versions": [],
        "tipping": [],
    }
    estimates = al.get("estimates") or {}
    for key in sorted(estimates, key=lambda k: list(VERSION_LABELS).index(k)
                      if k in VERSION_LABELS else len(VERSION_LABELS)):
        est = estimates[key]
        lms = est.get("landmarks") or [{}]
        lm = lms[0]
        rmst = est.get("rmst") or {}
        view["versions"].append({
            "name": VERSION_LABELS.get(key, key),
            "landmark": f"{_fmt_g(lm.get('time'))} {lm.get('unit') or ''}",
            "trial": _ci(lm.get("trial")),
            "control": _ci(lm.get("control")),
            "difference": _ci(lm.get("difference"), _pct_points),
            "hr": _ci(est.get("hazard_ratio"), fmt_num) if "hazard_ratio" in est else "-",
            "rmst": _ci(rmst.get("difference"), fmt_num) if rmst else "-",
        })
    tip = al.get("tipping_point") or {}
    unit = next((v["landmarks"][0].get("unit") or "" for v in estimates.values()
                 if v.get("landmarks")), "")
    for row in tip.get("landmarks") or []:
        view["tipping"].append({"what": f"difference at {row['time']:g} {unit}: the "
                                        f"{row['limit']} 95% limit reaches 0",
                                "shift": _shift(row["shift_days"])})
    hr = tip.get("hazard_ratio")
    if hr:
        view["tipping"].append({"what": f"hazard ratio: the {hr['limit']} 95% limit reaches 1",
                                "shift": _shift(hr["shift_days"])})
    return view
