"""kill -9, SIGTERM and SIGINT against the real CLI (a subprocess) on the shipped demo study.

Each test asserts the exit code, that no file the user owned was touched (SHA-256 and mode of
every file beside the output folder, before and after), and that no temporary folder or worker
process is left (after kill -9: the next run removes the leftovers and says so).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.faults._process import (
    children,
    demo_spec,
    hashes,
    run,
    siblings,
    signal_and_wait,
    start,
    wait_gone,
    wait_reached,
)

pytestmark = pytest.mark.slow


def _user_files(tmp_path: Path) -> dict:
    """Everything the user owns in the working folder (not synthctl's output folder)."""
    return {k: v for k, v in hashes(tmp_path).items() if not k.startswith("out/")}


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """The demo spec plus a user's own files beside it (a notes file and a data copy)."""
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "extract.csv").write_text("a,b\n1,2\n")
    return demo_spec(tmp_path)


@pytest.mark.parametrize("stage", ["extract", "design", "analyze", "report"])
def test_kill_9_at_each_stage_then_next_run_cleans_up(study: Path, tmp_path: Path, stage: str):
    before = _user_files(tmp_path)
    proc, reached = start(["run", str(study), "--out", "out", "-q"], cwd=tmp_path,
                          pause_at=stage)
    wait_reached(proc, reached)
    signal_and_wait(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "out").exists()  # a fresh --out is not created by a killed run
    left = siblings(tmp_path, "out")
    assert [n for n in left if n.startswith(".out.tmp-")], left  # what kill -9 cannot clean
    assert _user_files(tmp_path) == before
    # the next run on the folder removes it and says so (analyze: stops at once, no design)
    res = run(["analyze", str(study), "--out", "out", "-q"], cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "unfinished output of an interrupted run" in res.stderr
    assert "no locked design" in res.stderr and "Traceback" not in res.stderr
    assert siblings(tmp_path, "out") == []
    assert _user_files(tmp_path) == before


def test_kill_9_during_bootstrap_takes_the_workers_down(tmp_path: Path):
    spec = demo_spec(tmp_path, bootstrap=16)
    before = _user_files(tmp_path)
    proc, reached = start(["run", str(spec), "--out", "out", "-q", "--n-jobs", "2"],
                          cwd=tmp_path, pause_at="bootstrap")
    wait_reached(proc, reached)
    workers = children(proc.pid)
    assert len(workers) >= 2, workers  # loky workers (and its resource tracker)
    signal_and_wait(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert wait_gone(workers, timeout=10) == set()
    assert _user_files(tmp_path) == before


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_clean_up_and_stop_workers(tmp_path: Path, signum: int, code: int):
    spec = demo_spec(tmp_path, bootstrap=16)
    before = _user_files(tmp_path)
    proc, reached = start(["run", str(spec), "--out", "out", "-q", "--n-jobs", "2"],
                          cwd=tmp_path, pause_at="bootstrap")
    wait_reached(proc, reached)
    workers = children(proc.pid)
    assert workers
    _out, err = signal_and_wait(proc, signum)
    assert proc.returncode == code, err
    assert "stopped; no partial output was written" in err
    assert "Traceback" not in err and "Warning" not in err
    assert siblings(tmp_path, "out") == [] and not (tmp_path / "out").exists()
    assert wait_gone(workers, timeout=10) == set()
    assert _user_files(tmp_path) == before


def test_sigterm_keeps_the_previous_folder(tmp_path: Path):
    """SIGTERM during a re-run: the earlier complete folder stays, byte for byte."""
    spec = demo_spec(tmp_path)
    first = run(["run", str(spec), "--out", "out", "-q"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = hashes(tmp_path)
    proc, reached = start(["run", str(spec), "--out", "out", "-q"], cwd=tmp_path,
                          pause_at="analyze")
    wait_reached(proc, reached)
    signal_and_wait(proc, signal.SIGTERM)
    assert proc.returncode == 143
    assert hashes(tmp_path) == before and siblings(tmp_path, "out") == []
