"""One process at a time advances a run: a file lock per run under ``$CHAINPROOF_HOME/locks``.
Light on purpose (no engine imports), so read-only commands can ask whether a run's process is
still alive."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chainproof.errors import RunBusy


@contextmanager
def run_lock(home: Path, run_id: str) -> Iterator[None]:
    """An exclusive, non-blocking lock on ``run_id`` for this machine (``fcntl.flock`` on
    ``$CHAINPROOF_HOME/locks/RUN_ID.lock``), held while a process advances the run, so a second
    ``resume`` or a late approver cannot run the same steps twice. The operating system releases it
    when the process dies. Processes on other hosts sharing a PostgreSQL store are not covered.
    Raises ``RunBusy``."""
    folder = Path(home) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{run_id}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"run {run_id} is being advanced by another process right now; wait until it pauses or "
                          f"ends (chainproof runs), then `chainproof resume {run_id}` if anything is left to apply") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_is_free(home: Path, run_id: str) -> bool:
    """Whether no process on this machine holds ``run_id``'s lock right now (see :func:`run_lock`):
    a run recorded as ``started``/``resumed`` whose lock is free had its process end without
    recording how (killed, crashed); ``chainproof resume`` continues it from its last checkpoint."""
    path = Path(home) / "locks" / f"{run_id}.lock"
    if not path.exists():
        return True
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True
