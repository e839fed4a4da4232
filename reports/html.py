"""``report.html``: one self-contained page (figures embedded, no external assets, print CSS).

Pure presentation: the caller (the study runner) hands over plain data (`ReportContent`):
counts, the attrition table, the baseline table, results.json's endpoint objects, figures as
SVG/PNG bytes, the methods paragraph, warnings and the manifest. Nothing here reads a file or
knows patient identifiers; the runner never passes any.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

_MIME = {"svg": "image/svg+xml", "png": "image/png"}


@dataclass(frozen=True, slots=True)
class ReportContent:
    """Everything the study report shows.

    Attributes
    ----------
    title : str
        Study name.
    summary : mapping of str to str
        Study summary rows (label -> value), e.g. source, design, endpoint.
    counts : mapping
        results.json ``counts``.
    attrition : pandas.DataFrame
        step, criterion, n_remaining, n_excluded, reason (registry pool, in order).
    baseline : pandas.DataFrame
        variable, trial, pool, control, smd_before, smd_after (formatted strings or floats).
    endpoint_name : str
        "PFS" or "OS".
    endpoint : mapping
        results.json ``endpoints[endpoint_name]``.
    null_rate : float or None
        The trial design's null rate at the first landmark (probability).
    sensitivity : mapping
        results.json ``sensitivity``.
    figures : mapping of str to (bytes, str)
        name -> (content, "svg" | "png"); names used: love_plot, ps_overlap, km.
    methods : str
        The methods paragraph (plain text).
    warnings : sequence of mapping
        Each with ``stage``, ``kind`` and ``message``.
    manifest : mapping
        manifest.json content (no passwords: the runner masks them).
    balance_passed : bool
        Whether the design met its balance threshold.
    allow_redesign : bool
        Whether ``--allow-redesign`` was used.
    """

    title: str
    summary: Mapping[str, str]
    counts: Mapping[str, Any]
    attrition: pd.DataFrame
    baseline: pd.DataFrame
    endpoint_name: str
    endpoint: Mapping[str, Any]
    null_rate: float | None = None
    sensitivity: Mapping[str, Any] = field(default_factory=dict)
    figures: Mapping[str, tuple[bytes, str]] = field(default_factory=dict)
    methods: str = ""
    warnings: Sequence[Mapping[str, str]] = ()
    manifest: Mapping[str, Any] = field(default_factory=dict)
    balance_passed: bool = True
    allow_redesign: bool = False


def render_report(content: ReportContent, path: str | Path | None = None) -> str:
    """Render the report; write it to ``path`` when given. Returns the HTML text."""
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["pct"] = fmt_pct
    env.filters["num"] = fmt_num
    from reports.alignment_html import alignment_view

    html = env.get_template("report.html.j2").render(
        c=content,
        figures={k: _data_uri(*v) for k, v in content.figures.items()},
        flow=Markup(attrition_flow_svg(content.attrition, content.counts)),
        results=results_rows(content.endpoint, content.null_rate),
        estimate_methods=estimate_methods(content.endpoint),
        sensitivity=sensitivity_rows(content.sensitivity),
        alignment=alignment_view(content.endpoint),
        baseline=content.baseline.to_dict(orient="records"),
        attrition=content.attrition.to_dict(orient="records"),
        manifest_json=json.dumps(content.manifest, indent=2, sort_keys=True),
    )
    if path is not None:
        Path(path).write_text(html, encoding="utf-8")
    return html


def _data_uri(data: bytes, kind: str) -> str:
    return f"data:{_MIME[kind]};base64,{base64.b64encode(data).decode('ascii')}"


def _ok(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def fmt_pct(x: Any, digits: int = 1) -> str:
    """A probability as a percentage (``"NA"`` when missing)."""
    return f"{100 * x:.{digits}f}%" if _ok(x) else "NA"


def fmt_num(x: Any, digits: int = 2) -> str:
    """A number with fixed decimals (``"NA"`` when missing)."""
    return f"{x:.{digits}f}" if _ok(x) else "NA"


def _ci(est: Mapping | None, fmt=fmt_pct) -> str:
    if not est or not _ok(est.get("estimate")):
        reason = (est or {}).get("reason")
        return f"NA ({reason})" if reason else "NA"
    lo, hi = est.get("lower"), est.get("upper")
    if _ok(lo) or _ok(hi):
        return f"{fmt(est['estimate'])} ({fmt(lo)} to {fmt(hi)})"
    return fmt(est["estimate"])


def results_rows(endpoint: Mapping[str, Any], null_rate: float | None) -> list[dict[str, str]]:
    """Rows of the results table: quantity, trial, synthetic control, comparison."""
    rows: list[dict[str, str]] = []
    for lm in endpoint.get("landmarks", []) or []:
        label = f"{_fmt_g(lm.get('time'))} {lm.get('unit', '')}"
        rows.append({"quantity": f"Rate at {label}", "trial": _ci(lm.get("trial")),
                     "control": _ci(lm.get("control")),
                     "comparison": "difference " + _ci(lm.get("difference"), _pct_points)})
        if null_rate is not None:
            rows.append({"quantity": f"Rate at {label} vs design null rate {fmt_pct(null_rate)}",
                         "trial": _vs_null(lm.get("trial"), null_rate),
                         "control": _vs_null(lm.get("control"), null_rate),
                         "comparison": "H1: rate above the trial design's null rate "
                                       "(Simon H0); log-scale Wald test"})
    med = endpoint.get("median") or {}
    if med:
        rows.append({"quantity": "Median", "trial": _ci(med.get("trial"), _fmt_time),
                     "control": _ci(med.get("control"), _fmt_time), "comparison": ""})
    hr = endpoint.get("hazard_ratio") or {}
    if hr:
        p = hr.get("p_value")
        rows.append({"quantity": "Hazard ratio (trial vs control)", "trial": "", "control": "",
                     "comparison": _ci(hr, fmt_num) + (f", p = {p:.3g}" if _ok(p) else "")})
    rmst = endpoint.get("rmst") or {}
    if rmst:
        label = f"RMST to {_fmt_g(rmst.get('tau'))} {rmst.get('unit', '')}"
        rows.append({"quantity": label, "trial": _ci(rmst.get("trial"), _fmt_time),
                     "control": _ci(rmst.get("control"), _fmt_time),
                     "comparison": "difference " + _ci(rmst.get("difference"), _fmt_time)})
    return rows


def estimate_methods(endpoint: Mapping[str, Any]) -> list[str]:
    """The distinct ``method`` texts of the endpoint's estimates (how SEs/limits were got)."""
    found: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, Mapping):
            m = obj.get("method")
            if isinstance(m, str) and m and m not in found:
                found.append(m)
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk({k: endpoint.get(k) for k in ("landmarks", "median", "hazard_ratio", "rmst")})
    return found


