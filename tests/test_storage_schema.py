"""Migrations at open, on both backends: Alembic creates a new database, stamps an SQLite file of
an earlier release, refuses a newer one, and two stores opening one new database at once apply
each revision once. The schema Alembic builds is storage/schema.py's."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from bot.errors import UnsupportedDatabaseError
from storage import SqliteStore
from storage.migrate import head_revision
from storage.migrations import LATEST_VERSION
from storage.schema import metadata
from storage.sql import SqlStore
from tests.stores import Stores
from tests.test_storage import write_v1_database


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


# SQLite's reflection skips the expression index (lower(username)); the file test checks it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
async def test_alembic_builds_the_schema_the_code_declares(stores: Stores) -> None:
    async with (
        await stores.open(default_limit=1, tz=UTC) as store,
        store._transaction(write=False) as tx,  # white box
    ):
        differences = await tx.conn.run_sync(_differences)
    assert differences == []
    assert await stores.scalar("SELECT version_num FROM alembic_version") == head_revision()


async def test_a_new_sqlite_file_is_marked_v8_for_older_releases(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    async with await SqliteStore.open(path, default_limit=1, tz=UTC):
        pass
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == (
            head_revision())


async def test_a_file_of_an_earlier_release_is_migrated_then_stamped(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    write_v1_database(path)
    async with await SqliteStore.open(path, default_limit=5, tz=UTC) as store:
        assert (await store.find_user_by_username("OLD")) is not None  # the new index's query
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == (
            head_revision())
        index = db.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'users_username'"
        ).fetchone()[0]
    assert "lower(username)" in index
    async with await SqliteStore.open(path, default_limit=5, tz=UTC) as store:  # and again
        assert (await store.get_user(1)) is not None


async def test_an_unknown_revision_is_refused_and_left_alone(stores: Stores) -> None:
    async with (
        await stores.open(default_limit=1, tz=UTC) as store,
        store._transaction(write=True) as tx,  # white box
    ):
        await tx.run("UPDATE alembic_version SET version_num = 'f00d'")
    try:
        with pytest.raises(UnsupportedDatabaseError, match=rf"revision 'f00d'.*{head_revision()}"):
            await stores.open(default_limit=1, tz=UTC)
        assert await stores.scalar("SELECT version_num FROM alembic_version") == "f00d"
    finally:
        async with await _force_head(stores):
            pass


async def _force_head(stores: Stores) -> SqlStore:
    """Put the head revision back (the PostgreSQL database is shared by the session)."""
    if stores.sqlite:
        with closing(sqlite3.connect(stores.file("bot.sqlite3"))) as db, db:
            db.execute("UPDATE alembic_version SET version_num = ?", (head_revision(),))
    else:
        import asyncpg

        from tests.stores import _asyncpg_dsn

        assert stores.postgres_url is not None
        connection = await asyncpg.connect(_asyncpg_dsn(stores.postgres_url))
        try:
            await connection.execute("UPDATE alembic_version SET version_num = $1",
                                     head_revision())
        finally:
            await connection.close()
    return await stores.open(default_limit=1, tz=UTC)


async def test_two_stores_opening_a_new_database_at_once_migrate_it_once(
    stores: Stores,
) -> None:
    if not stores.sqlite:
        # A database with no tables at all, as on a first deploy.
        await _drop_everything(stores)
    opened = await asyncio.gather(*(stores.open(default_limit=1, tz=UTC) for _ in range(4)))
    try:
        await opened[0].touch_user(1, None, "U", None)
        for store in opened:
            assert (await store.get_user(1)) is not None
    finally:
        for store in opened:
            await store.close()
    assert await stores.count_rows("alembic_version") == 1


async def _drop_everything(stores: Stores) -> None:
    import asyncpg

    from tests.stores import _asyncpg_dsn

    assert stores.postgres_url is not None
    connection = await asyncpg.connect(_asyncpg_dsn(stores.postgres_url))
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()
