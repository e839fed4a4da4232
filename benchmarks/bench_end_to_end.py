"""End-to-end scale benchmark of ``synthctl run`` (by hand, not in CI).

For registries of 10k, 100k and 1M patients drawn from ``sample_data.simulator`` and written
by ``sample_data.writer`` into SQLite (under ``--workdir``) and PostgreSQL (a throw-away
schema in database ``test`` on 127.0.0.1), run the demo study without bootstrap, one stage
per child process, and record for each stage the stage's own wall time (from the manifest)
and the child's peak resident set size (``os.wait4`` rusage, so it is that child's alone).
Also: the design stage with R MatchIt on the same covariates when R has MatchIt >= 4.5.4,
and the bootstrap (1,000 replicates) of the demo study with 1 and 2 workers.

    python benchmarks/bench_end_to_end.py --sizes 10000 100000 1000000 \
        --backends sqlite postgresql --bootstrap 1000 --json /tmp/bench_end_to_end.json

Prints a markdown table (the one in benchmarks/README.md, "End to end").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STAGES = ("extract", "design", "analyze", "report")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_VM_HWM = """
def vm_hwm_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""
_STAGE_CHILD = _VM_HWM + """
import json, sys, time
t0 = time.perf_counter()
from synthctl.runner import run_study
t_import = time.perf_counter() - t0
res = run_study(sys.argv[1], sys.argv[2], stages=(sys.argv[3],))
stage = res.manifest["stages"][sys.argv[3]]
print(json.dumps({"stage_seconds": stage.get("seconds"), "import_seconds": t_import,
                  "peak_rss_mib": vm_hwm_mib()}))
"""


def _run_child(code: str, *args: str) -> dict:
    """Run ``python -c code args``: its last JSON line, wall time and peak RSS (MiB).

    ``os.wait4`` returns the rusage of that one child (``RUSAGE_CHILDREN`` would be the
    maximum over every child so far); output goes to temporary files so nothing blocks.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT,
                                stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{stderr[-3000:]}")
    info = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    # Linux keeps the parent's RSS at fork time in the child's ru_maxrss across exec, so
    # the child reports its own high-water mark (VmHWM of its post-exec address space)
    info.setdefault("peak_rss_mib", usage.ru_maxrss / 1024)
    info.update(wall_seconds=wall)
    return info


def _make_registry(n: int, workdir: Path, seed: int) -> tuple[dict, Path, float]:
    from sample_data.simulator import SimulationConfig, simulate_scenario

    t0 = time.perf_counter()
    # the truth (Monte Carlo, not needed here) on a token pool to save minutes
    sc = simulate_scenario(
        SimulationConfig(seed=seed, n_registry=n, truth_pool=1000, truth_draws=1000)
    )
    trial_dir = workdir / f"trial_{n}"
    trial_dir.mkdir(parents=True, exist_ok=True)
    sc.trial_adsl.to_csv(trial_dir / "trial_adsl.csv", index=False)
    sc.trial_adtte.to_csv(trial_dir / "trial_adtte.csv", index=False)
    return sc.registry_tables, trial_dir, time.perf_counter() - t0


def _write_sqlite(tables: dict, path: Path) -> float:
    from sample_data.writer import write_registry_sqlite

    if path.exists():
        path.unlink()
    t0 = time.perf_counter()
    write_registry_sqlite(tables, path)
    return time.perf_counter() - t0


def _write_postgres(tables: dict, schema: str) -> float:
    import sqlalchemy as sa

    from sample_data.writer import write_registry

    engine = sa.create_engine(PG_URL)
    with engine.begin() as con:
        con.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    t0 = time.perf_counter()
    write_registry(engine, tables, schema=schema)
    engine.dispose()
    return time.perf_counter() - t0


def _drop_postgres(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    with engine.begin() as con:
        con.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def _study_spec(workdir: Path, name: str, url: str, schema: str | None, trial_dir: Path,
                bootstrap: int = 0) -> Path:
    """The demo study with the benchmark's registry and trial files, bootstrap as given."""
    from sample_data.paths import DEMO_SPEC

    spec = yaml.safe_load(Path(DEMO_SPEC).read_text())
    spec["registry"]["url"] = url
    if schema is None:
        spec["registry"].pop("schema", None)
    else:
        spec["registry"]["schema"] = schema
    spec["trial"]["adsl"] = str(trial_dir / "trial_adsl.csv")
    spec["trial"]["adtte"] = str(trial_dir / "trial_adtte.csv")
    spec.setdefault("analysis", {})["bootstrap"] = bootstrap
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _run_stages(spec: Path, out: Path) -> dict[str, dict]:
    if out.exists():
        shutil.rmtree(out)
    return {stage: _run_child(_STAGE_CHILD, str(spec), str(out), stage) for stage in STAGES}


