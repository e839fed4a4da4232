"""The design methods: one table of facts, one frozen entry per method (WeightIt's
``.weightit_methods``, MatchIt's ``matchit2<method>`` files).

Every fact about a method lives in its entry and nowhere else: the function that runs it (in
the method's own file), the estimator class doing the work, its options (type, default,
constraint, documentation), the estimands it allows, what it yields (matched sets, pairs
with replacement, or weights), how the outcome variance must therefore be clustered, and the
sentence the report's methods text uses. `match_cohort` dispatches through this table, the
spec (``synthctl.spec``) builds its ``design:`` models from it, the design stage passes the
options straight through, and the analysis reads ``yields`` from the design result.

Adding a method: write ``matching/<method>.py`` with its estimator and a
``run_<method>(MethodInputs) -> MethodOutcome`` function, and add one `MethodSpec` to
`METHODS`. Nothing else in the code base names methods.

>>> from matching.methods import METHODS
>>> sorted(METHODS)
['nearest', 'optimal', 'weighting']
>>> METHODS["nearest"].yields({"replace": True})
'pairs_with_replacement'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._method import MethodInputs, MethodOutcome, Option
from ._validation import BOOL, NONE, Interval, Predicate, options
from .design_matrix import MISSING_POLICIES
from .errors import MatchingError
from .nearest import M_ORDERS, NearestMatcher, run_nearest
from .optimal import OptimalMatcher, run_optimal
from .propensity import PS_MODELS
from .weighting import (
    TRUNCATE_RULES,
    WEIGHT_DESCRIPTION,
    WEIGHT_ESTIMAND,
    EntropyBalancer,
    default_weights,
    run_weighting,
)

Yields = Literal["sets", "pairs_with_replacement", "weights"]
#: How the outcome variance must be clustered for what a design yields. Matched sets are
#: clusters (robust variance clustered on ``match_id``); pairs with replacement share controls
#: across sets and weights have no sets, so their variance is robust per row (per patient when
#: a patient has several index lines), as R users fit ``coxph(..., robust = TRUE)``.
VARIANCE_CLUSTER: Mapping[str, Literal["match_id", "row"]] = {
    "sets": "match_id", "pairs_with_replacement": "row", "weights": "row"}
ESTIMANDS = ("ATT", "ATE", "ATO", "ATM")
DISTANCES = ("logit_ps", "ps")
# caliper_scale (before issue 14) named the distance by its scale only
_CALIPER_SCALE = {"logit": "logit_ps", "ps": "ps"}


def _is_columns(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, list | tuple) and len(value) > 0 and all(
        isinstance(v, str) and v for v in value)


#: ``missing`` of a design: the design-matrix policies, or multiple imputation (``impute``:
#: `matching.imputed_design.match_imputed` wraps the method, as MatchThem wraps MatchIt)
DESIGN_MISSING = (*MISSING_POLICIES, "impute")

# ---- options shared by every method (the PS model and the balance check) -------------------
COMMON_OPTIONS: tuple[Option, ...] = (
    Option("estimand", Literal["ATT", "ATE", "ATO", "ATM"], "ATT", (options(*ESTIMANDS),),
           "Target population; each method allows only some (see its entry)."),
    Option("ps_model", Literal[tuple(PS_MODELS)], "logistic", (options(*PS_MODELS),),
           "Propensity-score model: logistic (R glm), logistic_l2 (cross-validated ridge) "
           "or gbm."),
    Option("missing", Literal[DESIGN_MISSING], "error", (options(*DESIGN_MISSING),),
           "Missing covariate values: error, indicator (mean-imputed + a missing flag), "
           "complete_case (patients excluded, counted) or impute (multiple imputation, the "
           "design within each imputed set: matching.imputed_design)."),
    Option("balance_threshold", float, 0.1, (Interval(float, 0, None, closed="neither"),),
           "Largest acceptable |SMD| after the design (exit code 1 when not met)."),
)

# ---- options of the matching methods --------------------------------------------------------
_RATIO = Option("ratio", int, 1, tuple(NearestMatcher._constraints["ratio"]),
                "Controls per trial patient (k:1 matching).")
_CALIPER = Option("caliper", float | None, 0.2, tuple(NearestMatcher._constraints["caliper"]),
                  "Largest allowed distance, in standard deviations of the distance; null "
                  "for none.")
_DISTANCE = Option(
    "distance", Literal["logit_ps", "ps"], "logit_ps", (options(*DISTANCES),),
    "What is matched on (and what the caliper is in SDs of): logit_ps, the linear predictor "
    "of the PS model (MatchIt distance = 'glm', link = 'linear.logit'), or ps, the PS itself "
    "(MatchIt's default link = 'logit'). Old name: caliper_scale (logit | ps).",
    aliases={"caliper_scale": _CALIPER_SCALE})
_EXACT = Option("exact", list[str] | None, None,
                (Predicate(_is_columns, "a non-empty list of columns"), NONE),
                "Columns to match exactly on (controls only match within a stratum).")

# ---- options of weighting --------------------------------------------------------------------
_WEIGHTS = Option("weights", Literal[tuple(WEIGHT_ESTIMAND)] | None, None,
                  (options(*WEIGHT_ESTIMAND), NONE),
                  "Kind of weights; null: the estimand's own (ATT att_odds, ATE ate, ATO "
                  "overlap, ATM matching). entropy targets the ATT.")
_STABILIZED = Option("stabilized", bool, False, (BOOL,),
                     "Stabilised ATE weights (multiplied by the arm's share); ate only.")
_TRIM = Option("trim", float | Literal["common_support"] | None, None,
               (Interval(float, 0, 0.5, closed="neither"), options("common_support"), NONE),
               "Exclude patients with a PS outside [trim, 1 - trim], or outside the other "
               "arm's PS range (common_support), before weighting.")
_TRUNCATE = Option("truncate", float | None, None,
                   (Interval(float, 0.5, 1, closed="neither"), NONE),
                   "Cap large weights at this quantile (e.g. 0.99); null for none.")
_TRUNCATE_RULE = Option("truncate_rule", Literal[TRUNCATE_RULES], "per_arm",
                        (options(*TRUNCATE_RULES),),
                        "per_arm: each arm at its own quantile (R type 7); weightit: one "
                        "type-3 quantile of the pooled weights, as WeightIt's trim().")


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """Everything about one design method (an entry of `METHODS`).

    Attributes
    ----------
    name : str
        The value of ``method``.
    run : callable
        ``run(MethodInputs) -> MethodOutcome``, defined in the method's own file.
    estimator : type
        The class doing the work (for the docs and the estimator contract tests).
    options : tuple of Option
        The method's own options (`COMMON_OPTIONS` apply to every method).
    estimands : tuple of str
        Estimands the method can target; the first is the default.
    yields_when : callable
        ``options -> Yields``: what the design gives for these options.
    describe : callable
        ``(options, estimand) -> str``: the methods-text phrase ("greedy nearest-neighbour
        matching 1:1 without replacement, ...").
    check : callable or None
        ``(options, estimand) -> [(option name, message)]``: rules across options.
    """

    name: str
    run: Callable[[MethodInputs], MethodOutcome]
    estimator: type
    options: tuple[Option, ...]
    estimands: tuple[str, ...]
    yields_when: Callable[[Mapping[str, Any]], Yields]
    describe: Callable[[Mapping[str, Any], str], str]
    check: Callable[[Mapping[str, Any], str], list] | None = None

    def option(self, name: str) -> Option:
        """The option called ``name`` (common options included)."""
        for opt in (*COMMON_OPTIONS, *self.options):
            if opt.name == name:
                return opt
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        """The method's own options with their defaults."""
        return {o.name: o.default for o in self.options}

    def yields(self, opts: Mapping[str, Any]) -> Yields:
        """``"sets"``, ``"pairs_with_replacement"`` or ``"weights"`` for these options."""
        return self.yields_when({**self.defaults(), **opts})

    def variance_cluster(self, opts: Mapping[str, Any]) -> Literal["match_id", "row"]:
        """``"match_id"`` (cluster on matched sets) or ``"row"`` (robust per row)."""
        return VARIANCE_CLUSTER[self.yields(opts)]


def _caliper_text(o: Mapping[str, Any]) -> str:
    if o["caliper"] is None:
        return ", no caliper"
    what = "logit of the propensity score" if o["distance"] == "logit_ps" else "propensity score"
    return f", caliper {o['caliper']:g} standard deviations of the {what}"


def _describe_nearest(o: Mapping[str, Any], estimand: str) -> str:
    repl = "with replacement" if o["replace"] else "without replacement"
    return (f"greedy nearest-neighbour matching 1:{o['ratio']} {repl}{_caliper_text(o)} "
            f"(estimand {estimand})")


def _describe_optimal(o: Mapping[str, Any], estimand: str) -> str:
    return f"optimal matching 1:{o['ratio']} without replacement{_caliper_text(o)} " \
           f"(estimand {estimand})"


def _describe_weighting(o: Mapping[str, Any], estimand: str) -> str:
    kind = o["weights"] or default_weights(estimand)
    stab = ", stabilized" if o["stabilized"] else ""
    trunc = (f", truncated at the {o['truncate']:g} quantile ({o['truncate_rule']})"
             if o["truncate"] is not None else "")
    return (f"propensity-score weighting with {WEIGHT_DESCRIPTION[kind]}{stab}{trunc} "
            f"(estimand {estimand})")


def _check_nearest(o: Mapping[str, Any], estimand: str) -> list:
    if o["replace"] and o["m_order"] != "largest":
        return [("m_order", "m_order has no effect with replace: true (every trial patient "
                            "picks from all controls; MatchIt uses the data order); remove it")]
    return []


def _check_weighting(o: Mapping[str, Any], estimand: str) -> list:
    out = []
    if o["weights"] is not None and WEIGHT_ESTIMAND[o["weights"]] != estimand:
        want = WEIGHT_ESTIMAND[o["weights"]]
        out.append(("weights", f"weights {o['weights']!r} target the estimand {want}, but "
                               f"estimand is {estimand}; set estimand: {want} or choose other "
                               "weights (or leave weights out)"))
    kind = o["weights"] or default_weights(estimand)
    if o["stabilized"] and kind != "ate":
        out.append(("stabilized", f"stabilized applies to ate weights only, not {kind!r}; "
                                  "remove it"))
    if o["truncate_rule"] != "per_arm" and o["truncate"] is None:
        out.append(("truncate_rule", "truncate_rule without truncate has no effect; give "
                                     "truncate (e.g. 0.99) or remove truncate_rule"))
    return out


METHODS: Mapping[str, MethodSpec] = {
    "nearest": MethodSpec(
        name="nearest", run=run_nearest, estimator=NearestMatcher,
        options=(_RATIO, _CALIPER, _DISTANCE,
                 Option("replace", bool, False, (BOOL,),
                        "Whether a control may be matched to several trial patients (then "
                        "there are no matched sets: the variance is robust per row)."),
                 Option("m_order", Literal[M_ORDERS], "largest", (options(*M_ORDERS),),
                        "Order in which trial patients pick their controls (MatchIt m.order)."),
                 _EXACT),
        estimands=("ATT",),
        yields_when=lambda o: "pairs_with_replacement" if o["replace"] else "sets",
        describe=_describe_nearest,
        check=_check_nearest),
    "optimal": MethodSpec(
        name="optimal", run=run_optimal, estimator=OptimalMatcher,
        options=(_RATIO, _CALIPER, _DISTANCE, _EXACT),
        estimands=("ATT",),
        yields_when=lambda o: "sets",
        describe=_describe_optimal),
    "weighting": MethodSpec(
        name="weighting", run=run_weighting, estimator=EntropyBalancer,
        options=(_WEIGHTS, _STABILIZED, _TRIM, _TRUNCATE, _TRUNCATE_RULE),
        estimands=("ATT", "ATE", "ATO", "ATM"),
        yields_when=lambda o: "weights",
        describe=_describe_weighting,
        check=_check_weighting),
}


def cross_problems(method: str, values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules across options, as ``(key, message)``: the estimand the method allows, and the
    method's own rules (``check``). ``values`` holds ``estimand`` and any of the method's
    options (missing ones take their defaults); each problem is keyed by the option to fix."""
    spec = METHODS[method]
    estimand = values.get("estimand", "ATT")
    if estimand not in spec.estimands:
        alt = [m for m, s in METHODS.items() if estimand in s.estimands]
        return [("estimand", f"method {method} targets {' or '.join(spec.estimands)}; "
                             f"estimand {estimand} needs method {' or '.join(alt) or '(none)'}")]
    if spec.check is None:
        return []
    opts = {**spec.defaults(), **{k: v for k, v in values.items() if k in spec.defaults()}}
    return spec.check(opts, estimand)


def design_problems(method: str, estimand: str, given: Mapping[str, Any]) -> list[tuple]:
    """Every problem of a design, as ``(key, message)`` pairs (empty: the design is valid).

    ``given`` holds the method's options as the user gave them (aliases already renamed
    by `rename_aliases`); missing options take their defaults. Checks: the method exists,
    every option applies to it and is allowed, the estimand is one it allows, and the
    method's rules across options (`cross_problems`).
    """
    if method not in METHODS:
        return [("method", f"method must be one of {', '.join(METHODS)}; got {method!r}")]
    spec = METHODS[method]
    problems = []
    known = {o.name: o for o in spec.options}
    for key, value in given.items():
        if key not in known:
            users = [m for m, s in METHODS.items() if any(o.name == key for o in s.options)]
            where = f" (it applies to {' and '.join(users)})" if users else ""
            problems.append((key, f"option {key!r} does not apply to method {method}{where}; "
                                  "remove it"))
        elif (msg := known[key].problem(value)) is not None:
            problems.append((key, msg))
    if not problems:
        problems += cross_problems(method, {**given, "estimand": estimand})
    return problems


def rename_aliases(method: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with old option names (``caliper_scale``) renamed and their values mapped.

    Raises
    ------
    MatchingError
        When an option is given under both its name and an alias.
    """
    out = dict(given)
    spec = METHODS.get(method)
    if spec is None:
        return out
    for opt in spec.options:
        for alias, value_map in opt.aliases.items():
            if alias not in out:
                continue
            if opt.name in out:
                raise MatchingError(f"give {opt.name} or its old name {alias}, not both")
            value = out.pop(alias)
            if value_map is not None:
                if not _hashable(value) or value not in value_map:
                    raise MatchingError(
                        f"{alias} (the old name of {opt.name}) must be one of "
                        f"{', '.join(map(repr, value_map))}; got {value!r}")
                value = value_map[value]
            out[opt.name] = value
    return out


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def resolve_design(method: str, estimand: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The method's complete options (defaults filled in), or a `MatchingError` listing every
    problem `design_problems` finds."""
    given = rename_aliases(method, given)
    problems = design_problems(method, estimand, given)
    if problems:
        raise MatchingError("invalid design: " + "; ".join(msg for _, msg in problems) + ".")
    return {**METHODS[method].defaults(), **given}


def describe_method(method: str, estimand: str, given: Mapping[str, Any]) -> str:
    """The methods-text phrase of a (valid) design."""
    return METHODS[method].describe(resolve_design(method, estimand, given), estimand)
