"""The folder swap under kill -9, and two concurrent runs on one --out (real CLI subprocesses).

`--out` is at every instant the old complete folder or the new one; a later run repairs an
interrupted swap and says so; a second run on a folder being written exits 2 at once, so two
runs with different designs can never both replace an analysed design.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.faults._process import (
    demo_spec,
    hashes,
    run,
    siblings,
    signal_and_wait,
    start,
    wait_reached,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def analysed(tmp_path: Path) -> tuple[Path, dict]:
    """A demo run in tmp_path/out; returns (spec, hashes of everything in tmp_path)."""
    spec = demo_spec(tmp_path)
    (tmp_path / "notes.txt").write_text("the user's own file")
    res = run(["run", str(spec), "--out", "out", "-q"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return spec, hashes(tmp_path)


def test_kill_9_between_the_two_renames_is_repaired(analysed, tmp_path: Path):
    """Where the kernel has no exchange rename: killed after out -> .out.old-*, before
    .out.tmp-* -> out. The next run puts the old complete folder back and says so."""
    spec, before = analysed
    proc, reached = start(["run", str(spec), "--out", "out", "-q"], cwd=tmp_path,
                          pause_at="between-renames")
    wait_reached(proc, reached)
    signal_and_wait(proc, signal.SIGKILL)
    assert not (tmp_path / "out").exists()
    assert any(n.startswith(".out.old-") for n in siblings(tmp_path, "out"))
    res = run(["analyze", str(spec), "--out", "out", "-q"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "restored" in res.stderr and ".out.old-" in res.stderr
    assert ".out.tmp-" in res.stderr and "left by an interrupted run" in res.stderr  # the new
    assert siblings(tmp_path, "out") == []
    after = hashes(tmp_path)
    # the restored folder's analysis is re-run identically (the manifest's times differ)
    for name in ("out/results.json", "out/design.json", "out/cohort.csv", "notes.txt"):
        assert after[name] == before[name], name
    warnings = json.loads((tmp_path / "out" / "manifest.json").read_text())["warnings"]
    assert any(w["kind"] == "recovered" for w in warnings)


def test_kill_9_after_the_exchange_leaves_the_new_folder(analysed, tmp_path: Path):
    """renameat2(RENAME_EXCHANGE): killed right after the swap, the new folder is in place;
    the old one, left in .out.tmp-*, is removed by the next run."""
    spec, before = analysed
    proc, reached = start(["run", str(spec), "--out", "out", "-q"], cwd=tmp_path,
                          pause_at="after-exchange")
    wait_reached(proc, reached)
    signal_and_wait(proc, signal.SIGKILL)
    assert (tmp_path / "out" / "results.json").is_file()
    assert json.loads((tmp_path / "out" / ".synthctl").read_text())["state"] == "complete"
    res = run(["analyze", str(spec), "--out", "out", "-q"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "left by an interrupted run" in res.stderr
    assert siblings(tmp_path, "out") == []
    assert hashes(tmp_path)["notes.txt"] == before["notes.txt"]


def test_two_runs_2s_apart_with_different_designs(tmp_path: Path):
    """The outcome-blind lock cannot be raced: the second run exits 2 while the first holds
    the folder, and once the first analysed it, the other design is refused (exit 2)."""
    spec_a = demo_spec(tmp_path, name="a.yaml")
    spec_b = demo_spec(tmp_path, name="b.yaml", design="weights: entropy")
    started = time.monotonic()
    first, _ = start(["run", str(spec_a), "--out", "out", "-q"], cwd=tmp_path)
    while not (tmp_path / ".out.lock").exists():  # the first run holds the folder (a loaded
        assert first.poll() is None, first.communicate()  # machine may take > 2 s to start)
        time.sleep(0.05)
    time.sleep(max(0.0, 2 - (time.monotonic() - started)))
    second = run(["run", str(spec_b), "--out", "out", "-q"], cwd=tmp_path)
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 2, second.stderr
    assert "another synthctl run is writing" in second.stderr and "pid" in second.stderr
    third = run(["run", str(spec_b), "--out", "out", "-q"], cwd=tmp_path)
    assert third.returncode == 2 and "already analysed with another design" in third.stderr
    design = json.loads((tmp_path / "out" / "design.json").read_text())
    assert design["spec"]["design"]["weights"] == "att_odds"
    assert siblings(tmp_path, "out") == []
