"""``reanalysis.R``: an R program, generated from the typed analysis, that re-derives results.json.

Double programming: a second programmer re-derives every primary number in another language.
`checks_for` lists those numbers from the typed analytic result of the study's endpoint
(`reports.endpoints.TimeToEventResult`: its landmarks, RMST horizon, medians, Cox HR) and
the results.json object each is compared with; `render_reanalysis` writes the R program
(`synthctl/templates/reanalysis.R.j2`) that reads the exported ADaM files, recomputes them with
``survival`` only (``survfit``, ``quantile``, ``coxph`` with the design's variance clustering,
``summary(..., rmean = tau)`` and the infinitesimal-jackknife RMST SE of
``residuals(survfit(..., influence = TRUE), times = tau, type = "sojourn")``), prints a
pass/fail table and exits 1 on any failure. The settings (endpoint, unit, landmarks, tau,
conf type and level, clustering, weights, variable and file names) come from the result, the
spec and `synthctl.adam_metadata` / `synthctl.outdir`, never typed into the template.

An imputed design (``design.missing: impute``) is analysed per imputation (ADSL ``IMPNUM``)
and pooled by Rubin's rules written out in the program (no mice), as
`reports.analysis_mi.pool_results` pools them; `imputation_checks` adds each imputation's HR
and landmark differences.

Bootstrap limits cannot be re-derived deterministically in R: when results.json carries
bootstrap SEs/limits (``analysis.bootstrap > 0``), the checks compare the analytic ones kept
under ``analytic`` and the table says so. E-values, the log-rank test and the sensitivity
analyses are not re-derived.

Tolerances (relative, plus an absolute floor of 1e-10 for values near 0): both sides run the
same algorithms on the same doubles (the XPT files hold the exact IEEE values), so they differ
only by floating-point summation order and results.json's 12 significant digits.
``RTOL_EXACT`` (1e-6) covers the closed-form quantities (KM, Greenwood/IJ SEs, limits,
medians, RMST); ``RTOL_COX`` (1e-5) the Newton-Raphson Cox fit (R stops at a relative
log-likelihood change of 1e-9, i.e. a coefficient error of order 1e-5 relative at most).
The binary endpoint (``glm`` quasi families with a ``sandwich`` variance; ``binom.test``)
is closed-form in the saturated model (IRLS started at the solution, deviance tolerance
1e-12): ``RTOL_EXACT``. The Turnbull landmarks: results.json has the NPMLE (EM with SQUAREM
until one EM step moves S < 1e-10); the R program maximises the same likelihood on survival's
``survfitTurnbull`` support with its own EM + SQUAREM to the same rule (``npmle_surv`` in the
template), not with ``survfit(Surv(left, right, type = "interval2"))`` itself: survfit's EM
stops when S moves < 5e-5 between two steps, some 1e-4 from the NPMLE, and its Aitken steps
make that stopping point unstable: tests/fixtures/turnbull_unstable (the alignment demo's
control arm) shows its S(24 weeks) moving by 9e-4 when the weights are scaled by 1 + 1e-14,
and two R installs gave 0.34900 and 0.34856 on the same XPT file. The two converged EMs
agree to 1e-8 relative on that arm and on tests/fixtures/turnbull_weighted, hence
``RTOL_TURNBULL`` 1e-6 (``RTOL_EXACT``'s).
One patient more or less, a different weight or variance cluster moves these numbers by far
more (1e-3 and up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from connectors import columns as cn
from synthctl import adam_metadata as am
from synthctl import outdir
from synthctl.errors import DataError

RTOL_EXACT = 1e-6
RTOL_COX = 1e-5
RTOL_TURNBULL = 1e-6
ATOL = 1e-10
_PYTHON_RTOL = 1e-9  # the export's own re-computation vs results.json (same code, same data)
TEMPLATE = Path(__file__).with_name("templates") / "reanalysis.R.j2"
ANALYTIC = "analytic"


@dataclass(frozen=True, slots=True)
class Check:
    """One number of results.json that the R program re-derives.

    ``path`` leads into results.json (list indices 0-based); ``key`` names the value the R
    program computes; ``basis`` says what is compared (a point estimate, or the analytic
    SE/limit kept beside a bootstrap one).
    """

    label: str
    path: tuple[str | int, ...]
    key: str
    rtol: float
    basis: str

    def r_path(self) -> str:
        """The path as an R ``list(...)`` (1-based list indices)."""
        parts = [f"{p + 1}L" if isinstance(p, int) else _r_string(p) for p in self.path]
        return "list(" + ", ".join(parts) + ")"


def _r_string(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _get(obj: Any, path: Sequence[str | int]) -> Any:
    for p in path:
        if obj is None:
            return None
        if isinstance(p, int):
            obj = obj[p] if isinstance(obj, list) and p < len(obj) else None
        else:
            obj = obj.get(p) if isinstance(obj, dict) else None
    return obj


def _field(obj: dict, name: str) -> tuple[tuple[str, ...], str]:
    """Where results.json keeps the analytic ``name`` of an estimate object, and the basis."""
    if name != "estimate" and name in (obj.get(ANALYTIC) or {}):
        return (ANALYTIC, name), "analytic (results.json's primary is the bootstrap one)"
    return (name,), "point estimate" if name == "estimate" else "analytic"


def checks_for(typed, design, results: dict, endpoint: str) -> list[Check]:
    """The checks of one time-to-event endpoint, from its typed result and results.json.

    Raises
    ------
    DataError
        If results.json has no object for a quantity the typed result has (not the analysis
        of this folder), or the endpoint is not a time-to-event one.
    """
    comp = getattr(typed, "comparison", None)
    if comp is None:
        raise DataError(f"reanalysis: endpoint {endpoint} is not a time-to-event endpoint; "
                        "only PFS/OS are re-derived")
    ep = ("endpoints", endpoint)
    res = _get(results, ep)
    if not isinstance(res, dict):
        raise DataError(f"{outdir.RESULTS}: no endpoints.{endpoint} object")
    out: list[Check] = []

    def add(obj_path: tuple, fields: Sequence[str], key: str, label: str, rtol: float) -> None:
        obj = _get(results, obj_path)
        if not isinstance(obj, dict):
            raise DataError(f"{outdir.RESULTS}: no {'.'.join(map(str, obj_path))} object")
        for f in fields:
            sub, basis = _field(obj, f)
            out.append(Check(f"{label} {f}", (*obj_path, *sub), f"{key}_{f}", rtol, basis))

    unit = comp.time_unit or ""
    for i, lm in enumerate(comp.landmarks):
        for arm in ("trial", "control", "difference"):
            add((*ep, "landmarks", i, arm), ("estimate", "se", "lower", "upper"),
                f"landmark{i}_{arm}", f"S({lm.time:g} {unit}) {arm}", RTOL_EXACT)
    for arm in ("trial", "control"):
        add((*ep, "median", arm), ("estimate", "lower", "upper"), f"median_{arm}",
            f"median {arm}", RTOL_EXACT)
    hr_fields = ["estimate", "se_log", "lower", "upper", "p_value"]
    if "se_log_naive" in res.get("hazard_ratio", {}):
        hr_fields.append("se_log_naive")
    add((*ep, "hazard_ratio"), hr_fields, "hr", "hazard ratio", RTOL_COX)
    if comp.rmst is not None:
        for arm in ("trial", "control", "difference"):
            add((*ep, "rmst", arm), ("estimate", "se", "lower", "upper"), f"rmst_{arm}",
                f"RMST({comp.rmst.tau:g} {unit}) {arm}", RTOL_EXACT)
    return out


def binary_checks(results: dict, name: str) -> list[Check]:
    """The checks of a binary endpoint (``endpoints.<name>``, e.g. ORR) from results.json:
    proportions per arm, difference, risk and odds ratios and the trial's exact test. Simon
    numbers are not re-derived (see the R program's header)."""
    ep = ("endpoints", name)
    res = _get(results, ep) or {}
    out: list[Check] = []
    key = name.lower()
    for part, fields in (("trial", ("estimate", "se", "lower", "upper")),
                         ("control", ("estimate", "se", "lower", "upper")),
                         ("difference", ("estimate", "se", "lower", "upper")),
                         ("ratio", ("estimate", "se_log", "lower", "upper", "p_value")),
                         ("odds_ratio", ("estimate", "se_log", "lower", "upper", "p_value"))):
        obj = _get(results, (*ep, "proportion", part))
        if not isinstance(obj, dict):
            raise DataError(f"{outdir.RESULTS}: no endpoints.{name}.proportion.{part} object")
        for f in fields:
            if f == "p_value" and ANALYTIC in obj:
                continue  # a bootstrap p-value: not re-derivable
            sub, basis = _field(obj, f)
            out.append(Check(f"{name} {part} {f}", (*ep, "proportion", part, *sub),
                             f"{key}_{part}_{f}", RTOL_EXACT, basis))
    if isinstance(res.get("trial_vs_null"), dict):
        for f in ("estimate", "p_value", "lower", "upper", "lower_one_sided"):
            out.append(Check(f"{name} trial vs null {f}", (*ep, "trial_vs_null", f),
                             f"{key}_null_{f}", RTOL_EXACT, "exact binomial"))
    return out


def turnbull_checks(results: dict, endpoint: str) -> list[Check]:
    """The Turnbull NPMLE landmarks of the endpoint alignment (point estimates: results.json
    has no analytic SE for them)."""
    path = ("endpoints", endpoint, "alignment", "estimates", "turnbull", "landmarks")
    lms = _get(results, path)
    if not isinstance(lms, list):
        raise DataError(f"{outdir.RESULTS}: no {'.'.join(path)} list")
    out = []
    for i, lm in enumerate(lms):
        unit = lm.get("unit") or ""
        for arm in ("trial", "control", "difference"):
            out.append(Check(f"Turnbull S({lm['time']:g} {unit}) {arm} estimate",
                             (*path, i, arm, "estimate"), f"turnbull{i}_{arm}_estimate",
                             RTOL_TURNBULL, "point estimate"))
    return out


def imputation_checks(results: dict, endpoint: str) -> list[Check]:
    """An imputed design's per-imputation numbers (results.json ``imputation.per_imputation``:
    each imputation's statistics by label, the log HR and the landmark differences), checked
    before the pooled ones."""
    from reports.endpoints import StatKey

    path = ("endpoints", endpoint, "imputation", "per_imputation")
    per = _get(results, path)
    if not isinstance(per, list):
        raise DataError(f"{outdir.RESULTS}: no {'.'.join(path)} list")
    landmarks = _get(results, ("endpoints", endpoint, "landmarks")) or []
    out = []
    for k in range(len(per)):
        out.append(Check(f"imputation {k + 1} log hazard ratio",
                         (*path, k, StatKey(endpoint, "log_hr").label),
                         f"imp{k + 1}_log_hr", RTOL_COX, "point estimate"))
        for i, lm in enumerate(landmarks):
            label = StatKey(endpoint, "landmark", "difference", float(lm["time"])).label
            out.append(Check(f"imputation {k + 1} S({lm['time']:g}) difference",
                             (*path, k, label),
                             f"imp{k + 1}_landmark{i}_difference_estimate", RTOL_EXACT,
                             "point estimate"))
    return out


def verify_checks(checks: Sequence[Check], typed, results: dict,
                  extra: dict | None = None) -> None:
    """The export's own re-computation must give results.json's analytic numbers.

    Raises
    ------
    DataError
        Naming the numbers that differ: the outcomes read now are not those analysed (a
        registry outcome table or a trial/flat file changed since the analysis).
    """
    mine = {"endpoints": {typed.name: typed.to_dict()}}
    for name, obj in ((extra or {}).get("endpoints") or {}).items():
        mine["endpoints"][name] = {**mine["endpoints"].get(name, {}), **obj}
    bad = []
    for c in checks:
        expected = _get(results, c.path)
        got = _get(mine, tuple(p for p in c.path if p != ANALYTIC))
        if not _close(got, expected, _PYTHON_RTOL):
            bad.append(f"{c.label}: results.json {expected!r}, now {got!r}")
    if bad:
        raise DataError(
            "export-adam refused: the outcomes read now do not reproduce "
            f"{outdir.RESULTS} ({'; '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}); the "
            "registry's outcome tables or the trial/flat files changed since the analysis: "
            "run `synthctl analyze` again")


def _close(a: Any, b: Any, rtol: float) -> bool:
    fa = isinstance(a, int | float) and math.isfinite(a)
    fb = isinstance(b, int | float) and math.isfinite(b)
    if not fa or not fb:
        return not fa and not fb
    return abs(a - b) <= ATOL + rtol * abs(b)


def render_reanalysis(typed, design, checks: Sequence[Check], spec, *,
                      binary: str | None = None, null_rate: float | None = None,
                      turnbull: bool = False, multi_line: bool = False,
                      imputations: int = 0) -> str:
    """The R program's text (see the module docstring). ``binary``: the binary endpoint to
    re-derive from the ADRS export (``null_rate``: its trial-vs-null test's H0 rate, None when
    results.json has no such test); ``turnbull``: re-derive the alignment's Turnbull
    landmarks from ADTTE ``AVALLB``; ``multi_line``: rows keyed by USUBJID + LINESEQ;
    ``imputations``: m of an imputed design (analyse each ``IMPNUM``, pool by Rubin's rules)."""
    comp = typed.comparison
    a = spec.analysis
    yields = spec.design.yields
    by_patient = design.patient_col is not None
    if by_patient != multi_line:
        raise DataError("reanalysis: the analysis clusters on the patient exactly when "
                        "patients contribute several rows (index lines)")
    # the one clustering rule (reports.analysis.designed_frame): patient, else matched set
    cluster = (am.USUBJID if by_patient else
               am.MATCHSET if design.cluster_col is not None and yields == "sets" else None)
    try:
        version = metadata.version("synthctl")
    except metadata.PackageNotFoundError:
        version = "unknown"
    env = Environment(loader=FileSystemLoader(TEMPLATE.parent), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    return env.get_template(TEMPLATE.name).render(
        version=version, study=spec.study.name, endpoint=typed.name,
        unit=comp.time_unit or "days", days_per_unit=repr(cn.DAYS_PER_UNIT[a.landmark_unit]),
        landmarks=", ".join(repr(float(lm.time)) for lm in comp.landmarks),
        tau="NULL" if comp.rmst is None else repr(float(comp.rmst.tau)),
        conf_type=comp.trial_curve.conf_type, conf_level=repr(float(comp.conf_level)),
        yields=yields, cluster=cluster, trial=cn.TRIAL,
        adsl=outdir.ADSL_XPT, adtte=outdir.ADTTE_XPT, results=outdir.RESULTS,
        v=am, checks=checks, rtol_exact=RTOL_EXACT, rtol_cox=RTOL_COX, atol=ATOL,
        bootstrap=a.bootstrap, km_cluster=am.USUBJID if by_patient else None,
        key=[am.USUBJID, am.LINESEQ] if multi_line else [am.USUBJID],
        binary=binary, binary_cluster=cluster,  # the binary endpoint: the same rule
        adrs=outdir.ADRS_XPT,
        responder=binary or "", turnbull=turnbull, rtol_turnbull=RTOL_TURNBULL,
        null_rate=None if null_rate is None else repr(float(null_rate)),
        simon=a.simon is not None, imputations=imputations)
