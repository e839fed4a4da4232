"""Writing an output folder safely: ownership marker, per-folder lock, atomic swap, recovery.

Every command writes ``--out`` the same way (`atomic_output`):

1. **Lock.** An exclusive advisory lock (``flock``) on ``.<name>.lock`` beside the folder is held
   for the whole run; a second run on the same folder exits 2 at once, naming the holder.
   Everything below happens under the lock, so the outcome-blind design check cannot be raced.
2. **Recover.** An interrupted earlier run is repaired first, and said: a folder moved aside
   (``.<name>.old-*``) while the target is missing is put back; stale ``.<name>.tmp-*`` folders
   carrying synthctl's marker are removed.
3. **Own.** synthctl owns a folder only through the marker file ``.synthctl`` it wrote, listing
   every file it wrote (an older synthctl folder without a marker: the artifacts its
   ``manifest.json`` lists). A folder holding any other file is refused (exit 2, listing a
   few); an empty folder may be used. Nothing synthctl did not write is ever deleted or
   replaced.
4. **Write and swap.** The command writes into a fresh ``.<name>.tmp-*`` folder beside the
   target (same filesystem), created with the target's permissions and group (or the umask's
   for a new folder). On success the marker is completed and the two folders are exchanged in
   one ``renameat2(RENAME_EXCHANGE)`` call, so ``--out`` is at every instant either the old
   complete folder or the new one; where the kernel lacks it, two renames are used and step 2
   repairs an interruption between them. The old folder's files (those the marker lists) are
   then deleted; a file that appeared there meanwhile is left in ``.<name>.old-*`` and named.

Any exception, ``KeyboardInterrupt`` or ``SystemExit`` (SIGTERM, see `synthctl.signals`) inside
the block removes the temporary folder and leaves ``--out`` as it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from synthctl.errors import OutputFolderError
from synthctl.outdir import MANIFEST, MARKER

MARKER_VERSION = 1
_SHOW = 5  # foreign files named in a refusal
_RENAME_EXCHANGE = 2  # linux/fs.h


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def resolve_out(out: str | Path, option: str = "--out") -> Path:
    """The absolute output folder, checked: no regular file on its path, parent creatable.

    Raises
    ------
    OutputFolderError
        If ``out`` or one of its parents is a file, or the parent cannot be created.
    """
    target = Path(out).expanduser().absolute()
    for p in (target, *target.parents):
        if p.exists() or p.is_symlink():
            if p.is_dir():
                break
            what = "is" if p == target else f"lies under {p}, which is"
            raise OutputFolderError(f"{option} {out}: {what} a file, not a folder; choose "
                                    "a folder path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"{option} {out}: cannot create {target.parent}: "
                                f"{exc.strerror or exc}") from None
    return target.resolve()  # a symlinked --out: the folder it points to


def _sibling(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}"


# --- the marker -------------------------------------------------------------------------------
def read_marker(folder: Path) -> dict | None:
    """The marker's content, or None if the folder holds no valid synthctl marker."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("synthctl_output") else None


def _write_marker(folder: Path, data: dict) -> None:
    (folder / MARKER).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n",
                                 encoding="utf-8")


