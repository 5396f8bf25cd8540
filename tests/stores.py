"""The store's tests on both backends: SQLite (a temporary file) and PostgreSQL (a real server).

The ``stores`` fixture (tests/conftest.py) is parametrized over the two. On PostgreSQL
every test session gets a fresh database, ``bot_test_<random>`` on TEST_POSTGRES_URL's server,
dropped at the end; each test starts from empty tables (TRUNCATE ... RESTART IDENTITY, so job
ids start at 1 as in a new SQLite file). Tests that are about SQLite itself (legacy PRAGMA
migrations, file faults, flock) keep opening files with ``SqliteStore.open``.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from storage.factory import engine_url
from storage.schema import TABLES_CHILDREN_FIRST
from storage.sql import SqlStore

# Where the per-session databases are created (trust auth, as on the development and CI
# machines); override with TEST_POSTGRES_URL.
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

T = TypeVar("T")


def in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to completion on a loop of its own (a test's loop may be running here)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(server_url: str) -> str:
    """Create a fresh database on the server of ``server_url``; return its URL."""
    name = f"bot_test_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    connection = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def empty_database(database_url: str) -> None:
    """Every table emptied and every id sequence restarted (a no-op before the first open)."""
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        if await connection.fetchval("SELECT to_regclass('users')") is None:
            return
        # A store a test forgot to close would make TRUNCATE wait forever.
        await connection.execute("SET lock_timeout = '10s'")
        names = ", ".join(table.name for table in TABLES_CHILDREN_FIRST)
        await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


class Stores:
    """Opens stores of one backend; every store of a test shares one database."""

    def __init__(self, backend: str, folder: Path, postgres_url: str | None) -> None:
        self.backend = backend
        self.folder = folder
        self.postgres_url = postgres_url

    @property
    def sqlite(self) -> bool:
        return self.backend == "sqlite"

    def file(self, name: str) -> Path:
        return self.folder / name

    async def open(self, name: str = "bot.sqlite3", **options: Any) -> SqlStore:
        """A store on the test's database (on SQLite, the file ``name`` in the test's folder)."""
        if self.sqlite:
            return await SqlStore.open(self.file(name), **options)
        assert self.postgres_url is not None
        return await SqlStore.connect(engine_url(self.postgres_url), **options)

    def database_url(self, name: str = "bot.sqlite3") -> str:
        """The ``DATABASE_URL`` the bot would be given for the test's database."""
        if self.sqlite:
            return f"sqlite:///{self.file(name)}"
        assert self.postgres_url is not None
        return self.postgres_url

    async def count_rows(self, table: str, name: str = "bot.sqlite3") -> int:
        """Rows in ``table``, read over a connection of its own."""
        return int(await self.scalar(f"SELECT COUNT(*) FROM {table}", name=name))

    async def scalar(self, sql: str, name: str = "bot.sqlite3") -> Any:
        """The first column of the first row of ``sql`` (no parameters), on its own connection."""
        return (await self.rows(sql, name))[0][0]

    async def rows(self, sql: str, name: str = "bot.sqlite3") -> list[tuple[Any, ...]]:
        """Every row of ``sql`` (no parameters) as tuples, on a connection of its own."""
        if self.sqlite:
            with closing(sqlite3.connect(self.file(name), timeout=10)) as db:
                return [tuple(row) for row in db.execute(sql).fetchall()]
        assert self.postgres_url is not None
        connection = await asyncpg.connect(_asyncpg_dsn(self.postgres_url))
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()


class StoreClock:
    """Time as the test sets it, for a store's ``clock`` (shared by stores on one database)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
