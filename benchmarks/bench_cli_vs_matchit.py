"""`synthctl extract` + `synthctl design` (CLI) against R read.csv + MatchIt 4.7.2 (issue 16).

Run by hand (never in CI):

    python benchmarks/bench_cli_vs_matchit.py [--n-trial 1000] [--n-registry 1000000]
        [--repeats 3] [--r-lib benchmarks/data/rlib]

Data: one flat CSV (written once to ``benchmarks/data/``, gitignored) of 1,000 trial and
1,000,000 registry patients with the mesothelioma covariates; ``ecog`` takes 0/1/2 so that the
eligibility ``ecog <= 1`` leaves ~780,000 rows. Design: logistic PS, 1:1 nearest neighbour
without replacement, caliper 0.2 SD of the logit PS (MatchIt: ``distance = "glm",
link = "linear.logit", caliper = 0.2``).

Each repeat runs, back to back so that both see the same machine load:
1. the CLI: ``python -m synthctl extract`` then ``design`` (two processes, fresh folder), wall;
2. R: ``Rscript`` timing ``read.csv`` + ``matchit()`` inside the process (and the process wall,
   which adds R's start-up and ``library(MatchIt)``);
3. in process: our PS fit + 1:1 matching on the eligible rows against ``matchit()``'s time.
It prints each repeat, the medians and the ratios (ours / R's: below 1 is faster), with the
load average (the machine is shared).

R: MatchIt must be 4.7.2, built from its public source (Debian's 4.5.1 has the nearest-neighbour
bug fixed in 4.5.4). With R present but no such library, build one (see benchmarks/README.md,
"CLI against MatchIt"): ``R CMD INSTALL -l benchmarks/data/rlib`` rlang >= 1.1.0, chk >= 0.10.0,
then MatchIt at kosukeimai/MatchIt@bccb2fc (4.7.2). Without R, or without that library, the R
columns are skipped and the script says why.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matching import LogisticPropensity, NearestMatcher, build_design_matrix  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
MATCHIT_VERSION = "4.7.2"
COVARIATES = ["age", "female", "ecog", "histology", "pci", "crs_hipec", "pfi_months"]
HISTOLOGY = ["epithelioid", "biphasic", "sarcomatoid"]
CALIPER = 0.2  # SD of the logit PS

SPEC = """\
study: {{name: "bench cli vs matchit", seed: 1}}
data: {{path: {csv}, id: patient_id, arm: treated, trial_value: 1,
       time: pfs_weeks, event: pfs_event, time_unit: weeks}}
eligibility: ["ecog <= 1"]
covariates: [{covariates}]
design: {{method: nearest, ratio: 1, caliper: {caliper}, caliper_scale: logit,
         balance_threshold: 1.0}}
analysis: {{landmarks: [24], landmark_unit: weeks, null_rate: 0.35, rmst_tau: 52, bootstrap: 0}}
"""

R_SCRIPT = """
args <- commandArgs(TRUE)
.libPaths(c(args[2], .libPaths()))  # MatchIt 4.7.2 and its newer rlang/chk first
suppressPackageStartupMessages(library(MatchIt))
el <- function() proc.time()[["elapsed"]]
t0 <- el()
d <- read.csv(args[1])
t1 <- el()
d <- d[d$ecog <= 1, ]
d$ecog <- factor(d$ecog)
d$histology <- factor(d$histology, levels = c("epithelioid", "biphasic", "sarcomatoid"))
t2 <- el()
m <- matchit(treated ~ age + female + ecog + histology + pci + crs_hipec + pfi_months,
             data = d, method = "nearest", distance = "glm", link = "linear.logit",
             caliper = CALIPER)
t3 <- el()
cat(as.character(packageVersion("MatchIt", lib.loc = args[2])), t1 - t0, t3 - t2, nrow(d),
    sum(m$treat == 1 & m$weights > 0), "\\n")
