"""Process-level reliability of the CLI: termination signals and parallel workers.

- SIGTERM (and SIGHUP) raise `Terminated` in the main thread, as SIGINT raises
  ``KeyboardInterrupt``: the output folder's temporary folder is removed on the way out
  (`synthctl.atomic`), joblib aborts its tasks and the command exits 143 (SIGINT: 130).
  A second signal during that clean-up is not caught: it ends the process at once, and the
  next run on the folder removes what was left (and says so).
- Parallel workers (joblib's loky processes, used by the bootstrap and the simulation study)
  watch their parent and exit within about a second when it is gone, even after ``kill -9``
  (`worker_guard`); the CLI shuts the worker pool down when a command ends, instead of
  leaving idle workers for loky's 300 s timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import warnings
from collections.abc import Iterator

EXIT_SIGINT, EXIT_SIGTERM = 130, 143
_POLL_SECONDS = 0.5


class Terminated(BaseException):
    """The process received SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def termination_raises() -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise `Terminated` (main thread only; else no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]

    def handler(signum, frame):
        for s in signums:  # a second signal during the clean-up ends the process
            signal.signal(s, signal.SIG_DFL)
        raise Terminated(signum)

    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _watch_parent(parent_pid: int) -> None:
    """loky worker initializer: exit when the process that started the pool is gone."""

    def watch() -> None:
        import time

        while True:
            time.sleep(_POLL_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="synthctl-parent-watch", daemon=True).start()


@contextlib.contextmanager
def worker_guard() -> Iterator[None]:
    """Parallel work in the block uses loky workers that die with this process; the pool is
    shut down (workers killed) when the block ends, whatever the way out."""
    import joblib

    with joblib.parallel_config(backend="loky", initializer=_watch_parent,
                                initargs=(os.getpid(),)), warnings.catch_warnings():
        # stopped by a signal, joblib warns that it cancelled the running tasks: we said so
        warnings.filterwarnings("ignore", message=r".*tasks which were still being processed",
                                category=UserWarning)
        try:
            yield
        finally:
            stop_workers()


def stop_workers() -> None:
    """Shut down loky's reusable worker pool, if one was started."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        with contextlib.suppress(Exception):
            executor.shutdown(wait=True, kill_workers=True)
