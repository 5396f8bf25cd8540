"""Result-button presses and album gathering shared through the store, so that several instances
on one database behave as one: two stores on one database stand for two instances (two
connections; on PostgreSQL two pools), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.albums import AlbumCollector, AlbumPart
from bot.jobs.presses import PRESS_PATIENCE, Press, Presses, PressKind
from storage import NewJob, SqlStore
from tests.stores import StoreClock as Clock
from tests.stores import Stores

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ALICE = 1
PRESS = Press(PressKind.AGAIN, job_id=1, index=0, user_id=ALICE)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
async def two(stores: Stores, clock: Clock) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database, as two instances have."""
    first = await stores.open(default_limit=10, tz=SHANGHAI, clock=clock)
    second = await stores.open(default_limit=10, tz=SHANGHAI, clock=clock)
    try:
        await first.touch_user(ALICE, "alice", "Alice", "en")
        yield first, second
    finally:
        await first.close()
        await second.close()


def new_job() -> NewJob:
    return NewJob(user_id=ALICE, chat_id=ALICE, request_message_id=1, command="edit",
                  model="qwen-image-edit", function=None, spec_json="{}", input_file_id="f",
                  images_requested=1)


# --- presses -----------------------------------------------------------------------------------


async def test_a_burst_of_presses_on_two_instances_begins_once(
    two: tuple[SqlStore, SqlStore],
) -> None:
    presses = [Presses(store) for store in two]
    results = await asyncio.gather(*(p.begin(PRESS) for _ in range(10) for p in presses))
    assert sum(results) == 1
    # Another button, or the same button pressed by someone else, is not held by it.
    other = Press(PressKind.UPSCALE, job_id=1, index=0, user_id=ALICE)
    assert await presses[1].begin(other)
    assert await presses[1].begin(Press(PressKind.AGAIN, job_id=1, index=0, user_id=2))


async def test_a_press_holds_its_button_until_its_job_is_final(
    two: tuple[SqlStore, SqlStore],
) -> None:
    first, second = two
    here, there = Presses(first), Presses(second)
    job = await first.create_job(new_job())
    assert await here.begin(PRESS)
    await here.made(PRESS, job.id)
    assert not await there.begin(PRESS)
    await second.mark_submitted(job.id, "task-1")
    assert not await there.begin(PRESS)
    await second.mark_failed(job.id, "X", "failed")
    assert await there.begin(PRESS)  # final: the next press orders
    assert not await here.begin(PRESS)  # and holds the button in turn


async def test_a_press_that_made_no_job_or_a_vanished_one_frees_its_button(
    two: tuple[SqlStore, SqlStore], stores: Stores,
) -> None:
    here, there = (Presses(store) for store in two)
    assert await here.begin(PRESS)
    await here.made(PRESS, None)  # refused (quota, ban): nothing ordered
    assert await stores.count_rows("presses") == 0
    assert await there.begin(PRESS)
    await there.made(PRESS, 999)  # a job the store does not have counts as final
    assert await here.begin(PRESS)


async def test_an_unmade_press_is_taken_over_after_the_patience(
    two: tuple[SqlStore, SqlStore], clock: Clock,
) -> None:
    here, there = (Presses(store) for store in two)
    assert await here.begin(PRESS)  # ... and its process dies before made()
    clock.advance(PRESS_PATIENCE.total_seconds() - 1)
    assert not await there.begin(PRESS)
    clock.advance(2)
    assert await there.begin(PRESS)
    # Taken over afresh: the button is held again from now.
    assert not await here.begin(PRESS)


async def test_old_presses_are_pruned(
    two: tuple[SqlStore, SqlStore], clock: Clock, stores: Stores,
) -> None:
    first, _ = two
    presses = Presses(first)
    job = await first.create_job(new_job())
    assert await presses.begin(PRESS)
    await presses.made(PRESS, job.id)
    clock.advance(3600)
    other = Press(PressKind.UPSCALE, job_id=1, index=0, user_id=ALICE)
    assert await presses.begin(other)
    assert await first.prune_presses(START + timedelta(seconds=1)) == 1
    assert await stores.rows("SELECT press_key FROM presses") == [(other.key,)]
    assert await presses.begin(PRESS)  # forgotten: even its running job no longer holds it


