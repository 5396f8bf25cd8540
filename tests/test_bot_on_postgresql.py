"""The bot end to end with ``DATABASE_URL=postgres://…``: the Procfile platforms' spelling."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from bot.texts import Lang, text
from storage.models import next_month_start
from tests.harness import Harness, bot_settings, make_image, running
from tests.stores import empty_database

pytestmark = pytest.mark.slow


async def test_a_photo_is_upscaled_charged_once_and_the_quota_survives_a_restart(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path, postgres_url: str
) -> None:
    await empty_database(postgres_url)
    url = postgres_url.replace("postgresql://", "postgres://", 1)
    settings = bot_settings(telegram, emulator, tmp_path / "unused.sqlite3", DATABASE_URL=url)
    tg = telegram
    async with running(settings) as application:
        harness = Harness(telegram, emulator, settings, application)
        alice = harness.user(1)
        chat = tg.private_chat(alice)
        request = tg.send_photo(alice, chat, make_image(300, 300), "/upscale 2")
        await harness.reply_to(request, "sendPhoto")
        await harness.settled()
        status = await harness.services.store.quota_status(1)
        assert (status.used, status.reserved) == (1, 0)
        assert harness.services.store.dialect == "postgresql"  # type: ignore[attr-defined]
    assert not (tmp_path / "unused.sqlite3").exists()

    async with running(settings) as application:  # a restart: the books are in PostgreSQL
        harness = Harness(telegram, emulator, settings, application)
        store = harness.services.store
        asked = tg.send_text(alice, chat, "/quota")
        answer = str((await harness.reply_to(asked)).params["text"])
        assert answer == text("quota_status", Lang.EN, used=1, reserved=0, limit=5, granted=0,
                              remaining=4, reset=next_month_start(store.current_month()),
                              tz=settings.quota_timezone)
    assert len(emulator.requests_to("submit")) == 1  # nothing run or charged twice
