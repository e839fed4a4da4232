"""What a design method is made of: its options, its inputs and its outcome.

The types every method file (``nearest.py``, ``optimal.py``, ``weighting.py``) and the method
table (``methods.py``) share. A method file exposes a ``run_<method>(inputs) -> MethodOutcome``
function; the table says which options it takes and what it yields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a design method, declared once (plain data: no pydantic here).

    Attributes
    ----------
    name : str
        The keyword of `match_cohort` and the key under the spec's ``design:``.
    annotation : object
        Python type annotation (``int``, ``float | None``, ``Literal[...]``): the spec
        builds its pydantic field from it.
    default : object
        Value when the option is not given.
    constraints : tuple
        ``matching._validation`` constraints (``Interval``, ``Options``, ``BOOL``, ``NONE``,
        ``Predicate``); the value must satisfy one of them.
    doc : str
        One sentence for the docs and the error messages.
    aliases : mapping of str to mapping or None
        Older key names still accepted: ``{old_name: {old_value: new_value} or None}``
        (``None``: the values are the same).
    """

    name: str
    annotation: Any
    default: Any
    constraints: tuple
    doc: str
    aliases: Mapping[str, Mapping[Any, Any] | None] = field(default_factory=dict)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (``None`` when it is)."""
        if any(c.accepts(value) for c in self.constraints):
            return None
        allowed = " or ".join(c.describe() for c in self.constraints)
        return f"{self.name} must be {allowed}; got {value!r}"


@dataclass(frozen=True, slots=True)
class MethodInputs:
    """What a method's ``run_*`` function receives (arrays over the analysed rows).

    Attributes
    ----------
    ps : np.ndarray of shape (n_rows,)
        Propensity score P(trial | covariates).
    distance : np.ndarray of shape (n_rows,)
        The matching distance (PS or its logit, per the ``distance`` option).
    treated : np.ndarray of shape (n_rows,)
        Bool, the trial arm.
    exact : np.ndarray or None
        Exact-matching stratum codes (one per row).
    X : pd.DataFrame
        The balance covariates (entropy balancing reads them).
    options : dict
        The method's options, complete (defaults filled in) and validated.
    estimand : str
    random_state : int, Generator or None
    """

    ps: np.ndarray
    distance: np.ndarray
    treated: np.ndarray
    exact: np.ndarray | None
    X: pd.DataFrame
    options: dict
    estimand: str
    random_state: Any


@dataclass(frozen=True, slots=True)
class MethodOutcome:
    """What a method's ``run_*`` function returns.

    Attributes
    ----------
    weights : np.ndarray of shape (n_rows,)
        Analysis weights (0 = not selected).
    match_id : np.ndarray of shape (n_rows,)
        Matched-set id, -1 for none (always -1 unless the method yields matched sets).
    details : dict
        Method-specific facts for design.json.
    warnings : list of str
    exclusions : list of dict
        ``{"arm", "reason", "n"}`` for every patient left out.
    """

    weights: np.ndarray
    match_id: np.ndarray
    details: dict
    warnings: list
    exclusions: list


def unmatched_trial(treated: np.ndarray, weights: np.ndarray, reason: str) -> list:
    """Exclusion record for trial patients left without a match (empty list if none)."""
    n = int((treated & (weights <= 0)).sum())
    return [{"arm": "trial", "reason": reason, "n": n}] if n else []
