"""Time the design stage of `matching` on 1,000 trial x 1,000,000 registry patients.

Run by hand: ``python benchmarks/bench_matching.py [--n-registry 1000000] [--n-trial 1000]``.

Times (best of ``--repeats`` wall-clock runs): design matrix, PS fit (glm-equivalent IRLS),
nearest-neighbour matching (ratio 1 and 5, caliper 0.2 SD of the logit PS, without
replacement), and the whole ``match_cohort`` call (PS + matching + balance table).
R MatchIt is timed on the same data only when R has MatchIt >= 4.5.4 (Debian's 4.5.1 has the
nearest-neighbour bug fixed in 4.5.4, so it is not a valid comparison); otherwise the script
says so and prints the issue's reference figures (MatchIt 4.7.2, 780,000 rows).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from matching import LogisticPropensity, NearestMatcher, build_design_matrix, match_cohort

COVARIATES = ["age", "female", "ecog", "histology", "pci", "crs_hipec", "pfi_months"]
R_REFERENCE = {"ps": 3.2, "matching": 0.14, "rows": 780_000}  # the MatchIt 4.7.2 figures


def simulate(n_trial: int, n_registry: int, seed: int = 1) -> pd.DataFrame:
    """Registry and trial arms with the mesothelioma covariates; the trial is younger/fitter."""
    rng = np.random.default_rng(seed)
    n = n_trial + n_registry
    trial = np.r_[np.ones(n_trial, bool), np.zeros(n_registry, bool)]
    return pd.DataFrame({
        "patient_id": np.arange(n),
        "treated": trial.astype(int),
        "age": rng.normal(66, 9, n) - 4 * trial,
        "female": rng.binomial(1, 0.3, n),
        "ecog": pd.Categorical(rng.binomial(1, np.where(trial, 0.3, 0.5))),
        "histology": pd.Categorical(rng.choice(["epithelioid", "biphasic", "sarcomatoid"], n,
                                               p=[0.75, 0.17, 0.08]),
                                    categories=["epithelioid", "biphasic", "sarcomatoid"]),
        "pci": rng.integers(0, 40, n).astype(float) - 3 * trial,
        "crs_hipec": rng.binomial(1, np.where(trial, 0.5, 0.3)),
        "pfi_months": rng.exponential(8, n),
    })


def best_of(fn, repeats: int) -> tuple[float, float, object]:
    """Best and median wall-clock time of ``repeats`` runs (the median: shared machines)."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times)), out


def show(label: str, best: float, median: float, extra: str = "") -> None:
    print(f"{label:<44} {best:7.3f} s  (median {median:.3f} s){extra}")


def r_matchit_version() -> str | None:
    if shutil.which("Rscript") is None:
        return None
    r = subprocess.run(["Rscript", "-e", 'cat(as.character(packageVersion("MatchIt")))'],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


R_SCRIPT = """
suppressPackageStartupMessages(library(MatchIt))
d <- read.csv(commandArgs(TRUE)[1])
d$ecog <- factor(d$ecog); d$histology <- factor(d$histology,
  levels = c("epithelioid", "biphasic", "sarcomatoid"))
f <- treated ~ age + female + ecog + histology + pci + crs_hipec + pfi_months
t0 <- proc.time()[["elapsed"]]; ps <- fitted(glm(f, data = d, family = binomial()))
t1 <- proc.time()[["elapsed"]]
m <- matchit(f, data = d, method = "nearest", distance = qlogis(ps), caliper = 0.2)
t2 <- proc.time()[["elapsed"]]
cat(t1 - t0, t2 - t1, "\\n")
"""


def time_r(frame: pd.DataFrame) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "d.csv", Path(tmp) / "b.R"
        frame.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(csv)], capture_output=True, text=True,
                             check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-trial", type=int, default=1_000)
    ap.add_argument("--n-registry", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    frame = simulate(a.n_trial, a.n_registry)
    treated = frame["treated"].to_numpy() == 1
    print(f"{a.n_trial:,} trial x {a.n_registry:,} registry, best of {a.repeats}")

    t_dm, m_dm, dm = best_of(lambda: build_design_matrix(frame, COVARIATES), a.repeats)
    show("design matrix", t_dm, m_dm)
    t_ps, m_ps, ps = best_of(lambda: LogisticPropensity().fit(dm.model, treated), a.repeats)
    show(f"PS, logistic MLE ({ps.n_iter_} full-data IRLS steps)", t_ps, m_ps)
    logit = ps.linear_predictor_
    times = {}
    for ratio in (1, 5):
        t, med, m = best_of(lambda r=ratio: NearestMatcher(r, caliper=0.2).fit(logit, treated),
                            a.repeats)
        times[ratio] = t
        show(f"nearest 1:{ratio}, caliper 0.2 SD of logit PS", t, med,
             f"  {m.n_matched_treated_} trial matched")
    t_all, m_all, res = best_of(lambda: match_cohort(
        frame, COVARIATES, treatment_col="treated", treated_value=1, caliper=0.2), a.repeats)
    show("match_cohort (PS + 1:1 + balance table)", t_all, m_all)
    print(f"  {res!r}")

    version = r_matchit_version()
    ok = version is not None and tuple(int(x) for x in version.split(".")[:3]) >= (4, 5, 4)
    if ok:
        r_ps, r_match = time_r(frame)
        print(f"R MatchIt {version}: glm {r_ps:.3f} s, matchit nearest {r_match:.3f} s")
        print(f"ratio R / Python: PS {r_ps / t_ps:.1f}x, matching {r_match / times[1]:.1f}x, "
              f"PS + matching {(r_ps + r_match) / (t_ps + times[1]):.1f}x")
    else:
        why = ("R is not installed" if shutil.which("Rscript") is None else
               "R has no MatchIt" if version is None else
               f"R has MatchIt {version} (< 4.5.4: Debian's buggy nearest-neighbour code)")
        print(f"R comparison skipped: {why}.")
        ref = R_REFERENCE
        print(f"issue's reference, MatchIt 4.7.2 on {ref['rows']:,} rows: glm {ref['ps']} s, "
              f"matching {ref['matching']} s; ratio reference / Python: "
              f"PS + matching {(ref['ps'] + ref['matching']) / (t_ps + times[1]):.1f}x")


if __name__ == "__main__":
    main()
