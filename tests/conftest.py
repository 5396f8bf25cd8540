"""Fixtures shared by the end-to-end tests (imports are lazy so unit tests load nothing extra)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# As bot/__main__.py does: PTB's timedelta durations, so a RetryAfter warns nothing.
os.environ.setdefault("PTB_TIMEDELTA", "true")

if TYPE_CHECKING:
    from bot.offline.bot_api import FakeTelegram
    from bot.offline.dashscope import DashScopeEmulator
    from tests.harness import Harness


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
    from tests.harness import Harness, bot_settings, running

    settings = bot_settings(telegram, emulator, tmp_path / "bot.sqlite3")
    async with running(settings) as application:
        yield Harness(telegram, emulator, settings, application)