# --- albums ------------------------------------------------------------------------------------

WINDOW = 0.15


@pytest.fixture
async def real_two(stores: Stores) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database on the real clock (the collector waits in real time)."""
    first = await stores.open(default_limit=10, tz=SHANGHAI)
    second = await stores.open(default_limit=10, tz=SHANGHAI)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def part(update_id: int, caption: str = "") -> AlbumPart:
    return AlbumPart(update_id=update_id, message_id=update_id + 1000,
                     file_id=f"file-{update_id}", caption=caption)


async def arrive(
    collector: AlbumCollector, key: tuple[int, str], piece: AlbumPart, delay: float
) -> tuple[AlbumPart, ...] | None:
    await asyncio.sleep(delay)
    return await collector.gather(key, piece)


async def test_an_album_split_between_two_instances_is_gathered_once(
    real_two: tuple[SqlStore, SqlStore],
) -> None:
    collectors = [AlbumCollector(store, WINDOW) for store in real_two]
    pieces = [part(500 + i, "/colorize" if i == 0 else "") for i in range(6)]
    order = pieces[:]
    random.Random(7).shuffle(order)  # the updates reach the instances in any order
    calls = [
        arrive(collectors[n % 2], (1, "g"), piece, 0.02 * n) for n, piece in enumerate(order)
    ]
    results = await asyncio.gather(*calls)
    albums = [r for r in results if r is not None]
    assert albums == [tuple(pieces)]  # one album, every part once, in update order
    # The call of the smallest update id took it.
    assert results[order.index(pieces[0])] == tuple(pieces)


async def test_two_albums_at_once_do_not_mix(real_two: tuple[SqlStore, SqlStore]) -> None:
    collectors = [AlbumCollector(store, WINDOW) for store in real_two]
    keys = [(1, "g"), (1, "h"), (2, "g")]  # another group in the chat; the same id elsewhere
    expected = {key: tuple(part(100 * k + i) for i in range(3)) for k, key in enumerate(keys)}
    calls = [
        arrive(collectors[(n + i) % 2], key, piece, 0.01 * i)
        for n, key in enumerate(keys) for i, piece in enumerate(expected[key])
    ]
    results = [r for r in await asyncio.gather(*calls) if r is not None]
    assert sorted(results, key=lambda album: album[0].update_id) == list(expected.values())


async def test_a_part_sent_again_is_gathered_once(real_two: tuple[SqlStore, SqlStore]) -> None:
    here, there = (AlbumCollector(store, WINDOW) for store in real_two)
    results = await asyncio.gather(
        arrive(here, (1, "g"), part(10), 0), arrive(there, (1, "g"), part(11), 0.01),
        arrive(there, (1, "g"), part(10), 0.02),  # update 10 again, on the other instance
    )
    assert [r for r in results if r is not None] == [(part(10), part(11))]
    # Sent again after the album was taken: nothing happens a second time.
    assert await there.gather((1, "g"), part(11)) is None


async def test_a_part_after_its_album_was_taken_is_an_album_of_its_own(
    real_two: tuple[SqlStore, SqlStore], stores: Stores,
) -> None:
    here, there = (AlbumCollector(store, WINDOW) for store in real_two)
    first = await asyncio.gather(here.gather((1, "g"), part(10, "/colorize")),
                                 there.gather((1, "g"), part(11)))
    assert first == [(part(10, "/colorize"), part(11)), None]
    assert await there.gather((1, "g"), part(12)) == (part(12),)
    assert await stores.count_rows("album_parts") == 3


async def test_old_album_parts_are_pruned(
    real_two: tuple[SqlStore, SqlStore], stores: Stores,
) -> None:
    store, _ = real_two
    await store.add_album_part(1, "g", part(10))
    await store.add_album_part(1, "h", part(20))
    assert await store.prune_album_parts(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await store.prune_album_parts(datetime.now(UTC) + timedelta(seconds=1)) == 2
    assert await stores.count_rows("album_parts") == 0
