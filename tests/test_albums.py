"""Albums: a command in an album's caption runs on every image, reserved at once, sent back as one
album. Real Application against the fake Bot API and the DashScope emulator; the store directly
for the all-or-nothing reservation and the update-id replay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.albums import AlbumCollector, AlbumPart
from bot.bailian import BailianClient
from bot.errors import QuotaExceededError
from bot.jobs import Accepted, AlbumImage, CancelOutcome, JobService, Requester
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from bot.texts import Lang
from storage import NewJob, SqliteStore
from storage.models import JobState
from tests.fakes.messenger import FakeMessenger
from tests.harness import (
    ADMIN_ID,
    API_KEY,
    Harness,
    make_image,
    serving,
    wait_until,
)
from tests.stores import Stores
from tests.test_jobs_stages import FAST_POLL, FAST_RETRY, ManualClock, parse

pytestmark = pytest.mark.slow


@pytest.fixture
async def album_harness(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3",
                       ALBUM_WINDOW_SECONDS="0.2") as harness:
        yield harness


def decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def photos(count: int) -> list[bytes]:
    return [make_image(320 + 16 * i, 240) for i in range(count)]


async def test_an_album_captioned_with_a_command_comes_back_as_one_album(
    album_harness: Harness,
) -> None:
    harness, tg = album_harness, album_harness.telegram
    alice = harness.user(1)
    parts = tg.send_album(alice, tg.private_chat(alice), photos(3), "/colorize")
    status = await harness.reply_to(parts[0])
    assert "Queued" in status.params["text"]
    album = await harness.reply_to(parts[0], "sendMediaGroup")
    media = decoded(album.params["media"])
    assert len(media) == 3
    assert "Colorize" in media[0]["caption"] and "2 images left" in media[0]["caption"]
    await harness.settled()
    buttons = await tg.wait_for_call(
        "sendMessage", lambda call: "up:" in json.dumps(decoded(call.params.get("reply_markup"))))
    keyboard = decoded(buttons.params["reply_markup"])["inline_keyboard"]
    assert [len(row) for row in keyboard] == [3]  # "Upscale" per image; no "Again"
    assert len(harness.emulator.requests_to("submit")) == 3
    quota = await harness.services.store.quota_status(1)
    assert (quota.used, quota.reserved) == (3, 0)
    # One status line for the album, and nothing sent per image.
    assert len(tg.calls_to("sendPhoto")) == 0
    queued = [c for c in tg.calls_to("sendMessage") if "Queued" in c.params["text"]]
    assert len(queued) == 1


async def test_an_image_of_an_album_that_fails_leaves_the_rest_to_arrive_together(
    album_harness: Harness,
) -> None:
    harness, tg = album_harness, album_harness.telegram
    alice = harness.user(1)
    harness.emulator.script_next_task("failed")  # the first task DashScope accepts
    parts = tg.send_album(alice, tg.private_chat(alice), photos(3), "/colorize")
    album = await harness.reply_to(parts[0], "sendMediaGroup")
    assert len(decoded(album.params["media"])) == 2
    await harness.settled()
    failures = [c for c in tg.calls_to("sendMessage") if c.params["text"].startswith("❌")]
    assert len(failures) == 1
    quota = await harness.services.store.quota_status(1)
    assert (quota.used, quota.reserved) == (2, 0)


async def test_an_album_over_the_quota_is_refused_whole(album_harness: Harness) -> None:
    harness, tg = album_harness, album_harness.telegram
    alice = harness.user(1)  # a quota of 5
    parts = tg.send_album(alice, tg.private_chat(alice), photos(6), "/colorize")
    refusal = await harness.reply_to(parts[0])
    assert "6 images needed, 5 left" in refusal.params["text"]
    await harness.settled()
    assert not harness.emulator.requests_to("submit")
    quota = await harness.services.store.quota_status(1)
    assert (quota.used, quota.reserved) == (0, 0)
    assert len([c for c in tg.calls_to("sendMessage") if c.params["chat_id"] == 1]) == 1


async def test_an_album_of_eleven_runs_the_first_ten_and_says_so(
    album_harness: Harness,
) -> None:
    harness, tg = album_harness, album_harness.telegram
    admin = harness.user(ADMIN_ID, "Admin")
    parts = tg.send_album(admin, tg.private_chat(admin), photos(11), "/colorize")
    notice = await harness.reply_to(parts[0])
    assert "first 10" in notice.params["text"]
    album = await harness.reply_to(parts[0], "sendMediaGroup", timeout=20)
    assert len(decoded(album.params["media"])) == 10
    await harness.settled()
    assert len(harness.emulator.requests_to("submit")) == 10


async def test_an_album_without_a_command_gets_one_hint(album_harness: Harness) -> None:
    harness, tg = album_harness, album_harness.telegram
    alice = harness.user(1)
    parts = tg.send_album(alice, tg.private_chat(alice), photos(3))
    hint = await harness.reply_to(parts[0])
    assert "caption" in hint.params["text"]
    assert "reply_markup" not in hint.params  # no actions keyboard per image
    assert len([c for c in tg.calls_to("sendMessage") if c.params["chat_id"] == 1]) == 1
    assert not await harness.services.store.resumable_jobs()


async def test_a_command_sent_alone_runs_on_the_next_album(album_harness: Harness) -> None:
    harness, tg = album_harness, album_harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    ask = tg.send_text(alice, chat, "/colorize")
    await harness.reply_to(ask)
    parts = tg.send_album(alice, chat, photos(2))
    album = await harness.reply_to(parts[0], "sendMediaGroup")
    assert len(decoded(album.params["media"])) == 2


# --- the collector -----------------------------------------------------------------------------


async def test_the_collector_hands_the_album_to_the_call_of_its_first_update_only(
    stores: Stores,
) -> None:
    async with await stores.open(default_limit=3, tz=UTC) as store:
        collector = AlbumCollector(store, window=0.05)
        parts = [AlbumPart(update_id=10 + i, message_id=i, file_id=f"f{i}", caption="")
                 for i in (2, 0, 1)]
        results = await asyncio.gather(*(
            collector.gather((1, "g"), part) for part in parts
        ))
    assert results[0] is None and results[2] is None
    assert results[1] is not None
    assert [p.update_id for p in results[1]] == [10, 11, 12]


# --- the store ---------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with await SqliteStore.open(
        tmp_path / "store.sqlite3", default_limit=3, tz=UTC
    ) as opened:
        await opened.touch_user(1, "alice", "Alice", "en")
        yield opened


def album(update_ids: list[int]) -> list[NewJob]:
    return [
        NewJob(user_id=1, chat_id=1, request_message_id=7, command="colorize",
               model="wanx2.1-imageedit", function="colorization", spec_json="{}",
               input_file_id=f"file-{update_id}", images_requested=1, update_id=update_id)
        for update_id in update_ids
    ]


async def test_an_albums_jobs_are_created_together_and_replayed_together(
    store: SqliteStore,
) -> None:
    created = await store.create_album_jobs(album([100, 101, 102]))
    assert not any(c.replayed for c in created)
    album_id = created[0].job.id
    assert {c.job.album_id for c in created} == {album_id}
    assert [j.id for j in await store.album_jobs(album_id)] == [c.job.id for c in created]
    assert (await store.quota_status(1)).reserved == 3
    # Telegram sends the album's updates again: the same jobs, nothing reserved.
    again = await store.create_album_jobs(album([100, 101, 102]))
    assert all(c.replayed for c in again)
    assert [c.job.id for c in again] == [c.job.id for c in created]
    assert (await store.quota_status(1)).reserved == 3


async def test_an_album_that_does_not_fit_reserves_nothing(store: SqliteStore) -> None:
    with pytest.raises(QuotaExceededError):
        await store.create_album_jobs(album([200, 201, 202, 203]))
    assert (await store.quota_status(1)).reserved == 0
    assert not [j for j in await store.resumable_jobs() if j.state is JobState.QUEUED]


# --- a restart in the middle of an album ------------------------------------------------------


async def test_an_album_half_done_at_a_restart_still_comes_back_as_one_album(
    tmp_path: Path, emulator: DashScopeEmulator,
) -> None:
    messenger = FakeMessenger()
    for index in range(3):
        messenger.add_file(f"photo-{index}", make_image(400 + 16 * index, 300))
    who = Requester(user_id=1, chat_id=1, message_id=5, lang=Lang.EN, is_admin=False,
                    update_id=700)
    images = [AlbumImage(f"photo-{index}", 700 + index) for index in range(3)]
    async with (
        await SqliteStore.open(tmp_path / "a.sqlite3", default_limit=5, tz=UTC) as store,
        aiohttp.ClientSession() as session,
    ):
        await store.touch_user(1, "alice", "Alice", "en")
        client = BailianClient(session, api_root=emulator.base_url + "/api/v1", api_key=API_KEY,
                               qps=50, max_tasks=4, retry=FAST_RETRY, poll_policy=FAST_POLL)

        def service() -> JobService:
            return JobService(store=store, client=client, messenger=messenger,
                              clock=ManualClock())

        async def delivered() -> bool:
            jobs = await store.album_jobs(album_id)
            return all(job.state is JobState.DELIVERED for job in jobs)

        before = service()
        accepted = await before.accept_album(who, parse("/colorize"), images)
        assert isinstance(accepted, Accepted)
        album_id = accepted.job.id
        # The first image is done when the bot stops; the others have not started.
        await before.workers.run(accepted.job)
        await before.stop()
        states = [job.state for job in await store.album_jobs(album_id)]
        assert states == [JobState.SUCCEEDED, JobState.QUEUED, JobState.QUEUED]
        assert not messenger.deliveries
        after = service()
        await after.start()
        try:
            await wait_until(delivered, timeout=10)
        finally:
            await after.stop()
            await client.close()
        [delivery] = messenger.deliveries
        assert len(delivery.images) == 3 and delivery.reply_to == 5
        assert (await store.quota_status(1)).used == 3


async def test_the_cross_on_an_albums_status_line_cancels_the_whole_album(
    tmp_path: Path, emulator: DashScopeEmulator,
) -> None:
    messenger = FakeMessenger()
    for index in range(3):
        messenger.add_file(f"photo-{index}", make_image(400, 300))
    who = Requester(user_id=1, chat_id=1, message_id=5, lang=Lang.EN, is_admin=False)
    images = [AlbumImage(f"photo-{index}", None) for index in range(3)]
    async with (
        await SqliteStore.open(tmp_path / "c.sqlite3", default_limit=5, tz=UTC) as store,
        aiohttp.ClientSession() as session,
    ):
        await store.touch_user(1, "alice", "Alice", "en")
        client = BailianClient(session, api_root=emulator.base_url + "/api/v1", api_key=API_KEY,
                               qps=50, max_tasks=4, retry=FAST_RETRY, poll_policy=FAST_POLL)
        jobs = JobService(store=store, client=client, messenger=messenger, clock=ManualClock())
        try:
            accepted = await jobs.accept_album(who, parse("/colorize"), images)
            assert isinstance(accepted, Accepted)
            assert (await store.quota_status(1)).reserved == 3
            assert await jobs.cancel(accepted.job) is CancelOutcome.CANCELED
            states = {job.state for job in await store.album_jobs(accepted.job.id)}
            assert states == {JobState.CANCELED}
            status = await store.quota_status(1)
            assert (status.used, status.reserved) == (0, 0)
            assert await jobs.cancel(accepted.job) is CancelOutcome.GONE
        finally:
            await jobs.stop()
            await client.close()
