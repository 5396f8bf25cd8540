"""The long-lived resources of a running bot, opened at start and reached through the context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from telegram.ext import Application, CallbackContext, ExtBot

from bot.albums import AlbumCollector
from bot.bailian import BailianClient
from bot.config import Settings
from bot.conversations import Conversations
from bot.flood import PerUserLimit
from bot.jobs import JobService
from bot.leader import Leadership
from bot.metrics import Metrics
from bot.telegram_io import TelegramMessenger
from storage.models import Store

if TYPE_CHECKING:  # bot.web imports bot.startup, which imports this module
    from bot.web import WebServer

SERVICES_KEY = "services"


@dataclass
class Services:
    settings: Settings
    store: Store
    session: aiohttp.ClientSession
    client: BailianClient
    messenger: TelegramMessenger
    jobs: JobService
    conversations: Conversations
    bot_username: str
    metrics: Metrics
    cheap_limit: PerUserLimit = field(init=False)  # from the settings
    albums: AlbumCollector = field(init=False)  # from the settings
    web: WebServer | None = None  # the Mini App's server, when PUBLIC_URL is set
    leadership: Leadership | None = None  # who runs the job pipeline (bot/leader.py)

    def __post_init__(self) -> None:
        self.albums = AlbumCollector(self.store, self.settings.album_window_seconds)
        self.cheap_limit = PerUserLimit(burst=self.settings.cheap_request_burst,
                                        refill_seconds=self.settings.cheap_request_interval)

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.settings.admin_user_ids


class BotContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """The callback context with typed access to the bot's services."""

    @property
    def services(self) -> Services:
        services = self.application.bot_data.get(SERVICES_KEY)
        if not isinstance(services, Services):
            raise RuntimeError("services are opened in post_init and not ready yet")
        return services


BotApplication = Application[
    ExtBot[Any], BotContext, dict[Any, Any], dict[Any, Any], dict[Any, Any], Any
]