def _entries(folder: Path) -> list[str]:
    """Every file, symlink and folder under ``folder`` (relative, POSIX), not following links."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        out += [(rel / d).as_posix() for d in dirs]
        out += [(rel / f).as_posix() for f in files]
    return sorted(out)


def _files(folder: Path) -> list[str]:
    return [e for e in _entries(folder) if not (folder / e).is_dir() or (folder / e).is_symlink()]


def owned_files(folder: Path) -> set[str] | None:
    """The files synthctl wrote into ``folder`` (from its marker, or, for a folder written
    before markers existed, from its manifest); None if synthctl did not write it."""
    marker = read_marker(folder)
    if marker is not None:
        return {*marker.get("files", []), MARKER}
    manifest = folder / MANIFEST
    if manifest.is_file() and not (folder / MARKER).exists():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            listed = {name for st in data.get("stages", {}).values()
                      for name in st.get("artifacts", {})}
        except (OSError, ValueError, AttributeError):
            return None
        return {*listed, MANIFEST}
    return None


def foreign_files(folder: Path) -> list[str]:
    """Entries of an existing folder that synthctl did not write (empty: safe to replace)."""
    if not folder.is_dir():
        return []
    owned = owned_files(folder)
    if owned is None:
        return _files(folder)
    dirs = {p.as_posix() for f in owned for p in Path(f).parents if p != Path(".")}
    entries = [e for e in _entries(folder) if e not in owned and e not in dirs]
    # a foreign folder is named by its files, or by itself when empty
    return [e for e in entries if not (folder / e).is_dir() or (folder / e).is_symlink()
            or not any((folder / e).iterdir())]


def check_owned(target: Path) -> None:
    """Refuse (exit 2) a target that is not a folder or holds files synthctl did not write."""
    if (target.exists() or target.is_symlink()) and not target.is_dir():
        raise OutputFolderError(f"output folder {target} exists and is not a folder")
    foreign = foreign_files(target)
    if foreign:
        shown = ", ".join(foreign[:_SHOW]) + (f" and {len(foreign) - _SHOW} more"
                                              if len(foreign) > _SHOW else "")
        raise OutputFolderError(
            f"output folder {target} holds {len(foreign)} file(s) synthctl did not write "
            f"({shown}); synthctl never deletes or replaces them: choose another --out or an "
            "empty folder"
        )


def preflight(out: str | Path) -> Path:
    """`resolve_out` and `check_owned` early, before long work (repeated under the lock)."""
    target = resolve_out(out)
    check_owned(target)
    return target


# --- the lock ---------------------------------------------------------------------------------
@contextlib.contextmanager
def folder_lock(target: Path, command: str) -> Iterator[None]:
    """Hold the exclusive advisory lock of ``target`` (exit 2 at once if another run holds it).

    The lock file ``.<name>.lock`` beside the folder is removed on release; a process that
    opened it meanwhile sees that its inode is gone and retries on a fresh file.
    """
    import fcntl

    path = target.parent / _sibling(target, "lock")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputFolderError(f"cannot create the lock file {path}: "
                                    f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputFolderError(
                f"another synthctl run is writing {target} ({holder}); wait for it to finish "
                "or choose another --out"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # released and removed by its previous holder: lock the new file
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, synthctl {command}, since {_now()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


# --- recovery ---------------------------------------------------------------------------------
def recover(target: Path) -> list[str]:
    """Repair what an interrupted run left beside ``target`` (call with the lock held).

    Returns one message per repair, for the user.
    """
    parent, messages = target.parent, []
    tmps = sorted(parent.glob(_sibling(target, "tmp-*")))
    olds = sorted(parent.glob(_sibling(target, "old-*")), key=lambda p: p.stat().st_mtime)
    olds = [p for p in olds if p.is_dir() and not p.is_symlink() and owned_files(p) is not None]
    if not target.exists() and olds:
        restored = olds.pop()  # the last complete folder, moved aside by an interrupted swap
        os.rename(restored, target)
        messages.append(f"recovered an interrupted run: restored {target} from {restored.name}")
    for old in olds:
        messages.append(_discard(old, f"removed {old.name}, left by an interrupted run"))
    for tmp in tmps:
        if not tmp.is_dir() or tmp.is_symlink():
            continue
        marker = read_marker(tmp)
        if marker is not None and marker.get("state") == "writing":
            shutil.rmtree(tmp, ignore_errors=True)
            messages.append(f"removed {tmp.name}, the unfinished output of an interrupted run")
        elif marker is not None or owned_files(tmp) is not None:  # an old folder swapped out
            messages.append(_discard(tmp, f"removed {tmp.name}, left by an interrupted run"))
        elif not any(tmp.iterdir()):
            tmp.rmdir()
    return messages


def _discard(folder: Path, message: str) -> str:
    """Delete the files synthctl wrote in ``folder``; keep (and name) anything else."""
    owned = owned_files(folder) or set()
    for name in sorted(owned, key=lambda n: (n == MARKER, n)):  # the marker last
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            (folder / name).unlink()
    for root, _dirs, _names in os.walk(folder, topdown=False):  # children first
        with contextlib.suppress(OSError):
            os.rmdir(root)
    if folder.exists():
        left = _files(folder)
        return (f"kept {folder}: it holds file(s) synthctl did not write "
                f"({', '.join(left[:_SHOW])})")
    return message


# --- the swap ---------------------------------------------------------------------------------
def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP wait until the renames are done (delivered right after)."""
    held = {signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP")
                                             else [])}
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _put_in_place(tmp: Path, target: Path, run_id: str) -> Path | None:
    """Put ``tmp`` in place of ``target``; return where the previous folder now is (if any)."""
    if not target.exists():
        os.rename(tmp, target)
        return None
    if _exchange(tmp, target):
        return tmp  # now holds the previous folder
    old = target.parent / _sibling(target, f"old-{run_id}")  # a kill -9 between the two
    os.rename(target, old)  # renames is repaired by `recover`
    os.rename(tmp, target)
    return old


