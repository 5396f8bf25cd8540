"""The SQLite face of the one store: ``SqliteStore.open(path)`` opens a file (storage/sql.py)."""

from storage.sql import SqliteStore, SqlStore, sqlite_url

__all__ = ["SqlStore", "SqliteStore", "sqlite_url"]
