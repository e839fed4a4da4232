"""Propensity scores, matching, weighting and balance diagnostics (pure; no I/O).

>>> from matching import match_cohort
"""

from .api import match_cohort
from .balance import BalanceTable, balance_table
from .design_matrix import DesignMatrix, build_design_matrix
from .errors import (
    MatchingConvergenceWarning,
    MatchingError,
    MatchingWarning,
    PositivityWarning,
    SeparationWarning,
)
from .methods import METHODS, MethodSpec, describe_method, resolve_design
from .nearest import NearestMatcher
from .optimal import OptimalMatcher
from .propensity import GBMPropensity, L2LogisticPropensity, LogisticPropensity
from .result import DesignResult, kish_ess
from .weighting import EntropyBalancer, compute_weights, ps_weights

__all__ = [
    "METHODS",
    "BalanceTable",
    "DesignMatrix",
    "DesignResult",
    "EntropyBalancer",
    "GBMPropensity",
    "L2LogisticPropensity",
    "LogisticPropensity",
    "MatchingConvergenceWarning",
    "MatchingError",
    "MatchingWarning",
    "MethodSpec",
    "NearestMatcher",
    "OptimalMatcher",
    "PositivityWarning",
    "SeparationWarning",
    "balance_table",
    "build_design_matrix",
    "compute_weights",
    "describe_method",
    "kish_ess",
    "love_plot",
    "match_cohort",
    "ps_overlap_plot",
    "ps_weights",
    "resolve_design",
]


def __getattr__(name: str):
    # figures import matplotlib: load them only when asked for
    if name in ("love_plot", "ps_overlap_plot"):
        from . import figures

        return getattr(figures, name)
    raise AttributeError(f"module 'matching' has no attribute {name!r}")
