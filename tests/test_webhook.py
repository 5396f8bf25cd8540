"""Webhook mode with real processes: ``python -m bot`` with WEBHOOK_URL against the fake Bot API,
which POSTs updates to the bot's own web server as Telegram does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from storage import open_store
from tests.browser import free_port
from tests.harness import API_KEY, bot_process, make_image, replied_to, subprocess_env, wait_until

SECRET = "hook-Secret_0123456789abcdef"
START_TIMEOUT = 20.0


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, DashScopeEmulator]]:
    async with (
        DashScopeEmulator(api_key=API_KEY, latency=(0.05, 0.1), seed=11) as emulator,
        FakeTelegram() as telegram,
    ):
        yield telegram, emulator


def webhook_env(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path, port: int
) -> dict[str, str]:
    return subprocess_env(
        telegram, emulator, tmp_path / "bot.sqlite3",
        WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/hook", WEBHOOK_SECRET=SECRET,
        WEB_HOST="127.0.0.1", WEB_PORT=str(port),
    )


async def webhook_set(
    telegram: FakeTelegram, process: asyncio.subprocess.Process, log: Path
) -> None:
    await wait_until(
        lambda: process.returncode is not None
        or ("bot @" in log.read_text() and telegram.webhook_url != ""),
        timeout=START_TIMEOUT,
    )
    assert process.returncode is None, log.read_text()


@pytest.mark.slow
async def test_updates_arrive_through_the_webhook_and_are_answered_and_charged_once(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    port = free_port()
    log = tmp_path / "bot.log"
    async with bot_process(webhook_env(telegram, emulator, tmp_path, port), log,
                           graceful=True) as process:
        await webhook_set(telegram, process, log)
        [call] = telegram.calls_to("setWebhook")
        assert call.params["url"] == f"http://127.0.0.1:{port}/telegram/hook"
        assert call.params["secret_token"] == SECRET
        assert "message" in call.params["allowed_updates"]
        assert "callback_query" in call.params["allowed_updates"]
        assert call.params.get("drop_pending_updates") in (None, False)

        alice = telegram.user(1, "Alice")
        chat = telegram.private_chat(alice)
        start = telegram.send_text(alice, chat, "/start")
        await telegram.wait_for_call(
            "sendMessage", lambda c: replied_to(c) == start["message_id"], timeout=10
        )
        photo = telegram.send_photo(alice, chat, make_image(), "/upscale 2")
        await telegram.wait_for_call(
            "sendPhoto", lambda c: replied_to(c) == photo["message_id"], timeout=30
        )
        # Telegram retries an update it got no 2xx for; the bot answered each at once.
        update_id = telegram.update_id_of(photo)
        assert (update_id, 200) in telegram.webhook_posts
        telegram.redeliver(update_id)  # as Telegram does when an answer was lost
        await wait_until(lambda: telegram.webhook_posts.count((update_id, 200)) == 2)
        await asyncio.sleep(1.0)
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 20) == 0, log.read_text()
    output = log.read_text()
    assert not telegram.calls_to("getUpdates")  # no polling in webhook mode
    assert not telegram.calls_to("deleteWebhook")  # left set: a restart loses no update
    assert telegram.webhook_url.endswith("/telegram/hook")
    assert SECRET not in output
    assert len([c for c in telegram.calls_to("sendPhoto")
                if replied_to(c) == photo["message_id"]]) == 1
    store = await open_store(f"sqlite:///{tmp_path / 'bot.sqlite3'}", default_limit=5,
                             tz=ZoneInfo("Asia/Shanghai"))
    try:
        assert (await store.quota_status(1)).used == 1  # the redelivered update charged nothing
    finally:
        await store.close()


@pytest.mark.slow
async def test_a_wrong_or_missing_secret_or_another_path_is_refused_and_nothing_handled(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    port = free_port()
    log = tmp_path / "bot.log"
    alice = telegram.user(1, "Alice")
    update = {
        "update_id": 555, "message": {
            "message_id": 1, "date": 1_700_000_000, "chat": {"id": 1, "type": "private",
                                                              "first_name": "Alice"},
            "from": alice, "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }
    base = f"http://127.0.0.1:{port}"
    async with bot_process(webhook_env(telegram, emulator, tmp_path, port), log,
                           graceful=True) as process:
        await webhook_set(telegram, process, log)
        async with aiohttp.ClientSession() as session:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                            {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]}):
                async with session.post(f"{base}/telegram/hook", json=update,
                                        headers=headers) as response:
                    assert response.status == 403
            right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            for path in ("/", "/telegram", "/telegram/hook/x", "/mask/submit", "/healthz"):
                async with session.post(f"{base}{path}", json=update,
                                        headers=right) as response:
                    assert response.status in (404, 405), path
            async with session.post(f"{base}/telegram/hook", data=b"not json",
                                    headers=right) as response:
                assert response.status == 400
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{base}/mask") as response:
                assert response.status == 404  # no PUBLIC_URL: no mask page
        await asyncio.sleep(0.5)
        assert not telegram.calls_to("sendMessage")
        # The same update with the right secret is handled: the refusals were the secret's.
        async with aiohttp.ClientSession() as session, session.post(
            f"{base}/telegram/hook", json=update, headers=right
        ) as response:
            assert response.status == 200
        await telegram.wait_for_call("sendMessage", lambda c: int(c.params["chat_id"]) == 1)
    assert "without the right secret" in log.read_text()


def test_webhook_url_without_a_secret_or_with_a_bad_one_is_a_config_error() -> None:
    env = {"TELEGRAM_BOT_TOKEN": "1:x", "DASHSCOPE_API_KEY": "k",
           "WEBHOOK_URL": "https://bot.example.com/hook"}
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET: is required with WEBHOOK_URL"):
        load_settings(env, dotenv=None)
    for bad in ("has space", "semi;colon", "é", "x" * 257):
        with pytest.raises(ConfigError, match="A-Z a-z 0-9 _ -"):
            load_settings(env | {"WEBHOOK_SECRET": bad}, dotenv=None)
    settings = load_settings(env | {"WEBHOOK_SECRET": "a" * 256}, dotenv=None)
    assert settings.serves_web and settings.webhook_secret in settings.secrets


@pytest.mark.slow
async def test_webhook_without_secret_exits_2_naming_the_variable(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    env = subprocess_env(telegram, emulator, tmp_path / "bot.sqlite3",
                         WEBHOOK_URL="https://bot.example.com/hook")
    log = tmp_path / "bot.log"
    async with bot_process(env, log) as process:
        assert await asyncio.wait_for(process.wait(), 20) == 2
    assert "WEBHOOK_SECRET" in log.read_text()
    assert not telegram.calls


async def test_the_fake_delivers_to_a_webhook_with_the_secret_and_retries_like_telegram(
    telegram: FakeTelegram,
) -> None:
    """The fake Bot API in webhook mode: POSTs with the header, retries non-2xx, 409 polls."""
    from aiohttp import web
    from telegram import Bot
    from telegram.error import Conflict

    received: list[tuple[int, str]] = []
    answers = [500, 200, 200]

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        received.append((update["update_id"],
                         request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    bot = Bot(telegram.token, base_url=f"{telegram.root_url}/bot")
    try:
        async with bot:
            assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token=SECRET,
                                         allowed_updates=["message"])
            assert (await bot.get_webhook_info()).url.endswith("/hook")
            with pytest.raises(Conflict, match="webhook is active"):
                await bot.get_updates(timeout=0)
            alice = telegram.user(1, "Alice")
            first = telegram.update_id_of(
                telegram.send_text(alice, telegram.private_chat(alice), "one"))
            second = telegram.update_id_of(
                telegram.send_text(alice, telegram.private_chat(alice), "two"))
            await wait_until(lambda: len(received) == 3)
            # The first answer was a 500: sent again, and in order before the next update.
            assert received == [(first, SECRET), (first, SECRET), (second, SECRET)]
            assert telegram.webhook_posts == [(first, 500), (first, 200), (second, 200)]
            assert telegram.pending_update_count == 0
            assert await bot.delete_webhook()
            assert telegram.webhook_url == ""
            third = telegram.update_id_of(
                telegram.send_text(alice, telegram.private_chat(alice), "three"))
            [polled] = await bot.get_updates(timeout=0)  # polling again once it is deleted
            assert polled.update_id == third
    finally:
        await runner.cleanup()


@pytest.mark.slow
async def test_updates_sent_while_the_bot_is_down_arrive_after_the_restart(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    port = free_port()
    env = webhook_env(telegram, emulator, tmp_path, port)
    log = tmp_path / "bot.log"
    async with bot_process(env, log, graceful=True) as process:
        await webhook_set(telegram, process, log)
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 20) == 0, log.read_text()
    alice = telegram.user(1, "Alice")
    start = telegram.send_text(alice, telegram.private_chat(alice), "/start")
    await wait_until(lambda: any(status != 200 for _, status in telegram.webhook_posts))
    assert not telegram.calls_to("sendMessage")
    async with bot_process(env, log, graceful=True) as process:
        await telegram.wait_for_call(
            "sendMessage", lambda c: replied_to(c) == start["message_id"], timeout=START_TIMEOUT
        )
    assert len(telegram.calls_to("setWebhook")) == 2
    assert not telegram.calls_to("deleteWebhook")
