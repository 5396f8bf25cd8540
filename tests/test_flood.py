"""One person's flood of cheap requests is cut down to a few answers; others are not held up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import flood_limiter
from bot.flood import PerUserLimit
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from tests.harness import Harness, make_image, replied_to, serving


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_interval() -> None:
    clock = Clock()
    limit = PerUserLimit(burst=3, refill_seconds=0.5, clock=clock)
    assert [limit.allow(1) for _ in range(5)] == [True, True, True, False, False]
    clock.now += 0.49
    assert not limit.allow(1)
    clock.now += 0.02
    assert limit.allow(1)
    assert not limit.allow(1)
    clock.now += 10
    assert [limit.allow(1) for _ in range(4)] == [True, True, True, False]  # never above burst


def test_people_have_their_own_buckets() -> None:
    limit = PerUserLimit(burst=2, refill_seconds=1.0, clock=Clock())
    assert [limit.allow(1) for _ in range(3)] == [True, True, False]
    assert [limit.allow(2) for _ in range(3)] == [True, True, False]


def test_memory_is_bounded_forgetting_full_buckets_first() -> None:
    clock = Clock()
    limit = PerUserLimit(burst=2, refill_seconds=1.0, clock=clock, max_tracked=2)
    assert limit.allow(1) and limit.allow(1)  # user 1 has used up the burst
    assert limit.allow(2)
    clock.now += 1.0  # user 2 is full again; user 1 has one token back
    assert limit.allow(3)  # over the bound: user 2 (full) is forgotten, user 1 is kept
    assert [limit.allow(1), limit.allow(1)] == [True, False]  # a forgotten user 1 had two


@pytest.fixture
async def limited(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The harness with the production burst (10) and no refill during the test."""
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3",
                       CHEAP_REQUEST_BURST="10", CHEAP_REQUEST_INTERVAL="600") as harness:
        yield harness


@pytest.mark.slow
async def test_a_flood_of_help_is_cut_and_others_are_answered(limited: Harness) -> None:
    tg = limited.telegram
    alice = limited.user(1, "Alice")
    bob = limited.user(2, "Bob")
    flood = [tg.send_text(alice, tg.private_chat(alice), "/help") for _ in range(150)]
    answer = await limited.reply_to(tg.send_text(bob, tg.private_chat(bob), "/help"))
    assert "/edit" in answer.params["text"]
    # Alice's edit request is no cheap request: it runs although her bucket is empty.
    photo = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
    await limited.reply_to(photo, "sendPhoto")
    await limited.settled()
    answered = {replied_to(call) for call in tg.calls_to("sendMessage")
                if call.params["chat_id"] in (1, "1")}
    assert len(answered & {message["message_id"] for message in flood}) == 10


async def _sent_within(instances: int, seconds: float, chat_id: int) -> int:
    """How many of 100 messages one instance's limiter lets out within ``seconds``."""
    limiter = flood_limiter(instances)
    await limiter.initialize()
    sent = 0

    async def send() -> bool:
        nonlocal sent
        sent += 1
        return True

    tasks = [asyncio.create_task(limiter.process_request(
        send, (), {}, "sendMessage", {"chat_id": chat_id}, None)) for _ in range(100)]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await limiter.shutdown()
    return sent


async def test_instances_sharing_a_token_split_telegrams_flood_limits() -> None:
    # Alone, an instance may send Telegram's 30 a second; one of three sends a third of that
    # (a bucket of 10 at once, then 10 a second), so the three together stay within it.
    alone, one_of_three = await asyncio.gather(_sent_within(1, 0.5, 1),
                                               _sent_within(3, 0.5, 2))
    assert alone >= 30
    assert 10 <= one_of_three <= 16
    # In a group: 20 a minute alone, 6.7 a minute for one of three.
    alone, one_of_three = await asyncio.gather(_sent_within(1, 0.3, -100),
                                               _sent_within(3, 0.3, -200))
    assert alone == 20
    assert one_of_three <= 7
