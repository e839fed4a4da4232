"""The generated ``reanalysis.R`` re-derives results.json with R survival: every row passes.

Runs the script with Rscript on the demo (registry, ATT-odds weighting, bootstrap: the
analytic SEs are compared) and on a matched design (flat file, nearest 1:1: Cox variance
clustered on the matched set). Skipped, saying why, when Rscript or an R package is missing;
CI installs them (.ci/run). Tolerances: `synthctl.reanalysis` (RTOL_EXACT, RTOL_COX).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from synthctl import outdir
from synthctl.reanalysis import RTOL_COX, RTOL_EXACT, RTOL_TURNBULL
from tests.synthctl.adam_runs import (
    alignment_run,
    copy_run,
    demo_run,
    flat_response_run,
    imputed_run,
    matched_run,
    multi_line_run,
    response_run,
)

pytestmark = pytest.mark.slow
RSCRIPT = shutil.which("Rscript")
_PACKAGES = ("survival", "jsonlite", "haven", "sandwich", "foreign")


def _missing_r_packages() -> list[str]:
    if RSCRIPT is None:
        return []
    code = ("cat(Filter(function(p) !requireNamespace(p, quietly = TRUE), c("
            + ", ".join(f'"{p}"' for p in _PACKAGES) + ")))")
    out = subprocess.run([RSCRIPT, "-e", code], capture_output=True, text=True, timeout=120)
    return out.stdout.split()


needs_r = pytest.mark.skipif(RSCRIPT is None, reason="Rscript is not installed (CI installs "
                             "r-base-core and r-cran-survival/jsonlite/haven/sandwich in .ci/run)")


def _rscript(run: Path, *args: str) -> subprocess.CompletedProcess:
    missing = _missing_r_packages()
    if missing:
        pytest.skip(f"R package(s) {', '.join(missing)} not installed (CI installs them)")
    return subprocess.run([RSCRIPT, str(run / outdir.REANALYSIS_R), *args], capture_output=True,
                          text=True, timeout=300)


def _n_checks(run: Path) -> int:
    return len(re.findall(r"^  list\(label = ", (run / outdir.REANALYSIS_R).read_text(), re.M))


def _assert_all_pass(proc: subprocess.CompletedProcess, n: int) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"reanalysis: {n} checks, {n} passed, 0 failed" in proc.stdout, proc.stdout
    rows = [ln for ln in proc.stdout.splitlines() if " PASS" in ln or " FAIL" in ln]
    assert len(rows) == n and not any(" FAIL" in r for r in rows)


@needs_r
def test_demo_weighting_every_row_passes():
    run = demo_run()
    proc = _rscript(run)  # run folder: the script's own folder
    n = _n_checks(run)
    assert n == 36  # 1 landmark x 3 x 4, medians 2 x 3, HR 6, RMST 3 x 4
    _assert_all_pass(proc, n)
    # bootstrap in results.json: SEs and limits are the analytic ones, and the table says so
    assert "analytic (results.json's primary is the bootstrap one)" in proc.stdout


@needs_r
def test_matched_design_every_row_passes():
    run = matched_run()
    script = (run / outdir.REANALYSIS_R).read_text()
    assert "cluster = MATCHSET" in script and "robust = TRUE)" not in script
    _assert_all_pass(_rscript(run), _n_checks(run))


def test_weighting_script_is_robust_per_row_and_carries_the_analysis_settings():
    script = (demo_run() / outdir.REANALYSIS_R).read_text()
    results = json.loads((demo_run() / outdir.RESULTS).read_text())
    rm = results["endpoints"]["PFS"]["rmst"]
    assert "robust = TRUE)" in script and "cluster = MATCHSET" not in script
    assert "LANDMARKS <- c(24.0)" in script and f"TAU <- {rm['tau']!r}" in script
    assert 'CONF_TYPE <- "log"' in script and "d$AVAL / 7.0" in script
    assert f"rtol = {RTOL_EXACT}" in script and f"rtol = {RTOL_COX}" in script


@needs_r
def test_a_number_that_differs_fails_its_row(tmp_path: Path):
    """The check can fail: a results.json whose HR and control landmark differ by 1e-4
    relative (far below any real change of data or method) gives two FAIL rows, exit 1."""
    run = copy_run(matched_run(), tmp_path / "run")
    path = run / outdir.RESULTS
    res = json.loads(path.read_text())
    ep = res["endpoints"]["PFS"]
    ep["hazard_ratio"]["estimate"] *= 1 + 1e-4
    ep["landmarks"][0]["control"]["se"] *= 1 + 1e-4
    path.write_text(json.dumps(res))
    proc = _rscript(run, str(run))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fails = [ln for ln in proc.stdout.splitlines() if " FAIL" in ln]
    assert len(fails) == 2
    assert any(ln.lstrip().startswith("hazard ratio estimate") for ln in fails)
    assert any(ln.lstrip().startswith("S(24 weeks) control se") for ln in fails)


@needs_r
@pytest.mark.parametrize("matched", [False, True], ids=["weighting", "nearest"])
def test_response_study_every_row_passes(matched: bool):
    """demo_study_response.yaml: the ORR rows (proportions, difference, risk and odds ratio,
    trial vs null) re-derived with glm + sandwich; matched: vcovCL on the matched set."""
    run = response_run(matched)
    script = (run / outdir.REANALYSIS_R).read_text()
    if matched:
        assert 'vcovCL(f, cluster = ~MATCHSET, type = "HC0", cadjust = FALSE)' in script
    else:
        assert 'vcovHC(f, type = "HC0")' in script and "vcovCL(f" not in script
    n = _n_checks(run)
    assert n == 36 + 4 * 3 + 5 * 2 + 5  # PFS, proportions (trial/control/difference), ratios,
    proc = _rscript(run)  # trial vs null
    _assert_all_pass(proc, n)
    assert "Simon two-stage numbers" in proc.stdout  # said, not silently skipped


@needs_r
def test_flat_file_response_every_row_passes():
    """data.response of a flat file (no BOR records), nearest 1:1: clustered on MATCHSET."""
    import pandas as pd

    run = flat_response_run()
    adrs = pd.read_csv(run / outdir.ADRS_CSV)
    assert set(adrs["PARAMCD"]) == {"ORR"}
    assert "cluster = ~MATCHSET" in (run / outdir.REANALYSIS_R).read_text()
    _assert_all_pass(_rscript(run), _n_checks(run))


@needs_r
def test_alignment_study_turnbull_rows_pass():
    run = alignment_run()
    n = _n_checks(run)
    assert n == 36 + 3
    proc = _rscript(run)
    _assert_all_pass(proc, n)
    rows = [ln for ln in proc.stdout.splitlines() if ln.lstrip().startswith("Turnbull")]
    assert len(rows) == 3 and all(f"{RTOL_TURNBULL:.0e}" in r for r in rows)


@needs_r
def test_multi_line_study_clusters_on_the_patient_and_every_row_passes():
    run = multi_line_run()
    script = (run / outdir.REANALYSIS_R).read_text()
    assert "cluster = USUBJID" in script and 'KEY <- c("USUBJID", "LINESEQ")' in script
    assert "vcovCL(f, cluster = ~USUBJID" in script  # the ORR too (designed_frame's rule)
    _assert_all_pass(_rscript(run), _n_checks(run))


@needs_r
def test_imputed_design_pools_by_rubins_rules_and_every_row_passes():
    """design.missing: impute: each imputation analysed in R, pooled by Rubin's rules (no
    mice); the per-imputation HRs and landmark differences are rows too."""
    run = imputed_run()
    n = _n_checks(run)
    assert n == 36 + 3 * 2  # pooled rows + (HR, S(24) difference) per imputation
    _assert_all_pass(_rscript(run), n)


def _tamper(run: Path, dest: Path, edit) -> Path:
    out = copy_run(run, dest)
    path = out / outdir.RESULTS
    res = json.loads(path.read_text())
    edit(res)
    path.write_text(json.dumps(res))
    return out


@needs_r
def test_new_rows_can_fail(tmp_path: Path):
    """A 1e-4 relative change of an ORR ratio, an ORR per-arm SE, a multi-line HR SE, a pooled
    limit, one imputation's log HR or a Turnbull landmark each fail their row."""
    def orr(res):
        p = res["endpoints"]["ORR"]["proportion"]
        p["ratio"]["estimate"] *= 1 + 1e-4
        p["control"]["se"] *= 1 + 1e-4
        res["endpoints"]["ORR"]["trial_vs_null"]["p_value"] *= 1 + 1e-4

    def turnbull(res):
        lm = res["endpoints"]["PFS"]["alignment"]["estimates"]["turnbull"]["landmarks"][0]
        lm["control"]["estimate"] *= 1 + 1e-4

    def lines(res):
        res["endpoints"]["PFS"]["hazard_ratio"]["se_log"] *= 1 + 1e-4

    def imputed(res):
        ep = res["endpoints"]["PFS"]
        ep["landmarks"][0]["control"]["upper"] *= 1 + 1e-4  # a t limit of the pooled S(t)
        ep["imputation"]["per_imputation"][1]["log_hr"] *= 1 + 1e-4

    for name, run, edit, expected in (
            ("orr", response_run(False), orr, {"ORR ratio estimate", "ORR control se",
                                               "ORR trial vs null p_value"}),
            ("turnbull", alignment_run(), turnbull, {"Turnbull S(24 weeks) control estimate"}),
            ("lines", multi_line_run(), lines, {"hazard ratio se_log"}),
            ("imputed", imputed_run(), imputed, {"S(24 weeks) control upper",
                                                 "imputation 2 log hazard ratio"})):
        copy = _tamper(run, tmp_path / name, edit)
        proc = _rscript(copy, str(copy))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        fails = {ln.split("  ")[0].strip() for ln in proc.stdout.splitlines() if " FAIL" in ln}
        assert fails == expected, (name, fails)


