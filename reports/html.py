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
from markupsafe import Markup

from reports.templating import environment

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
    design_kind : {"weighted", "matched"}
        How the synthetic control is formed (a matched design is not called "weighted").
    variance_ratios : sequence of mapping
        design.json balance rows (``covariate``, ``variance_ratio_before``/``_after``) of the
        continuous covariates; ratios outside `VARIANCE_RATIO_BAND` are flagged.
    secondary : mapping of str to mapping
        The other endpoints' results.json objects (name -> object), shown after the primary
        one; the Kaplan-Meier figure goes with the time-to-event endpoint ``km_endpoint``.
    km_endpoint : str or None
        The endpoint the ``km`` figure shows (default: the primary one).
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
    design_kind: str = "weighted"
    variance_ratios: Sequence[Mapping[str, Any]] = ()
    secondary: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    km_endpoint: str | None = None


#: variance ratios (control / trial) outside this band are flagged (Austin 2009; Stuart 2010)
VARIANCE_RATIO_BAND = (0.5, 2.0)


def render_report(content: ReportContent, path: str | Path | None = None) -> str:
    """Render the report; write it to ``path`` when given. Returns the HTML text."""
    from reports.alignment_html import alignment_view

    html = environment().get_template("report.html.j2").render(
        pct=fmt_pct, num=fmt_num,
        c=content,
        figures={k: _data_uri(*v) for k, v in content.figures.items()},
        flow=Markup(attrition_flow_svg(content.attrition, content.counts)),
        results=results_rows(content.endpoint, content.null_rate),
        estimate_methods=estimate_methods(content.endpoint),
        alignment=alignment_view(content.endpoint),
        headline=headline(content.endpoint, content.null_rate),
        secondary=[{"name": name, "rows": results_rows(ep, None),
                    "methods": estimate_methods(ep)}
                   for name, ep in content.secondary.items()],
        km_endpoint=content.km_endpoint or content.endpoint_name,
        variance_ratios=variance_ratio_rows(content.variance_ratios),
        sensitivity=sensitivity_rows(content.sensitivity,
                                     (content.endpoint.get("evalues") or {}).get("hazard_ratio")),
        baseline=[{k: _no_negative_zero(v) for k, v in r.items()}
                  for r in content.baseline.to_dict(orient="records")],
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


def _no_negative_zero(text: Any) -> Any:
    """``-0.000`` (a tiny negative number rounded) printed as ``0.000``."""
    if isinstance(text, str) and text.startswith("-") and not text.strip("-0.%+ ptsk"):
        return text[1:]
    return text


def fmt_pct(x: Any, digits: int = 1) -> str:
    """A probability as a percentage (``"NA"`` when missing)."""
    return _no_negative_zero(f"{100 * x:.{digits}f}%") if _ok(x) else "NA"


def fmt_num(x: Any, digits: int = 2) -> str:
    """A number with fixed decimals (``"NA"`` when missing)."""
    return _no_negative_zero(f"{x:.{digits}f}") if _ok(x) else "NA"


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
    if "proportion" in endpoint:
        return binary_rows(endpoint)
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
        unit = f" ({med['unit']})" if med.get("unit") else ""
        rows.append({"quantity": f"Median{unit}", "trial": _ci(med.get("trial"), _fmt_time),
                     "control": _ci(med.get("control"), _fmt_time), "comparison": ""})
    hr = endpoint.get("hazard_ratio") or {}
    if hr:
        p = hr.get("p_value")
        rows.append({"quantity": "Hazard ratio (trial vs control)", "trial": "", "control": "",
                     "comparison": _ci(hr, fmt_num) + (f", p = {p:.3g}" if _ok(p) else "")})
    rmst = endpoint.get("rmst") or {}
    if rmst:
        unit = rmst.get("unit") or ""
        label = f"RMST to {_fmt_g(rmst.get('tau'))} {unit}" + (f" ({unit})" if unit else "")
        rows.append({"quantity": label, "trial": _ci(rmst.get("trial"), _fmt_time),
                     "control": _ci(rmst.get("control"), _fmt_time),
                     "comparison": "difference " + _ci(rmst.get("difference"), _fmt_time)})
    return rows


def binary_rows(endpoint: Mapping[str, Any]) -> list[dict[str, str]]:
    """Rows of a binary endpoint (``proportion``, ``trial_vs_null``, ``simon``)."""
    p = endpoint.get("proportion") or {}
    n, r = p.get("n") or {}, p.get("responders") or {}
    rows = [{"quantity": "Proportion (weighted)", "trial": _ci(p.get("trial")),
             "control": _ci(p.get("control")),
             "comparison": "difference " + _ci(p.get("difference"), _pct_points)},
            {"quantity": "Responders / analysed (unweighted)",
             "trial": f"{r.get('trial', 'NA')} / {n.get('trial', 'NA')}",
             "control": f"{r.get('control', 'NA')} / {n.get('control', 'NA')}",
             "comparison": ""},
            {"quantity": "Risk ratio (trial vs control)", "trial": "", "control": "",
             "comparison": _ci(p.get("ratio"), fmt_num)},
            {"quantity": "Odds ratio (trial vs control)", "trial": "", "control": "",
             "comparison": _ci(p.get("odds_ratio"), fmt_num)}]
    test = endpoint.get("trial_vs_null") or {}
    if test:
        rows.append({"quantity": f"Trial vs null rate {fmt_pct(test.get('null_rate'))}",
                     "trial": _binom_text(test), "control": "",
                     "comparison": "exact one-sided binomial test, Clopper-Pearson limits"})
    simon = endpoint.get("simon") or {}
    if simon:
        rows.append({"quantity": "Simon two-stage analysis", "trial": _simon_text(simon),
                     "control": "", "comparison": str(simon.get("method", ""))})
    return rows


def _binom_text(test: Mapping[str, Any]) -> str:
    p = test.get("p_value")
    return (f"{fmt_pct(test.get('estimate'))} ({fmt_pct(test.get('lower'))} to "
            f"{fmt_pct(test.get('upper'))}), one-sided p = {p:.3g}" if _ok(p) else "NA")


def _simon_text(simon: Mapping[str, Any]) -> str:
    if simon.get("error"):
        return f"not available ({simon['error']})"
    p = simon.get("p_value")
    return (f"{simon.get('decision', '')}: {simon.get('responses', 'NA')} of "
            f"{simon.get('n_analysed', 'NA')} (design {simon.get('r1')}/{simon.get('n1')}, "
            f"{simon.get('r')}/{simon.get('n')})" + (f", p = {p:.3g}" if _ok(p) else ""))


def _binary_headline(endpoint: Mapping[str, Any]) -> dict[str, str]:
    p = endpoint.get("proportion") or {}
    test = endpoint.get("trial_vs_null") or {}
    null = ""
    if test:
        null = f"H0 {fmt_pct(test.get('null_rate'))}: {_binom_text(test)}"
    simon = endpoint.get("simon") or {}
    if simon and not simon.get("error"):
        null += ("; " if null else "") + "Simon: " + _simon_text(simon)
    method = (p.get("difference") or {}).get("method", "")
    return {
        "title": "", "ratio_label": "Risk ratio (95% CI)",
        "trial": _ci(p.get("trial")), "control": _ci(p.get("control")),
        "difference": _ci(p.get("difference"), _pct_points), "hr": _ci(p.get("ratio"), fmt_num),
        "null": null,
        "note": ("Proportions weighted by the design; difference in percentage points. "
                 f"Intervals: {method}." if method else ""),
    }


def headline(endpoint: Mapping[str, Any], null_rate: float | None) -> dict[str, str] | None:
    """The headline box: the first landmark's rates, their difference, the HR and the trial's
    rate against the design's null rate (Simon H0); for a binary endpoint the proportions,
    difference, risk ratio, exact test and Simon decision; None without a landmark."""
    if "proportion" in endpoint:
        return _binary_headline(endpoint)
    lms = endpoint.get("landmarks") or []
    if not lms:
        return None
    lm = lms[0]
    hr = endpoint.get("hazard_ratio") or {}
    null = ""
    if null_rate is not None:
        null = f"H0 {fmt_pct(null_rate)}: {_vs_null(lm.get('trial'), null_rate)}"
    method = (lm.get("difference") or {}).get("method", "")
    return {
        "title": f" at {_fmt_g(lm.get('time'))} {lm.get('unit') or ''}".rstrip(),
        "ratio_label": "Hazard ratio (95% CI)", "trial": _ci(lm.get("trial")),
        "control": _ci(lm.get("control")),
        "difference": _ci(lm.get("difference"), _pct_points), "hr": _ci(hr, fmt_num),
        "null": null,
        "note": ("Rates are Kaplan-Meier estimates at the landmark; difference in percentage "
                 f"points. Intervals: {method}." if method else ""),
    }


def variance_ratio_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Variance ratios before/after, flagged outside `VARIANCE_RATIO_BAND`."""
    lo, hi = VARIANCE_RATIO_BAND
    out = []
    for r in rows:
        after = r.get("variance_ratio_after")
        flag = (f"outside {lo:g}-{hi:g}" if _ok(after) and not lo <= after <= hi else "")
        out.append({"covariate": str(r.get("covariate", "")),
                    "before": fmt_num(r.get("variance_ratio_before")),
                    "after": fmt_num(after), "flag": flag})
    return out


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

    walk({k: endpoint.get(k) for k in ("landmarks", "median", "hazard_ratio", "rmst",
                                       "proportion")})
    return found


def _pct_points(x: Any) -> str:
    if not _ok(x):
        return "NA"
    text = f"{100 * x:+.1f} pts"
    return "0.0 pts" if text in ("+0.0 pts", "-0.0 pts") else text


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


def sensitivity_rows(sensitivity: Mapping[str, Any],
                     evalue: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    """One row per sensitivity analysis: name, description, landmark difference, HR; then
    the E-value of the primary hazard ratio (``endpoints.<name>.evalues.hazard_ratio``)."""
    rows = []
    for name, entry in sensitivity.items():
        if not isinstance(entry, Mapping):
            continue
        if "proportion" in entry:
            p = entry["proportion"]
            rows.append({
                "name": name.replace("_", " "),
                "description": str(entry.get("description", "")),
                "control": _ci(p.get("control")),
                "difference": _ci(p.get("difference"), _pct_points),
                "hr": _ci(p.get("ratio"), fmt_num),
            })
        elif "hazard_ratio" in entry or "landmarks" in entry:
            lms = entry.get("landmarks") or [{}]
            rows.append({
                "name": name.replace("_", " "),
                "description": str(entry.get("description", "")),
                "control": _ci(lms[0].get("control")),
                "difference": _ci(lms[0].get("difference"), _pct_points),
                "hr": _ci(entry.get("hazard_ratio"), fmt_num),
            })
        elif entry.get("status") == "not_estimable":
            rows.append({"name": name.replace("_", " "), "description": (
                f"{entry.get('description', '')}: not estimable ({entry.get('reason', '')})"),
                "control": "", "difference": "", "hr": ""})
        else:
            text = ", ".join(f"{k}: {fmt_num(v) if _ok(v) else escape(str(v))}"
                             for k, v in entry.items() if not isinstance(v, Mapping | list))
            rows.append({"name": name.replace("_", " "), "description": text, "control": "",
                         "difference": "", "hr": ""})
    if evalue and _ok(evalue.get("point")):
        rows.append({"name": "E-value", "description": (
            f"an unmeasured confounder associated with both arm and {evalue.get('measure', '')}"
            f" by a risk ratio of {evalue['point']:.2f} each could explain away the hazard "
            f"ratio; {fmt_num(evalue.get('ci'))} would move its CI to include 1"),
            "control": "", "difference": "", "hr": ""})
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
