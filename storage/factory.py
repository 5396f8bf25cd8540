"""Open the store a ``DATABASE_URL`` names: ``sqlite:///path`` or ``postgresql://…``."""

from __future__ import annotations

import logging
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bot.errors import UnsupportedDatabaseError
from storage.models import Store
from storage.sql import SqlStore

log = logging.getLogger(__name__)

SQLITE_SCHEME = "sqlite"
# Procfile platforms (Heroku, Dokku, Render) hand out postgres://; SQLAlchemy wants the driver.
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
EXPECTED = "expected sqlite:///relative/path, sqlite:////abs/path or postgresql://user@host/db"


def masked_url(database_url: str) -> str:
    """``database_url`` with any password replaced by ``***``, for messages and logs."""
    scheme, separator, rest = database_url.partition("://")
    if not separator:
        return database_url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return database_url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def _scheme(database_url: str) -> str:
    scheme, separator, _ = database_url.partition("://")
    if not separator:
        raise UnsupportedDatabaseError(f"DATABASE_URL has no scheme; {EXPECTED}")
    return scheme.lower()


def sqlite_path(database_url: str) -> Path:
    """The file of ``sqlite:///relative/path`` (relative to the cwd) or ``sqlite:////abs/path``."""
    scheme = _scheme(database_url)
    if scheme != SQLITE_SCHEME:
        raise UnsupportedDatabaseError(
            f"DATABASE_URL {masked_url(database_url)!r} is not an SQLite file URL "
            f"(scheme {scheme!r})"
        )
    rest = database_url.partition("://")[2]
    path = rest.removeprefix("/") if rest.startswith("/") else ""
    if not path or path == ":memory:":
        raise UnsupportedDatabaseError(
            f"DATABASE_URL {database_url!r} names no file; expected sqlite:///relative/path "
            "or sqlite:////abs/path"
        )
    return Path(path)


def is_sqlite(database_url: str) -> bool:
    """Whether ``database_url`` names an SQLite file (the backend with one process per file)."""
    return database_url.partition("://")[0].lower() == SQLITE_SCHEME


def engine_url(database_url: str) -> URL:
    """The SQLAlchemy URL, with its async driver, for a ``DATABASE_URL``."""
    scheme = _scheme(database_url)
    if scheme == SQLITE_SCHEME:
        return URL.create("sqlite+aiosqlite", database=str(sqlite_path(database_url)))
    if scheme not in POSTGRES_SCHEMES:
        # Only the scheme and the masked URL are named: the URL may carry a password.
        raise UnsupportedDatabaseError(
            f"DATABASE_URL scheme {scheme!r} is not supported ({masked_url(database_url)}); "
            f"{EXPECTED}"
        )
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError) as exc:
        raise UnsupportedDatabaseError(
            f"DATABASE_URL {masked_url(database_url)!r} is not a valid URL; {EXPECTED}"
        ) from exc
    if not url.database:
        raise UnsupportedDatabaseError(
            f"DATABASE_URL {masked_url(database_url)!r} names no database; {EXPECTED}"
        )
    return url.set(drivername="postgresql+asyncpg")


async def open_store(database_url: str, *, default_limit: int, tz: ZoneInfo) -> Store:
    """Open and migrate the database ``database_url`` (an SQLite file and its folder are
    created if needed; a PostgreSQL database must exist)."""
    url = engine_url(database_url)
    if url.get_backend_name() == SQLITE_SCHEME:
        path = sqlite_path(database_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Expected on the first start; later, a moved volume or a wrong path would reset
            # every quota and lose every job without a word.
            log.warning("database %s does not exist: creating a new, empty one", path.resolve())
        return await SqlStore.open(path, default_limit=default_limit, tz=tz)
    return await SqlStore.connect(url, default_limit=default_limit, tz=tz)
