"""The settings that point the real bot at the offline world (the playground and the tests)."""

from __future__ import annotations

from pathlib import Path

from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator


def offline_env(
    bot_api: FakeTelegram, dashscope: DashScopeEmulator, database: Path | str
) -> dict[str, str]:
    """The environment variables of ``python -m bot`` against ``bot_api`` and ``dashscope``:
    their token, key and URLs, and ``database`` (a SQLite file, or a DATABASE_URL as is)."""
    database_url = str(database) if "://" in str(database) else f"sqlite:///{database}"
    return {
        "TELEGRAM_BOT_TOKEN": bot_api.token,
        "DASHSCOPE_API_KEY": dashscope.api_key,
        "TELEGRAM_API_URL": bot_api.root_url,
        "DASHSCOPE_BASE_URL": dashscope.base_url,
        "DATABASE_URL": database_url,
    }
