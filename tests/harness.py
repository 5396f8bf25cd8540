"""End-to-end harness: the real Application against the fake Bot API and the DashScope emulator."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from bot.app import build_application
from bot.bailian import PollPolicy, RetryPolicy
from bot.bailian.client import REQUEST_TIMEOUT
from bot.config import Settings, load_settings
from bot.offline.bot_api import ApiCall, FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from bot.offline.world import offline_env
from bot.services import SERVICES_KEY, BotApplication, Services

ADMIN_ID = 9000
API_KEY = "sk-emulated-secret-key-0123456789"


def make_image(
    width: int = 640,
    height: int = 480,
    color: tuple[int, int, int] = (40, 120, 200),
    fmt: str = "JPEG",
) -> bytes:
    """A real image with some structure (a gradient and a box), encoded in ``fmt``."""
    image = Image.new("RGB", (width, height), color)
    for x in range(0, width, max(1, width // 32)):
        for y in range(height // 3, height // 3 + max(1, height // 8)):
            image.putpixel((x, y), (255 - color[0], 255 - color[1], 255 - color[2]))
    image.paste((250, 250, 250), (width // 4, height // 4, width // 2, height // 2))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def make_mask(width: int, height: int, box: tuple[int, int, int, int] | None = None) -> bytes:
    """A black mask with a white box (the area to edit)."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box or (width // 4, height // 4, width // 2, height // 2))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def bot_settings(
    telegram: FakeTelegram, emulator: DashScopeEmulator, database: Path, **overrides: str
) -> Settings:
    env = offline_env(telegram, emulator, database) | {
        "ADMIN_USER_IDS": str(ADMIN_ID),
        "MONTHLY_QUOTA": "5",
        "DASHSCOPE_POLL_INTERVAL": "0.05",
        "DASHSCOPE_QPS": "50",
        "DASHSCOPE_MAX_TASKS": "2",
        # Outages are waited out for this long before a job not yet submitted is refunded.
        "DASHSCOPE_OUTAGE_WAIT": "3",
        # Tests send commands faster than people; tests/test_flood.py uses the real limit.
        "CHEAP_REQUEST_BURST": "1000",
    } | overrides
    return load_settings(env, dotenv=None)


# The emulator's tasks take 0.05-0.3 s here, not 5-15 s: tell the poller, keep retries short.
TEST_POLL_POLICY = PollPolicy(
    first_delay=0.05, prior_latency=(0.05, 0.3), min_interval=0.03, max_dense_interval=0.1,
    max_interval=0.3,
)
TEST_RETRY_POLICY = RetryPolicy(initial_delay=0.01, max_delay=0.05, total_budget=2.0)


@asynccontextmanager
async def running(
    settings: Settings, *, request_timeout: float = REQUEST_TIMEOUT
) -> AsyncIterator[BotApplication]:
    """Run the Application as ``run_polling`` would: init, post_init, poll; then the reverse."""
    application = build_application(
        settings, poll_policy=TEST_POLL_POLICY, retry_policy=TEST_RETRY_POLICY,
        request_timeout=request_timeout,
    )
    await application.initialize()
    assert application.post_init is not None
    await application.post_init(application)
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.0, timeout=1)
    await application.start()
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        if application.post_stop is not None:
            await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


@dataclass
class Harness:
    telegram: FakeTelegram
    emulator: DashScopeEmulator
    settings: Settings
    application: BotApplication
    users: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        services = self.application.bot_data[SERVICES_KEY]
        assert isinstance(services, Services)
        return services

    def user(
        self,
        user_id: int,
        name: str = "Alice",
        *,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        user = self.telegram.user(user_id, name, username=username, language_code=language_code)
        self.users[user_id] = user
        return user

    async def reply_to(
        self, message: dict[str, Any], method: str = "sendMessage", timeout: float = 10.0
    ) -> ApiCall:
        """The bot's next ``method`` call replying to ``message``."""
        return await self.telegram.wait_for_call(
            method,
            lambda call: (
                replied_to(call) == message["message_id"]
                and int(call.params["chat_id"]) == message["chat"]["id"]
            ),
            timeout=timeout,
        )

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until no job is unfinished."""
        await wait_until(self._idle, timeout)

    async def _idle(self) -> bool:
        return not await self.services.store.resumable_jobs()


@asynccontextmanager
async def serving(
    telegram: FakeTelegram, emulator: DashScopeEmulator, database: Path, **overrides: str
) -> AsyncIterator[Harness]:
    """The bot running on ``database`` against the fakes, with some settings overridden."""
    settings = bot_settings(telegram, emulator, database, **overrides)
    async with running(settings) as application:
        yield Harness(telegram, emulator, settings, application)


def replied_to(call: ApiCall) -> int | None:
    reply = call.params.get("reply_parameters")
    if isinstance(reply, dict):
        return int(reply["message_id"])
    return None


async def wait_until(
    condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``condition`` (sync or async) until true; AssertionError on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


REPO = Path(__file__).resolve().parent.parent


def subprocess_env(
    telegram: FakeTelegram, emulator: DashScopeEmulator, database: Path, **settings: str
) -> dict[str, str]:
    """The environment for a ``python -m bot`` subprocess against the fakes.

    The caller's TELEGRAM_* and DASHSCOPE_* variables are dropped so nothing real leaks in;
    ``settings`` override the defaults (quota 5, INFO logs, first poll after 0.1 s).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DASHSCOPE_"))}
    env.update(offline_env(telegram, emulator, database) | {
        # The subprocess polls with the default policy: first poll after this interval.
        "DASHSCOPE_POLL_INTERVAL": "0.1",
        "MONTHLY_QUOTA": "5",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    } | settings)
    return env


@asynccontextmanager
async def bot_process(
    env: dict[str, str], log: Path, *, module: str = "bot", graceful: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot`` (or ``module``) until the block ends, its output appended to ``log``.

    At the end a process still running is killed, or with ``graceful`` sent SIGTERM first and
    killed only if it has not stopped within 15 s.
    """
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, cwd=str(REPO), env=env, stdout=sink, stderr=sink
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            if graceful:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
            else:
                process.kill()
        await process.wait()
