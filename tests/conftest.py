"""Fixtures shared by the end-to-end tests (imports are lazy so unit tests load nothing extra)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# As bot/__main__.py does: PTB's timedelta durations, so a RetryAfter warns nothing.
os.environ.setdefault("PTB_TIMEDELTA", "true")

if TYPE_CHECKING:
    from bot.offline.bot_api import FakeTelegram
    from bot.offline.dashscope import DashScopeEmulator
    from tests.harness import Harness
    from tests.stores import Stores


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session (created on first use, dropped at the end)."""
    from tests.stores import DEFAULT_POSTGRES_URL, create_database, drop_database, in_thread

    server = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        url = in_thread(create_database(server))
    except (OSError, asyncpg_errors()) as exc:
        pytest.fail(
            f"PostgreSQL at {server} is needed for the store's postgresql tests ({exc}); start it "
            "(.ci/run does) or point TEST_POSTGRES_URL at a server where this user may CREATE "
            "DATABASE",
            pytrace=False,
        )
    try:
        yield url
    finally:
        in_thread(drop_database(server, url))


def asyncpg_errors() -> type[Exception]:
    import asyncpg

    return asyncpg.PostgresError


@pytest.fixture(params=["sqlite", "postgresql"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Stores:
    """Opens stores on SQLite or on PostgreSQL (tests/stores.py); the tables start empty."""
    from tests.stores import Stores, empty_database

    if request.param == "sqlite":
        return Stores("sqlite", tmp_path, None)
    url: str = request.getfixturevalue("postgres_url")
    await empty_database(url)
    return Stores("postgresql", tmp_path, url)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    from bot.offline.bot_api import FakeTelegram

    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
async def emulator() -> AsyncIterator[DashScopeEmulator]:
    from bot.offline.dashscope import DashScopeEmulator
    from tests.harness import API_KEY

    emu = DashScopeEmulator(api_key=API_KEY, latency=(0.05, 0.15), seed=7)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture
async def harness(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> AsyncIterator[Harness]:
    from tests.harness import serving

    async with serving(telegram, emulator, tmp_path / "bot.sqlite3") as harness:
        yield harness
