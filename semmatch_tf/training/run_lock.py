"""One training process per run directory: ``run.lock``, created exclusively, released in a finally.

Two ``train`` processes writing one run directory would interleave their epochs in one backup,
history and model. The lock is a file created with ``O_CREAT | O_EXCL`` (so exactly one process
can create it) holding JSON: hostname, pid, start time and a random token. A second process is
refused with :class:`RunDirectoryLocked` naming the owner. A lock left by a process that died
without its ``finally`` (SIGKILL, power loss) is *stale* when it names this host and a pid that is
no longer alive (or alive but started after the lock was written: a reused pid, as after a
container restart): it is taken over with a warning. A lock held by this very process is live, so
nesting ``run_lock`` on one directory is refused rather than silently shared. A lock of another host cannot be checked, so it
is never taken over; delete it by hand when that process is known to be gone.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Iterator

from semmatch_tf.processes import pid_alive, process_start_time

log = logging.getLogger(__name__)

LOCK_NAME = "run.lock"
#: A lock file that is still not valid JSON after this many seconds was torn by a dying creator.
TORN_AFTER_S = 30.0


class RunDirectoryLocked(ValueError):
    """Another live process trains in this run directory (a ValueError, so the CLI prints one line)."""


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[dict]:
    """Hold ``run_dir/run.lock`` for the body; yields the owner record written into it."""
    path = Path(run_dir) / LOCK_NAME
    owner = acquire(path)
    try:
        yield owner
    finally:
        release(path, owner)


@contextlib.contextmanager
def discard_unstarted_run(run_dir: str | Path, resumable_markers: tuple[str, ...] = ("backup", "warmup/backup")
                          ) -> Iterator[None]:
    """On an error before any epoch finished, remove what the body added to ``run_dir``.

    A run refused after it wrote ``config.yaml`` and ``vocabulary.txt`` (too few positives for one
    batch, a bad monitor, a full disk in the first epoch) would otherwise leave a run directory
    that looks started and blocks the corrected re-run. Entries that existed before are kept, and
    nothing is removed once a backup (a resumable epoch) exists. ``run.lock`` is the lock's own.
    """
    run_dir = Path(run_dir)
    before = {entry.name for entry in run_dir.iterdir()} if run_dir.is_dir() else set()
    try:
        yield
    except Exception:
        if not any((run_dir / marker).exists() for marker in resumable_markers):
            for entry in run_dir.iterdir() if run_dir.is_dir() else ():
                if entry.name not in before and entry.name != LOCK_NAME:
                    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        raise


def acquire(path: Path) -> dict:
    """Create the lock file exclusively, taking over a stale one; raise RunDirectoryLocked if held."""
    now = time.time()
    owner = {"hostname": socket.gethostname(), "pid": os.getpid(),
             "started": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat(timespec="seconds"),
             "started_unix": now, "token": uuid.uuid4().hex}
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # a stale lock is moved away, then creation is tried again
        if _create(path, owner):
            return owner
        holder = read_owner(path)
        if holder is None and not path.exists():
            continue  # released between our attempt and the read
        reason = stale_reason(path, holder)
        if reason is None:
            raise RunDirectoryLocked(f"{path.parent} is in use by {describe(holder)} (lock {path}); wait for it, "
                                     f"or delete the lock if that process is gone")
        if _take_over(path, holder):
            log.warning("took over the stale lock %s: %s", path, reason)
    raise RunDirectoryLocked(f"could not take {path}: other processes keep creating it")


def release(path: Path, owner: dict) -> None:
    """Remove the lock, but only while it is still ours (never a lock another process took over)."""
    holder = read_owner(path)
    if holder is not None and holder.get("token") == owner["token"]:
        path.unlink(missing_ok=True)


def read_owner(path: Path) -> dict | None:
    """The lock's owner record, or None when the file is missing or not (yet) valid JSON."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def describe(holder: dict | None) -> str:
    if holder is None:
        return "a process whose lock is still being written"
    return f"pid {holder.get('pid')} on {holder.get('hostname')} (since {holder.get('started')})"


def stale_reason(path: Path, holder: dict | None) -> str | None:
    """Why the lock is stale (its owner cannot be running), or None when it may be live."""
    if holder is None:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None
        return f"unreadable for {age:.0f} s (its creator died while writing it)" if age > TORN_AFTER_S else None
    if holder.get("hostname") != socket.gethostname():
        return None  # another machine's pid means nothing here
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return f"it names no valid pid ({pid!r})"
    if not pid_alive(pid):
        return f"pid {pid} on this host is not running (lock from {holder.get('started')})"
    started, locked = process_start_time(pid), holder.get("started_unix")
    if started is not None and isinstance(locked, (int, float)) and started > locked + 1.0:
        return f"pid {pid} was reused: that process started after the lock was written"  # e.g. a restarted container
    return None


def _create(path: Path, owner: dict) -> bool:
    """Create the lock with O_CREAT | O_EXCL and write the owner; False when it already exists."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(owner))
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _take_over(path: Path, stale: dict | None) -> bool:
    """Move the stale lock aside (atomic rename) and delete it, if it is still the one judged stale.

    Two processes may find the same stale lock; the rename lets only one of them remove it, and the
    content check puts back a fresh lock that another process created in between.
    """
    aside = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False  # someone else moved it first
    if read_owner(aside) != stale:
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)  # not the stale lock but a new live one: restore it
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True