"""


def simulate(n_trial: int, n_registry: int, seed: int = 16) -> pd.DataFrame:
    """Trial (younger, fitter) and registry patients; registry ecog 0/1/2 = 38/40/22 %."""
    rng = np.random.default_rng(seed)
    n = n_trial + n_registry
    trial = np.r_[np.ones(n_trial, bool), np.zeros(n_registry, bool)]
    ecog = np.where(trial, rng.binomial(1, 0.3, n),
                    rng.choice([0, 1, 2], n, p=[0.38, 0.40, 0.22]))
    return pd.DataFrame({
        "patient_id": [f"P{i:07d}" for i in range(n)],
        "treated": trial.astype(int),
        "age": np.round(rng.normal(66, 9, n) - 4 * trial, 1),
        "female": rng.binomial(1, 0.3, n),
        "ecog": ecog,
        "histology": rng.choice(HISTOLOGY, n, p=[0.75, 0.17, 0.08]),
        "pci": rng.integers(0, 40, n) - 3 * trial.astype(int),
        "crs_hipec": rng.binomial(1, np.where(trial, 0.5, 0.3)),
        "pfi_months": np.round(rng.exponential(8, n), 2),
        "pfs_weeks": np.round(rng.exponential(40, n), 1),
        "pfs_event": rng.binomial(1, 0.8, n),
    })


def data_csv(n_trial: int, n_registry: int) -> Path:
    """The flat CSV, written once per size."""
    path = DATA / f"cli_vs_matchit_{n_trial}_{n_registry}.csv"
    if not path.is_file():
        DATA.mkdir(parents=True, exist_ok=True)
        simulate(n_trial, n_registry).to_csv(path.with_suffix(".tmp"), index=False)
        path.with_suffix(".tmp").rename(path)
    return path


def r_status(r_lib: Path) -> str | None:
    """None when Rscript and MatchIt 4.7.2 in ``r_lib`` are usable, else why not."""
    if shutil.which("Rscript") is None:
        return "R is not installed"
    code = f'cat(as.character(packageVersion("MatchIt", lib.loc = "{r_lib}")))'
    r = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    version = r.stdout.strip()
    if r.returncode != 0 or not version:
        return f"no MatchIt in {r_lib} (build 4.7.2 from source: see benchmarks/README.md)"
    if version != MATCHIT_VERSION:
        return f"MatchIt {version} in {r_lib}, not {MATCHIT_VERSION}"
    return None


def time_cli(spec: Path, work: Path) -> tuple[float, float]:
    """Wall seconds of ``synthctl extract`` and ``synthctl design`` (each its own process)."""
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for stage in ("extract", "design"):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "synthctl", stage, str(spec), "--out", str(out),
                            "-q"], env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode not in (0, 1):  # 1: a declared check failed, outputs written
            raise RuntimeError(f"synthctl {stage} exited {r.returncode}:\n{r.stderr}")
    return times[0], times[1]


def time_r(csv: Path, r_lib: Path, work: Path) -> dict[str, float]:
    script = work / "matchit.R"
    script.write_text(R_SCRIPT.replace("CALIPER", repr(CALIPER)))
    t0 = time.perf_counter()
    out = subprocess.run(["Rscript", str(script), str(csv), str(r_lib)], capture_output=True,
                         text=True, check=True).stdout.split()
    wall = time.perf_counter() - t0
    return {"read": float(out[1]), "matchit": float(out[2]), "wall": wall, "rows": int(out[3]),
            "matched": int(out[4])}


def time_in_process(frame: pd.DataFrame) -> tuple[float, int]:
    """Our PS fit + 1:1 nearest matching on the eligible rows: seconds, trial matched."""
    treated = frame["treated"].to_numpy() == 1
    t0 = time.perf_counter()
    dm = build_design_matrix(frame, COVARIATES)
    ps = LogisticPropensity().fit(dm.model, treated)
    m = NearestMatcher(1, caliper=CALIPER).fit(ps.linear_predictor_, treated)
    return time.perf_counter() - t0, int(m.n_matched_treated_)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-trial", type=int, default=1_000)
    ap.add_argument("--n-registry", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--r-lib", type=Path, default=DATA / "rlib")
    a = ap.parse_args()
    csv = data_csv(a.n_trial, a.n_registry)
    why_no_r = r_status(a.r_lib.resolve())
    frame = pd.read_csv(csv).query("ecog <= 1").reset_index(drop=True)
    for col, levels in (("ecog", None), ("histology", HISTOLOGY)):
        frame[col] = pd.Categorical(frame[col], categories=levels)
    print(f"{csv.name}: {a.n_trial:,} trial + {a.n_registry:,} registry, {len(frame):,} rows "
          f"after ecog <= 1; {a.repeats} repeats; load average (1/5/15 min) {load()}")
    print("R: " + (f"MatchIt {MATCHIT_VERSION} from {a.r_lib}" if why_no_r is None
                   else f"skipped, {why_no_r}"))
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = work / "study.yaml"
        spec.write_text(SPEC.format(csv=csv, covariates=", ".join(COVARIATES), caliper=CALIPER))
        for i in range(a.repeats):
            row: dict[str, float] = {}
            row["extract"], row["design"] = time_cli(spec, work)
            row["cli"] = row["extract"] + row["design"]
            row["ours_ps_match"], matched = time_in_process(frame)
            line = (f"[{i + 1}] load {load()}  CLI extract {row['extract']:.2f} s + design "
                    f"{row['design']:.2f} s = {row['cli']:.2f} s; in-process PS + matching "
                    f"{row['ours_ps_match']:.2f} s ({matched} trial matched)")
            if why_no_r is None:
                r = time_r(csv, a.r_lib.resolve(), work)
                row.update(r_read=r["read"], r_matchit=r["matchit"],
                           r_total=r["read"] + r["matchit"], r_wall=r["wall"])
                line += (f"; R read.csv {r['read']:.2f} s + matchit {r['matchit']:.2f} s = "
                         f"{row['r_total']:.2f} s (Rscript wall {r['wall']:.2f} s, "
                         f"{r['matched']} trial matched)")
            print(line, flush=True)
            rows.append(row)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"\nmedians of {len(rows)}: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()))
    if why_no_r is None:
        print(f"ratio CLI extract+design / R read.csv+matchit: {med['cli'] / med['r_total']:.2f}x "
              f"(goal <= 0.5x, stretch 0.2x); / Rscript wall: {med['cli'] / med['r_wall']:.2f}x")
        print(f"ratio in-process PS+matching / matchit(): "
              f"{med['ours_ps_match'] / med['r_matchit']:.3f}x "
              f"(= {med['r_matchit'] / med['ours_ps_match']:.1f}x faster; goal >= 5x)")
        per_repeat = [r["cli"] / r["r_total"] for r in rows]
        print("per-repeat CLI / R ratios: " + ", ".join(f"{x:.2f}" for x in per_repeat))
    print(f"load average at the end {load()}")


if __name__ == "__main__":
    main()