def _new_tmp(target: Path, run_id: str, command: str) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=_sibling(target, "tmp-"), dir=target.parent))
    _write_marker(tmp, {"synthctl_output": MARKER_VERSION, "state": "writing", "run_id": run_id,
                        "command": command, "pid": os.getpid(), "started": _now()})
    if target.is_dir():  # keep the folder's permissions and group
        st = target.stat()
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        with contextlib.suppress(PermissionError):
            os.chown(tmp, -1, st.st_gid)
    else:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
    return tmp


def _copy_owned(src: Path, dst: Path) -> None:
    for name in sorted((owned_files(src) or set()) - {MARKER}):
        path = src / name
        if path.is_file() and not path.is_symlink():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dst / name)


@contextlib.contextmanager
def atomic_output(
    out: str | Path,
    *,
    command: str,
    start_from_existing: bool = False,
    notify: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``out`` when the block succeeds.

    Parameters
    ----------
    out : str or Path
        The output folder: absent, empty, or written by synthctl (see the module docstring).
    command : str
        The command writing it (recorded in the marker and the lock file).
    start_from_existing : bool, default=False
        Start from a copy of the existing folder's files (single-stage commands add to it).
    notify : callable, optional
        Receives one message per recovery of an interrupted earlier run.

    Raises
    ------
    OutputFolderError
        Foreign files in ``out``, another run holding it, a file on its path, or a filesystem
        error while creating or swapping the folder.
    """
    target = resolve_out(out)
    run_id = uuid.uuid4().hex
    with folder_lock(target, command):
        try:
            for message in recover(target):
                (notify or (lambda m: None))(message)
            check_owned(target)
            tmp = _new_tmp(target, run_id, command)
        except OSError as exc:
            raise OutputFolderError(f"cannot prepare {target}: {exc.strerror or exc}") from None
        try:
            if start_from_existing and target.is_dir():
                _copy_owned(target, tmp)
            yield tmp
            files = sorted(set(_files(tmp)) - {MARKER})
            _write_marker(tmp, {"synthctl_output": MARKER_VERSION, "state": "complete",
                                "run_id": run_id, "command": command, "written": _now(),
                                "files": files})
            check_owned(target)  # a file added to the old folder during the run is not lost
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with _signals_held():  # a signal now is acted on once the new folder is in place
            try:
                old = _put_in_place(tmp, target, run_id)
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise OutputFolderError(f"cannot replace {target}: {exc.strerror or exc}; "
                                        "it was left as it was") from None
            leftovers = [m for m in [_discard(old, "")] if m] if old is not None else []
        for message in leftovers:
            (notify or (lambda m: None))(message)
