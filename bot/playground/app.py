"""``python -m bot playground``: the real bot against the offline world, and a chat page for it.

One process holds the DashScope emulator, the local Bot API and the bot, which runs exactly as
``python -m bot`` does (the same Application, handlers, pipeline and store, the same run loop in
bot/startup.py), only pointed at loopback servers. The bot's own web server, which serves the
Mini App, also serves the chat page: so the 🖌 button opens the mask page from the same origin.
No token, no key, no network; a throwaway SQLite file unless ``--db`` names one.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.app import build_application
from bot.bailian import PollPolicy
from bot.config import Settings, load_settings
from bot.logging_setup import setup_logging
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from bot.offline.world import offline_env
from bot.playground.chat import WEB_APP_SCRIPT_PATH, YOU_ID, PlaygroundChat
from bot.services import BotApplication
from bot.startup import ExitCode, run_until_stopped, stop_on_signals
from bot.texts import Lang
from bot.web.server import WebExtras

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Neither is secret nor accepted anywhere but by the loopback servers started here.
BOT_TOKEN = "1000000001:playground-local-bot-api-not-a-telegram-token"
API_KEY = "playground"
BOT_USERNAME = "BailianPlaygroundBot"
BOT_NAME = "Bailian Bot"
# Quicker than the service's 5-15 s, so trying things by hand does not drag; the poller is told.
EMULATOR_LATENCY = (1.0, 2.5)
MONTHLY_QUOTA = 100


@dataclass(frozen=True)
class PlaygroundOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    database: str | None = None  # a SQLite file or a DATABASE_URL; None: a throwaway file
    lang: Lang = Lang.EN
    log_level: str = "WARNING"
    # Seconds a wanx task takes in the emulator, drawn between the two (tests make it shorter).
    latency: tuple[float, float] = EMULATOR_LATENCY

    @property
    def url(self) -> str:
        """Where the page is (a wildcard host is reached on the loopback address)."""
        host = DEFAULT_HOST if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


def run_playground(options: PlaygroundOptions) -> int:
    """Run until SIGINT/SIGTERM; prints one line, the page's URL, once it answers."""
    # No secrets to mask: the token and key open nothing outside this process.
    setup_logging(options.log_level, ())
    try:
        return int(asyncio.run(serve(options, announce)))
    except KeyboardInterrupt:  # before the loop's signal handlers were installed
        return ExitCode.OK


def announce(url: str) -> None:
    print(f"Bailian bot playground: {url}  (Ctrl+C stops it)", flush=True)


async def serve(
    options: PlaygroundOptions,
    on_ready: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> ExitCode:
    """The offline world, then the bot until ``stop`` (default: SIGINT/SIGTERM)."""
    stop = stop_on_signals() if stop is None else stop
    async with (
        offline_world(options.latency) as (bot_api, dashscope),
        _database(options) as database,
    ):
        chat = PlaygroundChat(bot_api, options.lang)
        settings = playground_settings(bot_api, dashscope, database, options)
        extras = WebExtras(routes=chat.routes(), web_app_script=WEB_APP_SCRIPT_PATH,
                           on_shutdown=(chat.close,))

        def build(settings: Settings) -> BotApplication:
            return build_application(
                settings, poll_policy=poll_policy(options.latency), web_extras=extras
            )

        return await run_until_stopped(
            settings, build, stop, on_ready=lambda: on_ready(options.url)
        )


@contextlib.asynccontextmanager
async def offline_world(
    latency: tuple[float, float] = EMULATOR_LATENCY,
) -> AsyncIterator[tuple[FakeTelegram, DashScopeEmulator]]:
    """The local Bot API and the DashScope emulator, each on a free loopback port."""
    bot_api = FakeTelegram(token=BOT_TOKEN, bot_id=int(BOT_TOKEN.split(":")[0]),
                           bot_username=BOT_USERNAME)
    bot_api.bot_user["first_name"] = BOT_NAME
    dashscope = DashScopeEmulator(api_key=API_KEY, latency=latency, qwen_latency=latency[0])
    async with bot_api:
        await dashscope.start()
        try:
            yield bot_api, dashscope
        finally:
            await dashscope.close()


def poll_policy(latency: tuple[float, float]) -> PollPolicy:
    """The poller told how long the emulator's tasks take."""
    low, high = latency
    return PollPolicy(first_delay=low / 2, prior_latency=latency, min_interval=min(0.1, low / 2),
                      max_dense_interval=max(0.1, (high - low) / 4), max_interval=max(0.2, high))


def playground_settings(
    bot_api: FakeTelegram, dashscope: DashScopeEmulator, database: str,
    options: PlaygroundOptions,
) -> Settings:
    """The bot's settings, as ``python -m bot`` reads them, pointed at the offline world."""
    env = offline_env(bot_api, dashscope, database) | {
        # "You" is the admin: the admin commands can be tried, and the start alert shows.
        "ADMIN_USER_IDS": str(YOU_ID),
        "MONTHLY_QUOTA": str(MONTHLY_QUOTA),
        "DASHSCOPE_POLL_INTERVAL": "0.3",
        "PUBLIC_URL": options.url,
        "WEB_HOST": options.host,
        "WEB_PORT": str(options.port),
        "LOG_LEVEL": options.log_level,
        "TELEGRAM_STARTUP_TIMEOUT": "5",
    }
    return load_settings(env, dotenv=None)


@contextlib.asynccontextmanager
async def _database(options: PlaygroundOptions) -> AsyncIterator[str]:
    if options.database is not None:
        yield options.database
        return
    with tempfile.TemporaryDirectory(prefix="bailian-playground-") as folder:
        path = Path(folder) / "bot.sqlite3"
        # An empty file is an empty database; a missing one makes the store warn of a lost one.
        path.touch()
        yield str(path)
