"""One worker per SQLite file: an exclusive advisory lock on ``<database>.lock``.

SQLite only: on PostgreSQL several instances may run against one database (bot/startup.py
takes no lock there); the store's transactions keep them from double-spending a quota.

The lock is ``flock(2)`` on a file beside the SQLite database, held on one open descriptor for
the life of the process. The kernel drops it when the process ends however it ends (SIGKILL
included), so a standby never has to guess whether a stale lock file is still in use; the pid
written into the file is only for the log line of the instance that waits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_SUFFIX = ".lock"


def lock_path_for(database: Path) -> Path:
    """``data/bot.sqlite3`` → ``data/bot.sqlite3.lock``."""
    return database.with_name(database.name + LOCK_SUFFIX)


class InstanceLock:
    """An exclusive lock on one file, taken without blocking and held until released."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; True once held.

        Raises OSError when the lock file cannot be created or opened.
        """
        if self._held:
            return True
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Not inherited by child processes (O_CLOEXEC is Python's default).
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._held = True
        with contextlib.suppress(OSError):  # the pid is for a log line; a full disk is no reason
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())
        return True

    def holder(self) -> str:
        """The pid the holder wrote into the file, or "?" (best effort, for the log)."""
        try:
            return self.path.read_text(encoding="ascii").strip() or "?"
        except (OSError, UnicodeDecodeError):
            return "?"

    def release(self) -> None:
        """Drop the lock and close the file (the file stays: deleting it would race a taker)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._held:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._held = False
        os.close(fd)
