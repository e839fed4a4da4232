"""Is scenario B's full-data landmark bias the truth's or the design's? (issue 17, benchmarks C.)

Large-sample checks on the *latent* PFS (no schedule, no censoring: each registry or truth-pool
patient's standard-of-care survival at 24 weeks, S0(24 | lp), is known from the DGP), with the
scenario of benchmarks/bench_mi_simulation.py and a registry of 60,000 patients (~20,000
trial-eligible second-line patients) against the truth's own weighted candidate pool (~22,700):

1. Conditional exchangeability: a boosted regression of S0(24 | lp) on the seven design
   covariates, fitted on the truth pool, predicts the registry patients' values; the mean
   residual is what registry inclusion (second line before the data cut-off or loss to
   follow-up) selects beyond the covariates.
2. The PS model: ATT odds weights from a logistic PS of trial population (truth pool weighted
   by the selection model) vs registry, linear in the platinum-free interval (the benchmark's
   design) or with it capped at 12 months (as the DGP's selection uses it); the weighted mean
   of the registry's S0(24 | lp) against the truth's latent control S(24).

usage: python benchmarks/mi_truth_checks.py   (about a minute of CPU)
"""

from __future__ import annotations

import dataclasses

import bench_mi_simulation as bench
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

from sample_data import _dgp
from sample_data._tables import Structure
from sample_data._trial import candidate_pool, selection_score
from sample_data.simulator import _simulate
from sample_data.truth import compute_truth
from synthctl.simulation.truth import scenario_config

LANDMARK_DAYS = 7 * 24.0


def _covariates(c, idx: np.ndarray, *, cap_pfi: bool = False) -> np.ndarray:
    """The design covariates of patients ``idx`` at their second-line start."""
    start = c.start[idx, 1]
    pfi = c.pfi_months[idx, 1]
    cols = [(start - c.birth_day[idx]) / 365.25, c.female[idx], c.ecog[idx, 1],
            c.histology[idx] == 1, c.pci[idx], np.minimum(pfi, 12.0) if cap_pfi else pfi,
            c.crs[idx] & c.hipec[idx] & (c.surgery_day[idx] < start)]
    return np.column_stack([np.asarray(v, dtype=float) for v in cols])


def main() -> None:
    cfg = dataclasses.replace(scenario_config(bench.SPEC, 7), n_registry=60_000, n_trial=30)
    truth = compute_truth(cfg)["latent"]["control"]["survival_at_landmark"]
    rng = np.random.default_rng([cfg.structure_seed, 99])  # the truth's own pool
    pool, elig, logw = candidate_pool(rng, cfg.truth_pool, cfg, Structure.from_config(cfg))
    w = np.exp(logw - logw.max())
    s_pool = _dgp.weibull_survival(LANDMARK_DAYS, pool.lp[elig, 1], 1)
    reg, _ = _simulate(cfg)
    idx, _ = selection_score(reg, cfg)
    idx = idx[reg.start[idx, 1] <= reg.horizon[idx]]
    s_reg = _dgp.weibull_survival(LANDMARK_DAYS, reg.lp[idx, 1], 1)
    print(f"truth pool {elig.size}, registry {idx.size}; truth latent control S(24) "
          f"{truth:.4f} (weighted pool: {np.average(s_pool, weights=w):.4f})")
    fit = HistGradientBoostingRegressor(max_iter=300, random_state=0).fit(
        _covariates(pool, elig), s_pool)
    res = s_reg - fit.predict(_covariates(reg, idx))
    print(f"1. registry minus truth pool given the covariates: mean residual "
          f"{res.mean():+.4f} (SE {res.std(ddof=1) / np.sqrt(res.size):.4f})")
    y = np.r_[np.ones(elig.size), np.zeros(idx.size)]
    sw = np.r_[w / w.mean(), np.ones(idx.size)]
    for cap in (False, True):
        x = np.r_[_covariates(pool, elig, cap_pfi=cap), _covariates(reg, idx, cap_pfi=cap)]
        z = (x - x.mean(0)) / x.std(0)
        ps = LogisticRegression(C=1e6, max_iter=2000).fit(z, y, sample_weight=sw)
        p = ps.predict_proba(z[elig.size:])[:, 1]
        est = np.average(s_reg, weights=p / (1 - p))
        form = "with PFI capped at 12 months" if cap else "linear in PFI"
        print(f"2. ATT odds weights, PS {form}: control S(24) {est:.4f}, minus the truth "
              f"{est - truth:+.4f}")


if __name__ == "__main__":
    main()