def _r_matchit_version() -> str | None:
    """MatchIt's version if R has MatchIt >= 4.5.4 (Debian's 4.5.1 is buggy), else None."""
    if shutil.which("Rscript") is None:
        return None
    proc = subprocess.run(
        ["Rscript", "-e", 'cat(as.character(packageVersion("MatchIt")))'],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        return None
    version = proc.stdout.strip()
    parts = tuple(int(p) for p in version.replace("-", ".").split(".")[:3])
    return version if parts >= (4, 5, 4) else None


_R_DESIGN = r"""
suppressMessages(library(MatchIt))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
f <- as.formula(args[2])
t0 <- proc.time()[["elapsed"]]
m <- matchit(f, data = d, method = "nearest", distance = "glm", estimand = "ATT",
             ratio = as.integer(args[3]), caliper = as.numeric(args[4]),
             std.caliper = TRUE, link = "linear.logit")
cat(proc.time()[["elapsed"]] - t0, "\n")
"""


def _r_design_seconds(out: Path, spec_path: Path, workdir: Path) -> float | None:
    """Time R MatchIt's nearest matching on the extract's covariates (same formula)."""
    import pandas as pd

    spec = yaml.safe_load(spec_path.read_text())
    design = spec.get("design", {})
    if design.get("method", "nearest") != "nearest":
        return None
    frame = pd.read_parquet(out / "covariates.parquet")
    covs = spec["covariates"]
    data = frame[["arm", *covs]].dropna()
    data = data.assign(treat=(data["arm"] == "trial").astype(int)).drop(columns="arm")
    csv = workdir / "r_design.csv"
    data.to_csv(csv, index=False)
    script = workdir / "r_design.R"
    script.write_text(_R_DESIGN)
    formula = "treat ~ " + " + ".join(covs)
    proc = subprocess.run(
        ["Rscript", str(script), str(csv), formula, str(design.get("ratio", 1)),
         str(design.get("caliper", 0.2))],
        capture_output=True, text=True, check=True,
    )
    return float(proc.stdout.split()[-1])


_BOOT_CHILD = _VM_HWM + """
import json, sys
sys.path.insert(0, "benchmarks")
from bench_end_to_end import time_bootstrap
res = time_bootstrap(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
print(json.dumps({**res, "peak_rss_mib": vm_hwm_mib()}))
"""


def time_bootstrap(workdir: str, n_boot: int, n_jobs: int) -> dict:
    """Wall time of the demo study's bootstrap (design re-run in each replicate).

    The runner's analyze stage calls `reports.analysis.analyze_study` with ``n_jobs=1``; to
    time 1 and 2 workers this reproduces that call (the analysis frame built as analyze builds
    it, through the stage's own helpers) with ``n_jobs`` as given.
    """
    import dataclasses

    import pandas as pd

    from connectors import columns as cn
    from reports.analysis import analyze_study
    from sample_data.paths import DEMO_SPEC
    from synthctl.manifest import Manifest
    from synthctl.runner import run_study
    from synthctl.specfile import load_spec
    from synthctl.stages._context import COHORT, COVARIATES, StageContext
    from synthctl.stages.analyze import EVENT, TIME, Redesign, _outcomes, analysis_settings

    folder = Path(workdir) / "demo_design"
    loaded = load_spec(DEMO_SPEC)
    if not (folder / COHORT).is_file():
        run_study(loaded, folder, stages=("extract", "design"))
    spec = loaded.spec
    ctx = StageContext(loaded, folder, Manifest.load_or_new(folder))
    ctx.manifest.start_stage("analyze")  # the outcome checks record into the analyze stage
    covs = pd.read_parquet(folder / COVARIATES)
    days, event = _outcomes(ctx, covs)
    frame = covs.copy()
    frame[TIME] = cn.days_to(spec.analysis.landmark_unit, days)
    frame[EVENT] = event
    eligible = frame[frame[TIME].notna() & frame[EVENT].notna()].reset_index(drop=True)
    redesign = Redesign(spec, spec.design)
    settings = dataclasses.replace(analysis_settings(spec, n_jobs), bootstrap=n_boot)

    t0 = time.perf_counter()
    result = analyze_study(eligible, redesign(eligible), redesign, settings)
    boot = result.bootstrap
    if boot.n_failed:  # a benchmark of failing replicates would time nothing useful
        raise RuntimeError(f"{boot.n_failed} of {n_boot} bootstrap replicates failed")
    return {"seconds": time.perf_counter() - t0, "n_rows": len(eligible)}


def machine() -> str:
    import numpy

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{mem:.0f} GiB RAM, Python {platform.python_version()}, numpy {numpy.__version__}, "
            f"{platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"],
                    choices=["sqlite", "postgresql"])
    ap.add_argument("--bootstrap", type=int, default=1000, help="0 skips the bootstrap part")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=20250601)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="synthctl_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    r_version = _r_matchit_version()
    print(f"machine: {machine()}")
    print(f"workdir: {workdir}")
    if r_version is None:
        print("R MatchIt >= 4.5.4 is unavailable: the R design column is skipped")
    rows: list[dict] = []
    for n in args.sizes:
        tables, trial_dir, gen_s = _make_registry(n, workdir, args.seed)
        print(f"n={n}: simulated in {gen_s:.1f} s", flush=True)
        for backend in args.backends:
            if backend == "sqlite":
                db = workdir / f"registry_{n}.sqlite"
                load_s = _write_sqlite(tables, db)
                url, schema = f"sqlite:///{db}", None
            else:
                schema = f"synthctl_bench_{n}_{os.getpid()}"
                load_s = _write_postgres(tables, schema)
                url = PG_URL
            spec = _study_spec(workdir, f"study_{backend}_{n}", url, schema, trial_dir)
            out = workdir / f"out_{backend}_{n}"
            try:
                stages = _run_stages(spec, out)
                r_s = _r_design_seconds(out, spec, workdir) if r_version else None
            finally:
                if backend == "postgresql":
                    _drop_postgres(schema)
            row = {"n": n, "backend": backend, "load_seconds": load_s, "stages": stages,
                   "r_design_seconds": r_s}
            rows.append(row)
            print(json.dumps(row), flush=True)
        del tables
    boot = []
    if args.bootstrap:
        for n_jobs in (1, 2):
            boot.append({"n_boot": args.bootstrap, "n_jobs": n_jobs,
                         **_run_child(_BOOT_CHILD, str(workdir), str(args.bootstrap),
                                      str(n_jobs))})
            print(json.dumps(boot[-1]), flush=True)
    print()
    print(markdown(rows, boot, r_version))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows, "bootstrap": boot,
                                         "r_matchit": r_version}, indent=2))
    return 0


