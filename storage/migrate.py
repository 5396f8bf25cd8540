"""Bring a database to the schema this code expects, when the store opens it.

- A new database, SQLite or PostgreSQL: Alembic creates it (storage/alembic, revision
  0001_baseline onwards). A new SQLite file also gets ``PRAGMA user_version = 8``, so a release
  from before Alembic sees the v8 schema it knows instead of creating tables over it.
- An SQLite file of an earlier release (``user_version`` 1..8, no ``alembic_version`` table):
  storage/migrations.py brings it to v8 step by step, as before, and it is then stamped with
  the baseline revision, whose schema is v8.
- A database newer than the code (``user_version`` above 8, or an Alembic revision this code
  does not know) is refused with UnsupportedDatabaseError and left untouched.

All Alembic work runs in one transaction whose first act takes the migration lock (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: ``pg_advisory_xact_lock``; both backends have transactional
DDL), so two processes opening one database at once cannot both apply a revision: the second
finds the first's ``alembic_version`` when it gets the lock.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import aiosqlite
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.errors import UnsupportedDatabaseError
from storage.migrations import LATEST_VERSION, migrate
from storage.schema import metadata

log = logging.getLogger(__name__)

ALEMBIC_DIR = Path(__file__).with_name("alembic")
BASELINE = "0001_baseline"
# The advisory lock PostgreSQL migrations run under ("bot-mg").
MIGRATION_LOCK = 0x626F742D6D67


@functools.cache
def _script() -> ScriptDirectory:
    """The revisions, read once per process (loading them costs more than the rest of an open)."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows: every database it opens is brought to it."""
    head = _script().get_current_head()
    assert head is not None
    return head


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, where: str) -> None:
    """Migrate the database of ``engine`` to Alembic's head (see the module docstring)."""
    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as plain:
        if sqlite:
            # The legacy steps speak to aiosqlite directly, each in its own BEGIN IMMEDIATE
            # (the connection is in autocommit mode, see storage/sql.py).
            raw = await plain.get_raw_connection()
            legacy = raw.driver_connection
            assert isinstance(legacy, aiosqlite.Connection)
            async with legacy.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            if row is not None and int(row[0]) > 0:
                await migrate(legacy, where)  # refuses a newer version; no-op at v8
        conn = await plain.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            if not sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"),
                                   {"lock": MIGRATION_LOCK})
            await conn.run_sync(_upgrade_locked, where)


def _sqlite_user_version(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())


def _upgrade_locked(conn: Connection, where: str) -> None:
    sqlite = conn.dialect.name == "sqlite"
    script = _script()
    context = MigrationContext.configure(conn)
    current = context.get_current_revision()
    if current is not None:
        try:
            known = script.get_revision(current) is not None
        except CommandError:
            known = False
        if not known:
            raise UnsupportedDatabaseError(
                f"database {where} is at schema revision {current!r}, which this code does not "
                f"know (it knows up to {script.get_current_head()!r}); run a newer release of "
                "the bot or point DATABASE_URL at another database"
            )
    elif sqlite and _sqlite_user_version(conn) == LATEST_VERSION:
        # A file of an earlier release, brought to v8 by storage/migrations.py: the baseline's
        # schema but for the username index, which Alembic's spells portably.
        conn.exec_driver_sql("DROP INDEX IF EXISTS users_username")
        conn.exec_driver_sql("CREATE INDEX users_username ON users (lower(username))")
        context.stamp(script, BASELINE)
        log.info("database %s: schema version %d handed over to Alembic (%s)", where,
                 LATEST_VERSION, BASELINE)
    if context.get_current_revision() != script.get_current_head():
        # What ``alembic upgrade head`` does, on this connection and transaction, without
        # loading env.py (which is for the command line).
        with EnvironmentContext(
            alembic_config(conn), script,
            fn=lambda revision, _context: script._upgrade_revs("head", revision),
        ) as environment:
            environment.configure(connection=conn, target_metadata=metadata)
            with environment.begin_transaction():
                environment.run_migrations()
    if sqlite and _sqlite_user_version(conn) == 0:
        # PRAGMA takes no parameters; the value is our own integer constant.
        conn.exec_driver_sql(f"PRAGMA user_version = {int(LATEST_VERSION)}")
