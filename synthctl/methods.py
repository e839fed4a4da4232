"""The report's methods paragraph and study summary, written from the spec (never by hand)."""

from __future__ import annotations

from typing import Any

from connectors.columns import COVARIATE_LABELS
from matching.methods import VARIANCE_CLUSTER, describe_method
from synthctl.manifest import mask_url
from synthctl.spec import StudySpec


def describe_design(spec: StudySpec) -> str:
    """One phrase for the design, from the method table (`matching.methods`)."""
    d = spec.design
    return describe_method(d.method, d.estimand, d.method_options())


_VARIANCE_TEXT = {
    "match_id": ", clustered on matched sets",
    "row": "",
}


def describe_imputation(spec: StudySpec, results: dict[str, Any]) -> str:
    """Sentences on multiple imputation (``design.missing: impute``); empty otherwise."""
    d = spec.design
    if d.missing != "impute":
        return ""
    im = d.imputation_model
    counts = (results.get("imputation") or {}).get("imputed") or {}
    listing = "; ".join(f"{c}: {n['trial']} trial and {n['control']} control values imputed"
                        for c, n in counts.items())
    aux = f" and the auxiliary variables {', '.join(im.auxiliary)}" if im.auxiliary else ""
    model = "predictive mean matching" if im.numeric == "pmm" else "Bayesian linear regression"
    how = ("within each imputed data set (propensity score, matching or weighting and balance "
           "re-estimated in each)" if im.approach == "within" else
           "with the propensity score averaged across imputations (the 'across' approach, "
           "weaker than 'within')")
    return (f" Missing covariate values were multiply imputed ({d.imputations} data sets, "
            f"chained equations with {model} for numbers and logistic or multinomial "
            f"regression for categories, {im.max_iter} iterations) from the covariates{aux} "
            f"and the arm; the imputation model never saw an outcome. The design was built "
            f"{how}; balance is the mean over imputations, and the outcome analyses of the "
            f"imputed designs were combined by Rubin's rules (survival probabilities on the "
            f"complementary log-log scale, the hazard ratio on the log scale, Barnard-Rubin "
            f"degrees of freedom)" + (f" ({listing})." if listing else ".")
            + (f" With the bootstrap, every replicate was imputed {d.imputations} times and the "
               "design re-run on each (bootstrap then impute, Schomaker and Heumann 2018); its "
               "percentile intervals are primary and Rubin's intervals are reported as analytic."
               if spec.analysis.bootstrap > 0 else "")
            + (" As a sensitivity analysis, run after the design was locked, the covariates were "
               "re-imputed with the outcome (event indicator and Nelson-Aalen cumulative hazard; "
               "White and Royston 2009) as an imputation predictor and the design re-run within "
               "each imputation." if spec.analysis.imputation_with_outcome else "")
            + " The Kaplan-Meier figure shows the mean over imputations of the survival curves.")


_MISSING = {
    "error": "No design covariate had missing values (the design refuses them).",
    "indicator": "Missing covariate values were handled with missing-value indicators in the "
                 "propensity model (and the balance table).",
    "complete_case": "Patients with a missing design covariate were excluded (complete cases).",
}


def _missing_text(spec: StudySpec, results: dict[str, Any]) -> str:
    """The methods sentence(s) on missing covariates (multiple imputation: its own)."""
    if spec.design.missing == "impute":
        return describe_imputation(spec, results).strip()
    return _MISSING[spec.design.missing]


def covariate_labels(spec: StudySpec) -> dict[str, str]:
    """covariate -> readable label: the spec's ``labels:``, else
    `connectors.columns.COVARIATE_LABELS`, else the name with spaces for underscores.

    The one source of the labels of the methods text, the balance table and the love plot.
    """
    return {c: spec.labels.get(c) or COVARIATE_LABELS.get(c) or c.replace("_", " ")
            for c in spec.covariates}


def balance_term_labels(spec: StudySpec, terms) -> dict[str, str]:
    """Readable labels of balance terms (levels, missing indicators) from `covariate_labels`:
    the love plot's and the report's balance table's."""
    from matching.design_matrix import term_labels

    return term_labels([str(t) for t in terms], list(spec.covariates), covariate_labels(spec))


def in_sentence(label: str) -> str:
    """A label inside a sentence: the first letter lower-cased unless the first word is an
    acronym or a name with other capitals (``ECOG ...``, ``BAP1 ...`` stay)."""
    first = label.split(" ", 1)[0]
    if first[:1].isupper() and not any(ch.isupper() for ch in first[1:]) and \
            not any(ch.isdigit() for ch in first):
        return label[0].lower() + label[1:]
    return label