@needs_r
def test_demo_export_loads_with_haven_and_foreign():
    """The issue's "done when": the demo's XPT files load in R with haven::read_xpt and
    foreign::read.xport, with the same rows, variables and values."""
    run = demo_run()
    code = (
        "f <- commandArgs(TRUE)[1]; h <- as.data.frame(haven::read_xpt(f)); "
        "x <- foreign::read.xport(f); stopifnot(identical(names(h), names(x)), "
        "nrow(h) == nrow(x)); for (v in names(h)) { a <- h[[v]]; b <- x[[v]]; "
        "if (is.numeric(a)) stopifnot(isTRUE(all.equal(as.numeric(a), as.numeric(b)))) "
        "else if (inherits(a, 'Date')) stopifnot(all(a == as.Date(b, origin = '1960-01-01') | "
        "is.na(a))) else stopifnot(all(as.character(a) == as.character(b))) }; "
        "cat(nrow(h), ncol(h), '\\n')")
    for name in (outdir.ADSL_XPT, outdir.ADTTE_XPT):
        if _missing_r_packages():
            pytest.skip("R packages missing")
        proc = subprocess.run([RSCRIPT, "-e", code, str(run / name)], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        import pandas as pd

        frame = pd.read_csv(run / name.replace(".xpt", ".csv"))
        assert proc.stdout.split() == [str(len(frame)), str(frame.shape[1])]
