"""The design on multiply imputed covariates: MatchThem's ``matchthem``/``weightthem`` in Python.

:func:`match_imputed` imputes the missing design covariates ``m`` times with
:class:`~matching.impute.ChainedImputer` (predictors: the covariates, the auxiliary variables and
the arm; never an outcome) and runs :func:`~matching.api.match_cohort` on each completed data set.

Approaches (MatchThem's ``approach =``):

- ``"within"`` (default): PS model, matching or weighting and balance within each imputed data
  set; the outcome analysis is run on each and pooled by Rubin's rules. This is the approach
  with the better statistical properties in simulation (Leyrat et al. 2019; Granger et al. 2019).
- ``"across"``: the PS of each patient is averaged over the imputations, and that one averaged
  score is used to match or weight in every imputed data set. Documented as the weaker option:
  the averaged score is not the PS of any data set, and balance and effect estimates are
  biased when the imputed covariates are confounders (Leyrat et al. 2019).

Balance is reported per imputation and pooled as MatchThem/cobalt do: the mean of each
balance statistic over the imputations; the balance check uses the pooled |SMD|.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .api import match_cohort
from .balance import BalanceTable
from .errors import MatchingError
from .impute import NUMERIC_METHODS, ChainedImputer
from .result import DesignResult, _clean

APPROACHES = ("within", "across")
_ARM = "__arm__"  # the arm indicator as an imputation predictor (not a frame column name)


@dataclass(frozen=True, slots=True, repr=False)
class ImputedDesign:
    """One design per imputed data set, and their pooled balance.

    Attributes
    ----------
    designs : tuple of DesignResult
        The design of each completed data set (imputation k = ``designs[k - 1]``).
    completed : tuple of pd.DataFrame
        The completed covariate and auxiliary columns of each imputation (frame index).
    balance : BalanceTable
        Pooled balance: each statistic averaged over the imputations (MatchThem's convention).
    imputed : dict
        Column -> ``{"trial": n, "control": n}`` numbers of imputed values per arm.
    methods : dict
        Column -> imputation model (``"pmm"``, ``"norm"``, ``"logreg"``, ``"polyreg"``).
    approach : str
        ``"within"`` or ``"across"``.
    options : dict
        The imputation options as used (m, auxiliary, numeric model, iterations, donors).
    """

    designs: tuple
    completed: tuple
    balance: BalanceTable
    imputed: dict
    methods: dict
    approach: str
    options: dict

    @property
    def m(self) -> int:
        """Number of imputations."""
        return len(self.designs)

    @property
    def max_abs_smd(self) -> float:
        """Largest |pooled SMD after adjustment|."""
        return self.balance.max_abs_smd

    @property
    def balance_passed(self) -> bool:
        """Whether the pooled balance is within the threshold."""
        return self.balance.passed

    def cohort(self, ids: pd.Series | None = None) -> pd.DataFrame:
        """Long cohort table: one row per patient and imputation (``imputation`` from 1)."""
        parts = []
        for k, d in enumerate(self.designs, 1):
            part = pd.DataFrame({"imputation": k, "treated": d.treated, "ps": d.ps,
                                 "weight": d.weights, "match_id": d.match_id,
                                 "included": d.included})
            if ids is not None:
                part.insert(1, ids.name or "id", ids)
            parts.append(part)
        return pd.concat(parts)

    def to_dict(self) -> dict:
        """design.json content: the first design's layout, pooled balance, ESS and counts as
        means over imputations, plus ``imputation`` (options, counts) and ``per_imputation``."""
        first = self.designs[0].to_dict()
        mean = {k: float(np.mean([d.ess[k] for d in self.designs])) for k in first["ess"]}
        counts = {k: float(np.mean([d.counts[k] for d in self.designs]))
                  for k in first["counts"]}
        return _clean({
            **first,
            "counts": counts,
            "ess": mean,
            "balance": self.balance.to_dict(),
            "warnings": sorted({w for d in self.designs for w in d.warnings}),
            "imputation": {"approach": self.approach, **self.options,
                           "imputed": self.imputed, "methods": self.methods},
            "per_imputation": [{"imputation": k, "counts": d.counts, "ess": d.ess,
                                "max_abs_smd": d.max_abs_smd,
                                "balance": d.balance.to_dict(), "ps_model": d.ps_model}
                               for k, d in enumerate(self.designs, 1)],
        })

    def __repr__(self) -> str:
        return (f"ImputedDesign(m={self.m}, approach={self.approach!r}, "
                f"method={self.designs[0].method!r}, max_abs_smd={self.max_abs_smd:.3f}, "
                f"passed={self.balance_passed})")


def pooled_balance(tables: Sequence[BalanceTable]) -> BalanceTable:
    """Mean of every balance statistic over the imputations (cobalt's ``imp.fun = "mean"``)."""
    frames = [t.frame for t in tables]
    keys = ["covariate", "type"]
    stacked = pd.concat(frames, ignore_index=True)
    num = [c for c in stacked.columns if c not in keys and pd.api.types.is_numeric_dtype(
        stacked[c])]
    order = frames[0][keys].drop_duplicates()
    grouped = stacked.groupby(keys, sort=False)
    mean = grouped[num].mean().reset_index()
    other = [c for c in stacked.columns if c not in keys and c not in num]  # e.g. ``note``
    if other:  # texts: the distinct ones of the imputations, joined
        text = grouped[other].agg(lambda s: "; ".join(sorted({str(v) for v in s.dropna()
                                                              if str(v)})) or None)
        mean = mean.merge(text.reset_index(), on=keys)
    mean = order.merge(mean, on=keys, how="left")[frames[0].columns]
    return BalanceTable(mean, tables[0].estimand, tables[0].threshold)


def imputed_counts(frame: pd.DataFrame, columns: Sequence[str], treated: np.ndarray) -> dict:
    """Column -> {"trial": n missing, "control": n missing} (columns with missing values)."""
    na = frame[list(columns)].isna()
    return {c: {"trial": int(na[c][treated].sum()), "control": int(na[c][~treated].sum())}
            for c in columns if na[c].any()}


def check_imputable(frame: pd.DataFrame, covariates: Sequence[str], treated: np.ndarray) -> None:
    """A covariate with every value missing in one arm cannot be imputed: error naming both."""
    for c in covariates:
        for arm, mask in (("trial", treated), ("control", ~treated)):
            if mask.any() and frame[c][mask].isna().all():
                raise MatchingError(
                    f"Covariate {c!r} is missing for every {arm} patient ({int(mask.sum())}): "
                    "imputing it would rest entirely on the other arm; remove it from the "
                    "covariates or obtain it.")


def match_imputed(
    frame: pd.DataFrame,
    covariates: Sequence[str],
    *,
    auxiliary: Sequence[str] = (),
    imputations: int = 20,
    numeric: str = "pmm",
    max_iter: int = 10,
    n_donors: int = 5,
    approach: str = "within",
    treatment_col: str = "arm",
    treated_value: object = "trial",
    random_state: int | None = None,
    **design: object,
) -> ImputedDesign:
    """Impute the missing covariates ``imputations`` times and build the design on each set.

    Parameters
    ----------
    frame : pd.DataFrame
        One row per patient; never modified. Only ``covariates``, ``auxiliary`` and the arm
        are read: no outcome column enters the imputation or the design.
    covariates : sequence of str
        Design covariates (PS model and balance), imputed where missing.
    auxiliary : sequence of str
        Extra predictors of the imputation model only (imputed too when incomplete).
    imputations : int, default=20
        Number of imputed data sets ``m`` (>= 2).
    numeric, max_iter, n_donors
        :class:`~matching.impute.ChainedImputer` options.
    approach : {"within", "across"}, default="within"
        See the module docstring; "across" is the weaker option.
    treatment_col, treated_value
        The trial arm is ``frame[treatment_col] == treated_value``.
    random_state : int or None
        Seeds the imputation chains and each imputation's design.
    **design
        Every other :func:`~matching.api.match_cohort` option (method, caliper, weights...).

    Returns
    -------
    ImputedDesign
    """
    covariates, auxiliary = list(covariates), list(auxiliary)
    if approach not in APPROACHES:
        raise MatchingError(f"approach must be one of {APPROACHES}; got {approach!r}.")
    both = sorted(set(covariates) & set(auxiliary))
    if both:
        raise MatchingError(f"auxiliary variables {both} are also covariates; list them once.")
    absent = [c for c in covariates + auxiliary + [treatment_col] if c not in frame.columns]
    if absent:
        raise MatchingError(f"columns {absent} are not in the frame.")
    if design.get("missing", "error") != "error":
        raise MatchingError("missing= cannot be combined with multiple imputation.")
    treated = (frame[treatment_col] == treated_value).to_numpy()
    check_imputable(frame, covariates, treated)
    if numeric not in NUMERIC_METHODS:
        raise MatchingError(f"numeric must be one of {NUMERIC_METHODS}; got {numeric!r}.")
    seeds = np.random.SeedSequence(random_state).spawn(2)
    design_seeds = [int(s.generate_state(1)[0]) for s in seeds[1].spawn(imputations)]
    x = frame[covariates + auxiliary].assign(**{_ARM: treated})
    imp = ChainedImputer(imputations, max_iter=max_iter, numeric=numeric, n_donors=n_donors,
                         random_state=int(seeds[0].generate_state(1)[0])).fit(x)
    completed = tuple(c.drop(columns=_ARM) for c in imp.completed_)

    def run(k: int, ps=None) -> DesignResult:
        data = frame.drop(columns=covariates + auxiliary).join(completed[k])[frame.columns]
        return match_cohort(data, covariates, treatment_col=treatment_col,
                            treated_value=treated_value, random_state=design_seeds[k],
                            ps=ps, **design)

    designs = [run(k) for k in range(imputations)]
    if approach == "across":
        avg = np.mean([d.ps.to_numpy(dtype=float) for d in designs], axis=0)
        designs = [run(k, ps=avg) for k in range(imputations)]
    options = {"m": imputations, "auxiliary": auxiliary, "numeric": numeric,
               "max_iter": max_iter, "n_donors": n_donors, "random_state": random_state}
    return ImputedDesign(tuple(designs), completed,
                         pooled_balance([d.balance for d in designs]),
                         imputed_counts(frame, covariates + auxiliary, treated),
                         {c: imp.methods_[c] for c in imp.methods_ if c != _ARM}, approach,
                         options)
