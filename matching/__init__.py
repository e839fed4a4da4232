"""Propensity scores, matching, weighting and balance diagnostics (pure; no I/O).

>>> from matching import match_cohort
"""

from .api import METHODS, match_cohort
from .balance import BalanceTable, balance_table
from .design_matrix import DesignMatrix, build_design_matrix
from .errors import (
    MatchingConvergenceWarning,
    MatchingError,
    MatchingWarning,
    NonIntegerWeightsWarning,
    PositivityWarning,
    SeparationWarning,
)
from .nearest import NearestMatcher
from .propensity import GBMPropensity, L2LogisticPropensity, LogisticPropensity
from .result import DesignResult, kish_ess

__all__ = [
    "METHODS",
    "BalanceTable",
    "DesignMatrix",
    "DesignResult",
    "GBMPropensity",
    "L2LogisticPropensity",
    "LogisticPropensity",
    "MatchingConvergenceWarning",
    "MatchingError",
    "MatchingWarning",
    "NearestMatcher",
    "NonIntegerWeightsWarning",
    "PositivityWarning",
    "SeparationWarning",
    "balance_table",
    "build_design_matrix",
    "kish_ess",
    "match_cohort",
]