def methods_paragraph(spec: StudySpec, results: dict[str, Any]) -> str:
    """Plain-text methods paragraph for ``report.html``."""
    a, d = spec.analysis, spec.design
    labels = covariate_labels(spec)
    if spec.data is not None:
        source = (f"one flat analysis file ({spec.data.path.name}) holding the trial and the "
                  "external control patients")
    else:
        reg = spec.registry
        assert reg is not None
        source = (f"the registry database; the index (time zero) of a registry patient was the "
                  f"{'first ' if reg.index.selection == 'first' else ''}treatment line started "
                  f"after a {reg.index.after_regimen.replace('_', '-')} line, matching the trial's "
                  "start of treatment")
    elig = ("; ".join(spec.eligibility) if spec.eligibility else "none")
    n = results.get("counts", {})
    lms = ", ".join(f"{t:g}" for t in a.landmarks)
    boot = (f"Confidence intervals are percentile-based from {a.bootstrap} bootstrap replicates "
            "in which the whole design (propensity model and matching or weighting) was re-run."
            if a.bootstrap > 0 else
            "Confidence intervals are analytic, as R's survfit and coxph compute them: "
            "Greenwood variance (integer weights) or the infinitesimal-jackknife variance "
            f"(other weights) with {a.conf_type}-transformed limits for Kaplan-Meier rates and "
            "the restricted mean, and robust (sandwich) variance for the hazard ratio"
            + _VARIANCE_TEXT[VARIANCE_CLUSTER[d.yields]] + ".")
    balance = results.get("design", {})
    unbalanced = ("" if balance.get("balance_passed", True) else
                  f" Balance was not reached: the largest absolute standardized mean difference "
                  f"after the design was {balance.get('max_abs_smd', float('nan')):.3f} (threshold "
                  f"{d.balance_threshold:g}); the comparison is not adjusted to that standard.")
    null = (f" The synthetic control's {a.endpoint} rate at {a.landmarks[0]:g} {a.landmark_unit} "
            f"was compared with the trial design's null rate of {100 * a.null_rate:.0f}%."
            if a.null_rate is not None else "")
    rmst = (f" Restricted mean survival time was computed up to {a.rmst_tau:g} "
            f"{a.landmark_unit}." if a.rmst_tau is not None else "")
    tte = (f"{a.endpoint} was compared between the trial arm and the synthetic control by "
           f"weighted Kaplan-Meier estimates at {lms} {a.landmark_unit}, medians, a weighted "
           f"Cox hazard ratio.{rmst}{null}")
    if a.primary is not None:  # a binary primary endpoint; the time-to-event one secondary
        tte = (f"{_binary_text(a.primary, results, d.yields)} Secondary endpoint: " + tte)
    return (
        f"A synthetic control arm for the single-arm trial was built from {source}. The trial's "
        f"eligibility criteria were applied to the external patients in this order: {elig} "
        f"({n.get('control_pool', 'NA')} eligible). A {d.ps_model} propensity score for trial "
        f"membership was fitted on {', '.join(map(in_sentence, labels.values()))}, and "
        f"the control arm was formed by {describe_design(spec)}. "
        f"{_missing_text(spec, results)} The "
        f"design was fixed, written to design.json and hashed before any outcome was read "
        f"(outcome-blind design); balance was judged by absolute standardized mean differences "
        f"below {d.balance_threshold:g}.{unbalanced} "
        f"{tte} {boot} The random seed was {spec.study.seed}."
    )


def _binary_text(name: str, results: dict[str, Any], yields: str) -> str:
    """The methods sentences of a binary primary endpoint (its results.json object)."""
    ep = (results.get("endpoints") or {}).get(name) or {}
    definition = ep.get("definition") or "a 0/1 outcome"
    cluster = ", clustered on matched sets" if yields == "sets" else ""
    out = (f"The primary endpoint, {name} ({definition}), was compared between the trial arm "
           "and the synthetic control by weighted proportions, their difference, risk ratio "
           "and odds ratio, with sandwich (HC0) variances of the saturated binomial and "
           f"Poisson models{cluster} (R glm with sandwich) and Wald limits (log scale for the "
           "ratios).")
    test = ep.get("trial_vs_null") or {}
    if test.get("null_rate") is not None:
        out += (f" The trial arm's rate was tested against the null rate of "
                f"{100 * test['null_rate']:.0f}% by the exact one-sided binomial test with "
                "Clopper-Pearson limits.")
    simon = ep.get("simon") or {}
    if simon and not simon.get("error"):
        out += (f" The trial's Simon two-stage design ({simon.get('design', '')}: "
                f"{simon.get('r1')}/{simon.get('n1')}, {simon.get('r')}/{simon.get('n')}) was "
                f"analysed by {simon.get('method', 'the two-stage method')}.")
    return out


def study_summary(spec: StudySpec, results: dict[str, Any]) -> dict[str, str]:
    """Label -> value rows of the report's study summary."""
    n = results.get("counts", {})
    if spec.data is not None:
        source = f"flat file {spec.data.path.name}"
    else:
        assert spec.registry is not None and spec.trial is not None
        source = (f"registry {mask_url(spec.registry.url)}; trial "
                  f"{spec.trial.adsl.name} + {spec.trial.adtte.name}")
    a = spec.analysis
    return {
        "Study": spec.study.name,
        "Source": source,
        "Trial patients": f"{n.get('trial', 'NA')} (analysed {n.get('trial_selected', 'NA')})",
        "Eligible registry pool": str(n.get("control_pool", "NA")),
        "Synthetic control": f"{n.get('control_selected', 'NA')} patients, effective sample "
                             f"size {_f1(n.get('control_ess'))}",
        "Design": describe_design(spec),
        "Covariates": ", ".join(spec.covariates),
        "Endpoint": (f"{a.primary} (primary); " if a.primary else "")
                    + f"{a.endpoint}"
                    + (" (secondary)" if a.primary else "")
                    + f"; landmark(s) {', '.join(f'{t:g}' for t in a.landmarks)} "
                    f"{a.landmark_unit}"
                    + (f"; null rate {100 * a.null_rate:.0f}%" if a.null_rate else ""),
        "Bootstrap replicates": str(a.bootstrap),
        "Seed": str(spec.study.seed),
    }


def _f1(x: Any) -> str:
    return f"{x:.1f}" if isinstance(x, int | float) else "NA"