def markdown(rows: list[dict], boot: list[dict], r_version: str | None) -> str:
    head = "| registry | backend | " + " | ".join(f"{s} s / MiB" for s in STAGES)
    head += " | total s | R MatchIt design s |"
    lines = [head, "|" + "---|" * (len(STAGES) + 4)]
    for row in rows:
        cells = [f"{row['n']:,}", row["backend"]]
        total = 0.0
        for s in STAGES:
            st = row["stages"][s]
            total += st["stage_seconds"] or 0.0
            cells.append(f"{st['stage_seconds']:.2f} / {st['peak_rss_mib']:.0f}")
        cells.append(f"{total:.1f}")
        r_s = row["r_design_seconds"]
        cells.append("unavailable" if r_version is None else (
            "n/a" if r_s is None else
            f"{r_s:.2f} (Python/R {row['stages']['design']['stage_seconds'] / r_s:.2f})"))
        lines.append("| " + " | ".join(cells) + " |")
    if boot:
        lines += ["", "| bootstrap replicates | workers | wall s | peak RSS MiB |",
                  "|---|---|---|---|"]
        lines += [f"| {b['n_boot']} | {b['n_jobs']} | {b['seconds']:.1f} | "
                  f"{b['peak_rss_mib']:.0f} |" for b in boot]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
