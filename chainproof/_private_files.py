"""Files and folders Chainproof creates for itself, readable by their owner only.

The audit store and the checkpointer (SQLite files), the run locks, reports, keys and credentials
hold recorded prompts, outputs, decisions and account data, so Chainproof creates them with mode
0600 (files) and 0700 (folders), whatever the umask would give (commonly 0644 / 0755). SQLite
creates a database's ``-wal`` and ``-shm`` files with the database file's own mode. A file or
folder that already exists keeps its mode: Chainproof never changes what a person made.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | Path) -> Path:
    """``path`` (``~`` expanded) after creating it and each missing parent with mode 0700."""
    path = Path(path).expanduser()
    missing = []
    cursor = path
    while not cursor.exists() and cursor != cursor.parent:
        missing.append(cursor)
        cursor = cursor.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
            os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask; this one is exact
        except FileExistsError:  # made by another process meanwhile
            pass
    return path


def private_file(path: str | Path) -> Path:
    """``path`` (``~`` expanded), created empty with mode 0600 (its folder as :func:`private_dir`)
    unless it exists. An empty file is a valid new SQLite database."""
    path = Path(path).expanduser()
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    return path


__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file"]
