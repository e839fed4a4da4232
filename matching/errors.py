"""Errors and warnings raised by :mod:`matching`.

`matching` is pure, so it defines its own small hierarchy; the runner (``synthctl``) wraps a
:class:`MatchingError` into its ``DataError``/``SpecError`` and adds the stage and the file.
"""

from __future__ import annotations


class MatchingError(ValueError):
    """The design cannot be built from these data or these options.

    Messages name the parameter, column or arm, what was expected and what was received
    (e.g. no overlap of the propensity-score distributions, an infeasible entropy balance).
    """


class MatchingWarning(UserWarning):
    """Base class of the design-stage warnings (statsmodels-like ``ModelWarning`` tree)."""


class SeparationWarning(MatchingWarning):
    """A covariate (or level) separates the arms: its PS coefficient diverges.

    Typical with 27 trial patients: a histology level absent from the trial drives the PS of
    every registry patient with that level to ~0, so they can never be matched and get ~0 weight.
    """


class PositivityWarning(MatchingWarning):
    """Part of one arm lies outside the PS range of the other arm (limited common support)."""


class MatchingConvergenceWarning(MatchingWarning):
    """An iterative fit (IRLS, entropy-balancing dual) stopped before its tolerance was met."""
