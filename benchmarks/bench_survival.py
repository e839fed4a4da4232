"""Speed of the survival estimators on large weighted data (run by hand, not in CI).

usage: python benchmarks/bench_survival.py [--rows 1000000] [--lifelines-rows 50000]

Times, on simulated weighting-design data (both arms, non-integer weights, times rounded to
0.01 week so there are ties): weighted KM with the IJ variance (rows and pair clusters),
landmark + median, RMST, the Cox model with Efron ties and the robust sandwich (rows and
clusters), the whole `compare_arms`; and lifelines' CoxPHFitter(robust=True) for comparison.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from reports.compare import compare_arms
from reports.cox import cox_hazard_ratio
from reports.km import km_estimate
from reports.median import median_survival
from reports.rmst import rmst


def simulate(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = (rng.random(n) < 0.05).astype(int)
    t_ev = rng.exponential(np.where(arm == 1, 30.0, 20.0))
    t_c = rng.uniform(10, 120, n)
    return pd.DataFrame(
        {
            "time": np.round(np.minimum(t_ev, t_c), 2),
            "event": (t_ev <= t_c).astype(int),
            "arm": arm,
            "w": np.where(arm == 1, 1.0, rng.gamma(0.5, 0.2, n)),
            "pair": np.arange(n) // 2,
        }
    )


def timed(label: str, fn, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:<58s} {best:8.2f} s")
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--lifelines-rows", type=int, default=50_000)
    args = ap.parse_args()
    d = simulate(args.rows)
    t, e, w, a, cl = (d[c].to_numpy() for c in ("time", "event", "w", "arm", "pair"))
    n = args.rows
    print(f"rows: {n:,}  distinct times: {np.unique(t).size:,}  events: {e.sum():,}")
    timed(
        f"KM, IJ variance (each row a cluster), {n:,} rows",
        lambda: km_estimate(t, e, w, variance="ij"),
    )
    timed(f"KM, IJ variance, pair clusters, {n:,} rows", lambda: km_estimate(t, e, w, cl))
    curve = km_estimate(t, e, w)
    timed(
        "landmark S(24) + median from the fitted curve",
        lambda: (curve.at([24.0]), median_survival(curve)),
    )
    timed("RMST(52) from the fitted curve", lambda: rmst(curve, 52.0))
    timed(f"KM + RMST(52), {n:,} rows", lambda: rmst(km_estimate(t, e, w), 52.0))
    timed(
        f"Cox Efron + robust SE (rows) + score tests, {n:,} rows",
        lambda: cox_hazard_ratio(t, e, a, w),
        repeat=1,
    )
    timed(
        f"Cox Efron + robust SE (pair clusters), {n:,} rows",
        lambda: cox_hazard_ratio(t, e, a, w, cl, cluster_name="pair"),
        repeat=1,
    )
    timed(
        f"compare_arms (KM x2, landmark, median, Cox, RMST), {n:,} rows",
        lambda: compare_arms(
            d,
            time_col="time",
            event_col="event",
            arm_col="arm",
            treated_value=1,
            weight_col="w",
            landmarks=[24],
            null_rate=0.35,
            rmst_tau=52,
        ),
        repeat=1,
    )
    m = args.lifelines_rows
    if m:
        from lifelines import CoxPHFitter

        small = d.iloc[:m][["time", "event", "arm", "w"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            timed(
                f"lifelines CoxPHFitter(robust=True), {m:,} rows",
                lambda: CoxPHFitter().fit(small, "time", "event", weights_col="w", robust=True),
                repeat=1,
            )
        timed(
            f"reports.cox (same data), {m:,} rows",
            lambda: cox_hazard_ratio(*(small[c].to_numpy() for c in ("time", "event", "arm", "w"))),
            repeat=1,
        )


if __name__ == "__main__":
    main()
