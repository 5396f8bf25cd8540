"""Open the store a ``DATABASE_URL`` names."""

from __future__ import annotations

import logging
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.errors import UnsupportedDatabaseError
from storage.models import Store
from storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

SQLITE_SCHEME = "sqlite"


def sqlite_path(database_url: str) -> Path:
    """The file of ``sqlite:///relative/path`` (relative to the cwd) or ``sqlite:////abs/path``."""
    scheme, separator, rest = database_url.partition("://")
    if not separator:
        raise UnsupportedDatabaseError(
            "DATABASE_URL has no scheme; expected sqlite:///relative/path or sqlite:////abs/path"
        )
    # Only the scheme is named: another backend's URL may carry a password.
    if scheme.lower() != SQLITE_SCHEME:
        raise UnsupportedDatabaseError(
            f"DATABASE_URL scheme {scheme!r} is not supported; only sqlite:///path is"
        )
    path = rest.removeprefix("/") if rest.startswith("/") else ""
    if not path or path == ":memory:":
        raise UnsupportedDatabaseError(
            f"DATABASE_URL {database_url!r} names no file; expected sqlite:///relative/path "
            "or sqlite:////abs/path"
        )
    return Path(path)


async def open_store(database_url: str, *, default_limit: int, tz: ZoneInfo) -> Store:
    """Open (creating folder and file if needed) and migrate the database ``database_url``."""
    path = sqlite_path(database_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Expected on the first start; later, a moved volume or a wrong path would reset every
        # quota and lose every job without a word.
        log.warning("database %s does not exist: creating a new, empty one", path.resolve())
    return await SqliteStore.open(path, default_limit=default_limit, tz=tz)
