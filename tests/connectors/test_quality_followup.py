"""Follow-up completeness: reverse Kaplan-Meier median per centre agrees with R survival 3.5-3.

Reference: tests/fixtures/quality_reverse_km/medians.json, written by reverse_km.R from
followup.csv (days from first diagnosis to last contact, alive = the reverse-KM event) of
``clean_tables(n=300, seed=11)``. Medians are whole days; the tolerance is 0 days.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from connectors.quality import validate_registry
from connectors.quality.checks_completeness import _km_median
from tests.connectors.test_quality_support import TODAY, clean_tables, write_sqlite

FIXTURE = Path(__file__).parents[1] / "fixtures" / "quality_reverse_km"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    tables = clean_tables(n=300, seed=11)
    return tables, write_sqlite(tables, tmp_path_factory.mktemp("fu") / "fu.sqlite")


def test_fixture_matches_the_registry(registry):
    tables, _ = registry
    ref = pd.read_csv(FIXTURE / "followup.csv")
    d0 = tables["diagnoses"].groupby("patient_id").diagnosis_date.min()
    fu = tables["follow_up"].set_index("patient_id")
    days = [(fu.last_contact_date[p] - d0[p]).days for p in fu.index]
    assert ref["days"].tolist() == days


def test_reverse_km_median_per_centre_matches_r(registry):
    _, path = registry
    expected = json.loads((FIXTURE / "medians.json").read_text())
    report = validate_registry(f"sqlite:///{path}", today=TODAY)
    medians = report["completeness.follow_up_stale"].metrics["median_follow_up_days_by_centre"]
    assert medians == {k: float(v) for k, v in expected.items() if k != "survival_version"}


def test_km_median_rules():
    # S drops to exactly 0.5 at t=2 and stays flat until 4: survival takes the midpoint
    assert _km_median({1: [0, 1], 2: [0, 1], 4: [0, 1], 5: [0, 1]}) == 3.0
    # deaths censor: 4 at risk, t=1 event (3/4), t=2 censored, t=3 event (3/4 * 1/2)
    assert _km_median({1: [0, 1], 2: [1, 0], 3: [0, 1], 4: [0, 1]}) == 3.0
    assert _km_median({1: [1, 0], 2: [1, 0]}) is None


def test_stale_share_uses_the_cutoff(registry):
    _, path = registry
    late = validate_registry(f"sqlite:///{path}", cutoff_date=dt.date(2030, 1, 1), today=TODAY)
    result = late["completeness.follow_up_stale"]
    assert result.n_failed == result.n_checked > 0  # every alive patient is stale by 2030
    assert result.status == "failed" and result.severity == "warning" and late.passed
