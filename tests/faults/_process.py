"""Shared helpers of the fault-injection tests: run the real CLI as a subprocess, stop it at a
chosen point, and check what it left behind.

A run is paused by a small driver (`DRIVER`) that patches one function of synthctl before
calling the CLI's entry point: when the run reaches that point the driver writes the file
named by ``SYNTHCTL_FAULT_REACHED`` and sleeps, so the test can signal it at a known place.
Nothing in synthctl itself knows about this.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Pause points: a stage's entry, the bootstrap's first progress tick (workers are alive), and
# the two moments of the folder swap (between the fallback's two renames, after the exchange).
DRIVER = r'''
import os, sys, time
from pathlib import Path

point, argv = sys.argv[1], sys.argv[2:]
reached = Path(os.environ["SYNTHCTL_FAULT_REACHED"])

def pause():
    reached.write_text(str(os.getpid()))
    while True:
        time.sleep(0.1)

if point in ("extract", "design", "analyze", "report"):
    import importlib
    mod = importlib.import_module(f"synthctl.stages.{point}")
    original = getattr(mod, f"run_{point}")
    def paused(ctx, _original=original):
        pause()
    setattr(mod, f"run_{point}", paused)
elif point == "bootstrap":
    import contextlib
    from synthctl.stages import _context
    @contextlib.contextmanager
    def bar(self, description, total):
        yield lambda n=1: pause()
    _context.NullProgress.bar = bar
elif point in ("between-renames", "after-exchange"):
    import synthctl.atomic as atomic
    real_rename = os.rename
    if point == "between-renames":
        atomic._exchange = lambda a, b: False
        def rename(src, dst):
            real_rename(src, dst)
            if ".old-" in str(dst):
                pause()
        atomic.os.rename = rename
    else:
        real_exchange = atomic._exchange
        def exchange(a, b):
            assert real_exchange(a, b)
            pause()
        atomic._exchange = exchange
elif point != "none":
    raise SystemExit(f"unknown pause point {point}")

sys.argv = ["synthctl", *argv]
from synthctl.cli import main
main()
'''


def env() -> dict[str, str]:
    """The environment of a CLI subprocess: this repository first on the path."""
    out = dict(os.environ)
    out["PYTHONPATH"] = str(REPO) + os.pathsep + out.get("PYTHONPATH", "")
    out.pop("COLUMNS", None)
    return out


def demo_spec(folder: Path, *, bootstrap: int = 0, name: str = "demo.yaml",
              design: str | None = None) -> Path:
    """The shipped demo study, paths made absolute, with ``bootstrap`` replicates.

    ``design`` replaces the demo's ``weights: att_odds`` line (another design).
    """
    import sample_data.paths as paths

    text = paths.DEMO_SPEC.read_text()
    assert "bootstrap: 200" in text and "weights: att_odds" in text
    text = text.replace("bootstrap: 200", f"bootstrap: {bootstrap}")
    if design is not None:
        text = text.replace("weights: att_odds", design)
    for file in ("trial_adsl.csv", "trial_adtte.csv"):
        text = text.replace(f": {file}", f": {paths.SAMPLE_DIR / file}")
    text = text.replace("sqlite:///renape_sample.sqlite", f"sqlite:///{paths.SAMPLE_REGISTRY}")
    path = folder / name
    path.write_text(text)
    return path


def start(args: list[str], *, cwd: Path, pause_at: str = "none") -> tuple[subprocess.Popen, Path]:
    """Start ``synthctl ARGS`` in ``cwd``, to pause at ``pause_at``; returns (process, flag)."""
    reached = cwd / f".reached-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, pause_at, *args], cwd=cwd,
        env={**env(), "SYNTHCTL_FAULT_REACHED": str(reached)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return proc, reached


def wait_reached(proc: subprocess.Popen, reached: Path, timeout: float = 60) -> None:
    """Wait until the paused run reached its point (fail if it ended or timed out)."""
    deadline = time.monotonic() + timeout
    while not reached.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended (exit {proc.returncode}) before the pause point:"
                                 f"\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("pause point not reached in time")
        time.sleep(0.05)
    reached.unlink()


def run(args: list[str], *, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``synthctl ARGS`` to completion in a subprocess."""
    return subprocess.run([sys.executable, "-m", "synthctl", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def signal_and_wait(proc: subprocess.Popen, signum: int, timeout: float = 30) -> tuple[str, str]:
    """Send ``signum`` and wait for the process; returns (stdout, stderr)."""
    proc.send_signal(signum)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"still running {timeout} s after {signal.Signals(signum).name}"
                             ) from None


def children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - out
        out |= frontier
    return out


def alive(pids: set[int]) -> set[int]:
    """The pids of ``pids`` that are still running (not zombies)."""
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def wait_gone(pids: set[int], timeout: float = 10) -> set[int]:
    """Wait until none of ``pids`` runs; returns those still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


def hashes(folder: Path, *, skip_prefix: str = ".") -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative paths), with mode bits, skipping
    names that start with ``skip_prefix`` at the top level (synthctl's temp/lock siblings)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0].startswith(skip_prefix) or not path.is_file():
            continue
        out[rel.as_posix()] = (hashlib.sha256(path.read_bytes()).hexdigest(),
                               oct(path.stat().st_mode))
    return out


def siblings(folder: Path, name: str) -> list[str]:
    """synthctl's temp, old and lock entries left beside the output folder ``name``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))