def _pct_points(x: Any) -> str:
    return f"{100 * x:+.1f} pts" if _ok(x) else "NA"


def _fmt_g(x: Any) -> str:
    return f"{x:g}" if _ok(x) else "NA"


def _fmt_time(x: Any) -> str:
    return f"{x:.1f}" if _ok(x) else "NA"


def _vs_null(est: Mapping | None, null_rate: float) -> str:
    """The one-sided test of S(t) > null rate when the estimate carries one, else the CI."""
    if not est:
        return "NA"
    test = est.get("null_test") or {}
    if _ok(test.get("p_value")):
        return f"one-sided p = {test['p_value']:.3g}"
    if not _ok(est.get("lower")) or not _ok(est.get("upper")):
        return "NA"
    if est["lower"] > null_rate:
        return "above (CI excludes it)"
    if est["upper"] < null_rate:
        return "below (CI excludes it)"
    return "CI includes it"


def sensitivity_rows(sensitivity: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per sensitivity analysis: name, description, landmark difference, HR."""
    rows = []
    for name, entry in sensitivity.items():
        if not isinstance(entry, Mapping):
            continue
        if "hazard_ratio" in entry or "landmarks" in entry:
            lms = entry.get("landmarks") or [{}]
            rows.append({
                "name": name.replace("_", " "),
                "description": str(entry.get("description", "")),
                "control": _ci(lms[0].get("control")),
                "difference": _ci(lms[0].get("difference"), _pct_points),
                "hr": _ci(entry.get("hazard_ratio"), fmt_num),
            })
        elif name == "evalue" and _ok(entry.get("point")):
            rows.append({"name": "E-value", "description": (
                f"an unmeasured confounder associated with both arm and {entry.get('measure', '')}"
                f" by a risk ratio of {entry['point']:.2f} each could explain away the hazard "
                f"ratio; {fmt_num(entry.get('ci'))} would move its CI to include 1"),
                "control": "", "difference": "", "hr": ""})
        else:
            text = ", ".join(f"{k}: {fmt_num(v) if _ok(v) else escape(str(v))}"
                             for k, v in entry.items() if not isinstance(v, Mapping | list))
            rows.append({"name": name.replace("_", " "), "description": text, "control": "",
                         "difference": "", "hr": ""})
    return rows


def attrition_flow_svg(attrition: pd.DataFrame, counts: Mapping[str, Any]) -> str:
    """A CONSORT-style flow diagram (inline SVG): population boxes, exclusions to the side."""
    box_w, side_w, gap, x0 = 330, 330, 18, 10
    parts: list[str] = []
    y = 10
    rows = attrition.to_dict(orient="records")

    def box(x: int, y: int, w: int, lines: list[str], cls: str) -> int:
        h = 14 + 16 * len(lines)
        parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" class="{cls}"/>')
        for i, line in enumerate(lines):
            parts.append(f'<text x="{x + 8}" y="{y + 20 + 16 * i}">{escape(line)}</text>')
        return h

    first = rows[0] if rows else {"criterion": "candidates", "n_remaining": 0, "n_excluded": 0}
    n0 = int(first["n_remaining"]) + int(first["n_excluded"])
    y += box(x0, y, box_w, _wrap(f"{first['criterion']}: n = {n0}"), "pop")
    spine_top, cx = y, x0 + box_w // 2
    for row in rows[1:]:
        if row["criterion"] == "final" or int(row["n_excluded"]) == 0:
            continue
        y += gap
        crit = f"Excluded: {row['criterion']}"
        reason = str(row.get("reason") or "")
        lines = [*_wrap(crit), *_wrap(f"({reason}): n = {row['n_excluded']}")]
        h = box(x0 + box_w + 20, y, side_w, lines, "excl")
        mid = y + h // 2
        parts.append(f'<line x1="{cx}" y1="{mid}" x2="{x0 + box_w + 20}" y2="{mid}" '
                     'class="arrow" marker-end="url(#head)"/>')
        y += h
    y += gap
    parts.append(f'<line x1="{cx}" y1="{spine_top}" x2="{cx}" y2="{y}" class="arrow" '
                 'marker-end="url(#head)"/>')
    final = int(rows[-1]["n_remaining"]) if rows else 0
    y += box(x0, y, box_w, [f"Eligible registry pool: n = {final}"], "pop")
    parts.append(f'<line x1="{cx}" y1="{y}" x2="{cx}" y2="{y + gap}" class="arrow" '
                 'marker-end="url(#head)"/>')
    y += gap
    ess = counts.get("control_ess")
    lines = [f"Synthetic control: n = {counts.get('control_selected', 'NA')}"
             + (f", ESS = {ess:.1f}" if _ok(ess) else "")]
    trial = [f"Trial arm: n = {counts.get('trial', 'NA')}, "
             f"analysed {counts.get('trial_selected', 'NA')}"]
    h = box(x0, y, box_w, lines, "final")
    box(x0 + box_w + 20, y, side_w, trial, "trial")
    y += h + 10
    width = x0 + box_w + 20 + side_w + 10
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="flow" viewBox="0 0 {width} {y}" '
            f'width="{width}" height="{y}" role="img" aria-label="attrition flow diagram">'
            '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            'fill="#555"/></marker></defs>' + "".join(parts) + "</svg>")


def _wrap(text: str, width: int = 44) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return [*lines, cur] if cur else lines
