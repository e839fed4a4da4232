"""The survival fitters honour the house estimator contract (tests/estimator_contract.py)."""

from __future__ import annotations

import pytest

from reports.cox import WeightedCoxPH
from reports.km import WeightedKM
from tests.estimator_contract import check_estimator_contract
from tests.reports._reference import eligible

D = eligible().iloc[::5].reset_index(drop=True)

CASES = {
    "WeightedKM": (lambda: WeightedKM(), (D, "pfs_weeks", "pfs_event"),
                   {"weights_col": "w_att"},
                   {"conf_type": "linear", "conf_level": 1.5, "variance": "jackknife"}),
    "WeightedKM-cluster": (lambda: WeightedKM("log-log", variance="ij"),
                           (D, "pfs_weeks", "pfs_event"), {"cluster_col": "histology"},
                           {"conf_type": 0}),
    "WeightedCoxPH": (lambda: WeightedCoxPH(), (D, "pfs_weeks", "pfs_event", ["treated", "age"]),
                      {"weights_col": "w_att"}, {"ties": "exact", "conf_level": 0}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_estimator_contract(name):
    make, args, kwargs, bad = CASES[name]
    check_estimator_contract(make, args, kwargs, bad_params=bad)
