"""Every estimator of `matching` honours the house contract (tests/estimator_contract.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching import (
    EntropyBalancer,
    GBMPropensity,
    L2LogisticPropensity,
    LogisticPropensity,
    NearestMatcher,
    OptimalMatcher,
)
from tests.estimator_contract import check_estimator_contract


def _data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.binomial(1, 0.5, n).astype(float)})
    t = rng.random(n) < 1 / (1 + np.exp(-(X["a"] - 1)))
    return X, t


X, T = _data()
DIST = X["a"].to_numpy() * 0.7

CASES = {
    "LogisticPropensity": (lambda: LogisticPropensity(), (X, T), {}),
    "L2LogisticPropensity": (lambda: L2LogisticPropensity(Cs=4, cv=3, random_state=0),
                             (X, T), {}),
    "GBMPropensity": (lambda: GBMPropensity(max_iter=5, random_state=0), (X, T), {}),
    "NearestMatcher": (lambda: NearestMatcher(2, caliper=0.5, random_state=0), (DIST, T), {}),
    "NearestMatcher-random": (lambda: NearestMatcher(m_order="random", random_state=3),
                              (DIST, T), {"exact": X["b"].to_numpy()}),
    "OptimalMatcher": (lambda: OptimalMatcher(caliper=1.0), (DIST, T), {}),
    "EntropyBalancer": (lambda: EntropyBalancer(), (X, T), {}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_contract(name):
    make, args, kwargs = CASES[name]
    check_estimator_contract(make, args, kwargs)


def test_the_checker_catches_violations():
    """The checker itself must fail on a broken estimator (it cannot pass vacuously)."""

    class Sloppy(LogisticPropensity):
        def fit(self, X, y):
            super().fit(X, y)
            self.coefficients = self.coef_  # a public attribute without the trailing _
            return self

    with pytest.raises(AssertionError, match="non-learned public attributes"):
        check_estimator_contract(lambda: Sloppy(), (X, T))

    class Mutating(LogisticPropensity):
        def fit(self, X, y):
            X.iloc[0, 0] = 99.0
            return super().fit(X, y)

    with pytest.raises(AssertionError, match="modified its input"):
        check_estimator_contract(lambda: Mutating(), (X.copy(), T))


def test_every_method_of_the_table_has_its_estimator_checked():
    """A new design method (matching/methods.py) brings its estimator under the contract."""
    from matching.methods import METHODS

    checked = {name.split("-")[0] for name in CASES}
    assert {entry.estimator.__name__ for entry in METHODS.values()} <= checked
