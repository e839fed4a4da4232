"""Analysed run folders shared by the export-adam and reanalysis tests (built once per session).

* `demo_run`: the shipped demo study (registry + ADaM trial files, ATT-odds weighting) with 10
  bootstrap replicates instead of 200 (test time): results.json then keeps the analytic SEs
  under ``analytic``, the case the R program must handle.
* `matched_run`: the flat pm_external_control_a study, nearest 1:1 matching with a 0.2 SD logit
  caliper (a design that yields matched sets), bootstrap 0.
* `response_run`: sample_data/demo_study_response.yaml (ORR from the trial's ADRS and the
  registry's tumour assessments) with a null rate for the trial-vs-null test; ``matched``:
  nearest 1:1 instead of weighting (ORR variance clustered on the matched set).
* `alignment_run`: the demo cohort with the endpoint alignment (protocol schedule every 6
  weeks): ADTTE carries AVALLB, the R program re-derives the Turnbull landmarks.
* `imputed_run`: a flat study with ``design.missing: impute`` (3 imputations): ADSL keyed by
  USUBJID + IMPNUM, the R program pools by Rubin's rules.
* `multi_line_run`: the demo cohort with ``registry.index.selection: all`` (several index
  lines per registry patient: rows keyed by USUBJID + LINESEQ, variances clustered on the
  patient).

Each is exported once (`synthctl.adam_export.export_adam`); tests that change a folder work on
a copy (`copy_run`).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from synthctl.adam_export import export_adam
from synthctl.runner import run_study
from tests.synthctl.conftest import CSV, write_spec

_ROOTS: list[Path] = []


def _root(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    _ROOTS.append(root)
    return root


@atexit.register
def _cleanup() -> None:
    for root in _ROOTS:
        shutil.rmtree(root, ignore_errors=True)


def demo_spec(folder: Path, bootstrap: int = 10) -> Path:
    """The demo spec with absolute sample paths and ``bootstrap`` replicates."""
    import sample_data.paths as paths

    text = paths.DEMO_SPEC.read_text()
    assert "bootstrap: 200\n" in text
    text = text.replace("bootstrap: 200", f"bootstrap: {bootstrap}")
    for name in ("trial_adsl.csv", "trial_adtte.csv"):
        text = text.replace(f": {name}", f": {paths.SAMPLE_DIR / name}")
    text = text.replace("sqlite:///renape_sample.sqlite", f"sqlite:///{paths.SAMPLE_REGISTRY}")
    spec = folder / "demo_study.yaml"
    spec.write_text(text)
    return spec


def matched_spec(folder: Path) -> Path:
    """The flat study of tests/synthctl/conftest.py (nearest 1:1, caliper 0.2 logit)."""
    shutil.copy(CSV, folder / "data.csv")
    return write_spec(folder)


@functools.cache
def demo_run() -> Path:
    root = _root("synthctl-adam-demo-")
    out = root / "out"
    run_study(demo_spec(root), out)
    export_adam(out)
    return out


@functools.cache
def matched_run() -> Path:
    root = _root("synthctl-adam-matched-")
    out = root / "out"
    run_study(matched_spec(root), out)
    export_adam(out)
    return out


def _absolute(text: str) -> str:
    import sample_data.paths as paths

    for name in ("trial_adsl.csv", "trial_adtte.csv", "trial_adrs.csv"):
        text = text.replace(f": {name}", f": {paths.SAMPLE_DIR / name}")
    return text.replace("sqlite:///renape_sample.sqlite", f"sqlite:///{paths.SAMPLE_REGISTRY}")


NEAREST = ("method: nearest\n  ratio: 1\n  caliper: 0.2\n  caliper_scale: logit\n  "
           "estimand: ATT\n")


def response_spec(folder: Path, *, matched: bool = False, all_lines: bool = False) -> Path:
    """demo_study_response.yaml (absolute paths) with ``response.null_rate: 0.2``; nearest
    1:1 with ``matched``; every index line with ``all_lines``."""
    import sample_data.paths as paths

    text = (paths.SAMPLE_DIR / "demo_study_response.yaml").read_text()
    assert "response: {confirmed: true}" in text
    text = _absolute(text.replace("response: {confirmed: true}",
                                  "response: {confirmed: true, null_rate: 0.2}"))
    if matched:
        old = "method: weighting\n  weights: att_odds\n  estimand: ATT\n"
        assert old in text
        text = text.replace(old, NEAREST)
    if all_lines:
        assert "selection: first" in text
        text = text.replace("selection: first", "selection: all")
    spec = folder / "demo_study_response.yaml"
    spec.write_text(text)
    return spec


def demo_variant(folder: Path, *, alignment: bool = False, all_lines: bool = False) -> Path:
    """The demo study (bootstrap 0) with the endpoint alignment or every index line."""
    spec = demo_spec(folder, bootstrap=0)
    text = spec.read_text()
    if alignment:
        assert "rmst_tau: 52\n" in text
        text = text.replace("rmst_tau: 52\n", "rmst_tau: 52\n  endpoint_alignment: {grid_every: "
                            "6, grid_unit: weeks, imputations: 5, trial_schedule_every: 6}\n")
    if all_lines:
        assert "selection: first" in text
        text = text.replace("selection: first", "selection: all")
    spec.write_text(text)
    return spec


@functools.cache
def response_run(matched: bool = False) -> Path:
    root = _root("synthctl-adam-response-")
    out = root / "out"
    run_study(response_spec(root, matched=matched), out)
    export_adam(out)
    return out


@functools.cache
def alignment_run() -> Path:
    root = _root("synthctl-adam-alignment-")
    out = root / "out"
    run_study(demo_variant(root, alignment=True), out)
    export_adam(out)
    return out


@functools.cache
def multi_line_run() -> Path:
    """Every index line of the response study: the time-to-event and the ORR variances
    cluster on the patient."""
    root = _root("synthctl-adam-lines-")
    out = root / "out"
    run_study(response_spec(root, all_lines=True), out)
    export_adam(out)
    return out


@functools.cache
def flat_response_run() -> Path:
    """The matched flat study with a 0/1 response column (``data.response``): ADRS then has
    the responder records only (a flat file has no best overall response)."""
    import numpy as np
    import pandas as pd

    root = _root("synthctl-adam-flat-response-")
    d = pd.read_csv(CSV)
    rng = np.random.default_rng(3)
    d["resp"] = (rng.random(len(d)) < np.where(d["treated"] == 1, 0.4, 0.2)).astype(int)
    d.to_csv(root / "data.csv", index=False)
    spec = write_spec(root)
    text = spec.read_text()
    assert "time_unit: weeks}" in text
    spec.write_text(text.replace("time_unit: weeks}", "time_unit: weeks, response: resp}"))
    out = root / "out"
    run_study(spec, out)
    export_adam(out)
    return out


@functools.cache
def imputed_run() -> Path:
    """tests/synthctl/test_imputed_study.py's flat study with ``design.missing: impute``
    (m = 3, ATT-odds weighting)."""
    from tests.synthctl.test_imputed_study import _spec

    root = _root("synthctl-adam-mi-")
    out = root / "out"
    run_study(_spec(root), out)
    export_adam(out)
    return out


def copy_run(run: Path, dest: Path) -> Path:
    """A plain copy of a run folder (its manifest still names the original spec)."""
    shutil.copytree(run, dest)
    return dest
