"""Minimal estimator base: sklearn-style ``get_params``/``set_params``/``repr`` for ``clone``.

We subclass :class:`sklearn.base.BaseEstimator` (public API): ``clone`` and ``get_params`` then
work exactly as users of scikit-learn expect.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator


class MatchingEstimator(BaseEstimator):
    """Base class of the PS models and matchers (parameters in ``__init__``, state in ``attr_``)."""

    _constraints: dict = {}  # noqa: RUF012 - class-level table, read only
