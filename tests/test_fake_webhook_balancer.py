"""The fake Bot API as a load balancer: webhook updates spread round-robin over instances."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from bot.offline.bot_api import FakeTelegram
from tests.browser import free_port
from tests.harness import wait_until


class Instance:
    """A stand-in for one bot instance's webhook: records what it got, answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[str, str, int]] = []  # (path, secret header, update_id)
        self.port = free_port()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        self.received.append((request.path,
                              request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""),
                              int(update["update_id"])))
        return web.Response(status=self.status)


@asynccontextmanager
async def serving(instances: list[Instance]) -> AsyncIterator[None]:
    runners = []
    for instance in instances:
        app = web.Application()
        app.router.add_post("/{tail:.*}", instance.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", instance.port).start()
        runners.append(runner)
    try:
        yield
    finally:
        for runner in runners:
            await runner.cleanup()


async def set_webhook(telegram: FakeTelegram, url: str, secret: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        f"{telegram.root_url}/bot{telegram.token}/setWebhook",
        json={"url": url, "secret_token": secret},
    ) as response:
        assert (await response.json())["ok"] is True


async def test_updates_go_round_robin_with_path_and_secret_and_once_each(
    telegram: FakeTelegram,
) -> None:
    instances = [Instance(), Instance(), Instance()]
    async with serving(instances):
        telegram.balance_webhook([instance.base for instance in instances])
        await set_webhook(telegram, "https://bot.example/telegram/update", "s3cret")
        alice = telegram.user(1, "Alice")
        sent = [telegram.send_text(alice, telegram.private_chat(alice), f"/start {n}")
                for n in range(6)]
        await wait_until(lambda: sum(len(i.received) for i in instances) == 6)
    for instance in instances:
        assert len(instance.received) == 2  # an even spread
        assert {(path, secret) for path, secret, _ in instance.received} == {
            ("/telegram/update", "s3cret")
        }
    delivered = sorted(update_id for i in instances for _, _, update_id in i.received)
    assert len(delivered) == len(set(delivered)) == len(sent)


async def test_an_instance_that_fails_hands_its_update_to_the_next(
    telegram: FakeTelegram,
) -> None:
    telegram.webhook_retry_delay = 0.01
    healthy, broken = Instance(), Instance(status=503)
    async with serving([healthy, broken]):
        telegram.balance_webhook([broken.base, healthy.base])
        await set_webhook(telegram, "https://bot.example/hook", "")
        alice = telegram.user(1, "Alice")
        for n in range(3):
            telegram.send_text(alice, telegram.private_chat(alice), f"/start {n}")
        await wait_until(lambda: len(healthy.received) == 3)
    assert len({update_id for _, _, update_id in healthy.received}) == 3
    assert all(status == 503 for _, backend, status in telegram.webhook_backend_posts
               if backend == broken.base)


async def test_an_instance_that_is_gone_refuses_the_connection_and_the_next_gets_it(
    telegram: FakeTelegram,
) -> None:
    """A killed instance's port refuses connections: each try there moves on to the next."""
    telegram.webhook_retry_delay = 0.01
    first, second = Instance(), Instance()
    gone = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with serving([first, second]):
        telegram.balance_webhook([first.base, gone, second.base])
        await set_webhook(telegram, "https://bot.example/hook", "s")
        alice = telegram.user(1, "Alice")
        sent = [telegram.update_id_of(telegram.send_text(alice, telegram.private_chat(alice),
                                                         f"/start {n}")) for n in range(6)]
        await wait_until(lambda: len(first.received) + len(second.received) == 6)
    delivered = [update_id for i in (first, second) for _, _, update_id in i.received]
    assert sorted(delivered) == sent  # each once, none lost to the dead port
    refused = [status for _, backend, status in telegram.webhook_backend_posts
               if backend == gone]
    assert refused and set(refused) == {0}  # tried, no HTTP answer at all
    assert telegram.pending_update_count == 0
