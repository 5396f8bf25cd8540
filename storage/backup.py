"""``python -m bot backup PATH``: an online copy of the SQLite database, taken while the bot runs.

SQLite's backup API copies the database page by page inside one read transaction: the copy is
consistent (one moment of the database, never a torn file as ``cp`` of a busy file can be), and
in WAL mode the bot keeps writing meanwhile. The copy is written next to PATH and renamed onto
it only once complete and checked, so a failed backup never leaves half a file at PATH.

Restore: stop the bot, copy the backup over the DATABASE_URL file (and delete the ``-wal`` and
``-shm`` files beside it), start the bot. PostgreSQL is backed up with its own tools (pg_dump).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.errors import UnsupportedDatabaseError
from storage.factory import sqlite_path

POSTGRES_SCHEMES = ("postgres", "postgresql")


class BackupError(Exception):
    """The backup could not be taken; ``str(self)`` says why in one line."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int  # bytes
    schema_version: int  # PRAGMA user_version of the copy


def backup_database(database_url: str, destination: Path) -> BackupResult:
    """Copy the database ``database_url`` names to ``destination`` (replaced if it exists)."""
    scheme = database_url.partition("://")[0].lower()
    if scheme in POSTGRES_SCHEMES:
        raise UnsupportedDatabaseError(
            "DATABASE_URL is PostgreSQL: back it up with pg_dump, e.g. "
            "pg_dump --format=custom --file=bot.dump \"$DATABASE_URL\" "
            "(restore with pg_restore --clean --dbname=\"$DATABASE_URL\" bot.dump)"
        )
    source = sqlite_path(database_url)
    if not source.is_file():
        raise BackupError(f"no database at {source} (DATABASE_URL={database_url})")
    destination = destination.expanduser()
    if destination.exists() and destination.resolve() == source.resolve():
        raise BackupError(f"{destination} is the database itself; choose another path")
    if destination.is_dir():
        raise BackupError(f"{destination} is a directory; give a file name")
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        # Read-only: a backup never creates, migrates or changes the database.
        with contextlib.closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro",
                                                uri=True)) as src, \
                contextlib.closing(sqlite3.connect(partial)) as dst:
            src.execute("PRAGMA busy_timeout = 10000")
            src.backup(dst)  # all pages in one step: one consistent moment
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            version = int(dst.execute("PRAGMA user_version").fetchone()[0])
        if check != "ok":
            raise BackupError(f"the copy failed its integrity check: {check}")
        partial.replace(destination)
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"backup of {source} to {destination} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(destination, destination.stat().st_size, version)
