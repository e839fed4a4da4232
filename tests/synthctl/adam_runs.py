"""Analysed run folders shared by the export-adam and reanalysis tests (built once per session).

* `demo_run`: the shipped demo study (registry + ADaM trial files, ATT-odds weighting) with 10
  bootstrap replicates instead of 200 (test time): results.json then keeps the analytic SEs
  under ``analytic``, the case the R program must handle.
* `matched_run`: the flat pm_external_control_a study, nearest 1:1 matching with a 0.2 SD logit
  caliper (a design that yields matched sets), bootstrap 0.

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


def copy_run(run: Path, dest: Path) -> Path:
    """A plain copy of a run folder (its manifest still names the original spec)."""
    shutil.copytree(run, dest)
    return dest
