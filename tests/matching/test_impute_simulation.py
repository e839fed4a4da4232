"""The MI simulation scenario (benchmarks/bench_mi_simulation.py) runs: one replicate, m = 2.

The study itself (300 replicates, figures in benchmarks/README.md "C.") takes ~20 minutes;
this keeps its code from rotting: every method gives both estimands, and the MAR deletion
hits ~30% of the registry's ECOG and PCI and no trial value.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_mi_simulation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_mi_simulation", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_mi_simulation"] = module
    spec.loader.exec_module(module)
    return module


def test_one_replicate(bench):
    rows = bench.run_replicate(0, np.random.SeedSequence(5), 2)
    assert {(r["method"], r["estimand"]) for r in rows} == {
        (m, e) for m in bench.METHODS for e in ("landmark_diff", "log_hr")}
    assert all(r["error"] is None and np.isfinite(r["estimate"]) for r in rows)
    share = rows[0]["missing_ecog_at_index"], rows[0]["missing_pci"]
    assert all(0.2 < s < 0.4 for s in share)
    mi = [r for r in rows if r["method"] == "mi_within"]
    assert all(0 <= r["fmi"] <= 1 for r in mi)


def test_mar_deletes_in_the_registry_only(bench):
    from connectors import columns as cn
    from synthctl.simulation.study import simulate_replicate_frame

    full, _ = simulate_replicate_frame(bench.SPEC, 3)
    mar = bench.make_mar(full.reset_index(drop=True), np.random.default_rng(0))
    trial = mar[cn.ARM] == cn.TRIAL
    assert not mar.loc[trial, "ecog_at_index"].isna().any()
    assert mar.loc[~trial, "ecog_at_index"].isna().mean() == pytest.approx(0.3, abs=0.08)
