"""Errors and warnings of the survival estimators (pure package, no I/O).

`EstimationError` is a `ValueError`: bad input (negative weight, missing time, unknown
option) or a quantity that cannot be estimated from the data. Its message names the column,
row or parameter, what was expected and what was found. Warnings flag estimates that are
computed but deserve a reader's attention.
"""

from __future__ import annotations


class EstimationError(ValueError):
    """Input or option that the survival estimators cannot use."""


class SurvivalWarning(UserWarning):
    """Base class for warnings of the survival estimators."""


class NonIntegerWeightsWarning(SurvivalWarning):
    """Non-integer case weights: the variance is the infinitesimal jackknife, not Greenwood."""


class ConvergenceWarning(SurvivalWarning):
    """The Cox Newton-Raphson iterations did not converge (e.g. no events in one arm)."""


class NotEstimableWarning(SurvivalWarning):
    """A requested estimate is reported as NA (landmark beyond follow-up, median not reached)."""
