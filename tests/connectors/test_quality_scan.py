"""Large pools: the grouped-scan path of the pool checks gives what the IN-list path gives."""

from __future__ import annotations

import pytest

from connectors.quality import _engine, run_pool_checks
from tests.connectors.test_quality_pool import defective  # noqa: F401 - fixture
from tests.connectors.test_quality_support import TODAY


def _outcome(path, ids, monkeypatch, scan_above):
    monkeypatch.setattr(_engine, "SCAN_ABOVE", scan_above)
    monkeypatch.setattr(_engine, "SCAN_CHUNK_ROWS", 97)  # several fetches, odd boundaries
    return run_pool_checks(f"sqlite:///{path}", ids, today=TODAY)


@pytest.mark.slow
def test_scan_and_in_list_paths_agree_on_a_defective_registry(defective, monkeypatch):  # noqa: F811
    path, _, by_patient, all_ids = defective
    pool = all_ids[::2] + sorted(by_patient)  # half the registry plus every defective patient
    chunked = _outcome(path, pool, monkeypatch, scan_above=10**9)
    scanned = _outcome(path, pool, monkeypatch, scan_above=0)
    assert scanned.excluded == chunked.excluded
    assert chunked.excluded  # the injected defects are found at all
    assert [(r.id, r.status, r.n_checked, r.n_failed) for r in scanned.results] == [
        (r.id, r.status, r.n_checked, r.n_failed) for r in chunked.results
    ]
