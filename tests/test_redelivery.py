"""An update Telegram sends again (same update_id) is handled once in its effects.

Telegram sends an update again when the bot did not confirm its offset: the process died between
handling it and the next getUpdates, or a webhook call was retried. Two layers answer it: the
store keys every effect (a job, an admin change) by the update id in the transaction of the
effect itself, and updates whose handling completed are recorded, so a copy of one is dropped
before any handler runs (no second reply either). The tests below redeliver an update after it
was handled, after its record was lost (as if the first handling died just before writing it),
and while the first handling is still under way.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.errors import QuotaExceededError
from bot.offline.bot_api import ApiCall, FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from storage import NewJob, SqliteStore
from storage.models import UPDATE_MEMORY
from tests.harness import (
    ADMIN_ID,
    API_KEY,
    Harness,
    bot_process,
    make_image,
    make_mask,
    replied_to,
    subprocess_env,
    wait_until,
)
from tests.stores import Stores
from tests.test_crash_matrix import jobs, quota_of, state_of

# --- the store ---------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def new_job(user_id: int = 1, *, update_id: int | None, n: int = 1) -> NewJob:
    return NewJob(
        user_id=user_id, chat_id=user_id, request_message_id=7, command="colorize",
        model="wanx2.1-imageedit", function="colorization", spec_json="{}",
        input_file_id="file-in", images_requested=n, update_id=update_id,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
async def store(stores: Stores, clock: Clock) -> AsyncIterator[SqliteStore]:
    async with await stores.open(default_limit=2, tz=UTC, clock=clock) as opened:
        for user_id in (1, 2):
            await opened.touch_user(user_id, f"user{user_id}", f"User {user_id}", "en")
        yield opened


async def test_a_job_for_the_same_update_is_a_replay_that_reserves_nothing(
    store: SqliteStore,
) -> None:
    first = await store.create_or_replay_job(new_job(update_id=500))
    again = await store.create_or_replay_job(new_job(update_id=500))
    assert not first.replayed and again.replayed
    assert again.job == first.job and first.job.update_id == 500
    assert (await store.create_job(new_job(update_id=500))).id == first.job.id
    status = await store.quota_status(1)
    assert (status.used, status.reserved) == (0, 1)
    # Jobs without an update id are never replays of each other.
    assert (await store.create_or_replay_job(new_job(update_id=None))).replayed is False


async def test_the_replay_is_found_before_the_quota_is_checked(store: SqliteStore) -> None:
    await store.create_job(new_job(update_id=501, n=2))  # the whole quota of 2
    replay = await store.create_or_replay_job(new_job(update_id=501, n=2))
    assert replay.replayed
    with pytest.raises(QuotaExceededError):
        await store.create_job(new_job(update_id=502))
    assert (await store.quota_status(1)).reserved == 2


async def test_two_copies_at_once_in_two_stores_make_one_job(
    store: SqliteStore, stores: Stores, clock: Clock
) -> None:
    async with await stores.open(default_limit=2, tz=UTC, clock=clock) as other:
        results = await asyncio.gather(
            *(target.create_or_replay_job(new_job(update_id=503))
              for target in (store, other, store, other))
        )
    assert sorted(result.replayed for result in results) == [False, True, True, True]
    assert len({result.job.id for result in results}) == 1
    assert (await store.quota_status(1)).reserved == 1


async def test_an_update_id_older_than_the_memory_is_another_update(
    store: SqliteStore, clock: Clock
) -> None:
    old = await store.create_job(new_job(update_id=504))
    await store.mark_canceled(old.id)
    clock.now += UPDATE_MEMORY + timedelta(minutes=1)
    # After a week without updates Telegram may pick an id it used before.
    fresh = await store.create_or_replay_job(new_job(update_id=504))
    assert not fresh.replayed and fresh.job.id != old.id
    assert (await store.get_job(old.id)).update_id is None
    assert fresh.job.update_id == 504


async def test_admin_changes_for_the_same_update_apply_once(store: SqliteStore) -> None:
    granted = await store.grant_extra(9, 1, 3, update_id=600)
    replayed = await store.grant_extra(9, 1, 3, update_id=600)
    assert granted.granted == replayed.granted == 3
    await store.set_monthly_limit(9, 1, 7, update_id=601)
    await store.set_monthly_limit(9, 1, 4, update_id=602)
    await store.set_monthly_limit(9, 1, 7, update_id=601)  # sent again after a later change
    assert (await store.quota_status(1)).limit == 4
    await store.set_banned(9, 2, True, update_id=603)
    await store.set_banned(9, 2, False, update_id=604)
    await store.set_banned(9, 2, True, update_id=603)
    user = await store.get_user(2)
    assert user is not None and not user.banned
    log = await store.audit_log()
    assert [(entry.action, entry.update_id) for entry in log] == [
        ("unban", 604), ("ban", 603), ("set_limit", 602), ("set_limit", 601), ("grant", 600),
    ]
    # Without an update id every call is its own change.
    await store.grant_extra(9, 1, 1)
    await store.grant_extra(9, 1, 1)
    assert (await store.quota_status(1)).granted == 5


async def test_handled_updates_are_remembered_48_hours_then_forgotten(
    store: SqliteStore, clock: Clock
) -> None:
    assert not await store.update_handled(700)
    await store.record_update_handled(700)
    await store.record_update_handled(700)  # a second record changes nothing
    job = await store.create_job(new_job(update_id=701))
    await store.grant_extra(9, 1, 1, update_id=702)
    assert await store.update_handled(700)
    clock.now += UPDATE_MEMORY - timedelta(minutes=1)
    await store.record_update_handled(703)
    assert await store.forget_old_updates() == 0
    assert await store.update_handled(700)
    clock.now += timedelta(minutes=2)
    assert not await store.update_handled(700)  # too old to be the same update
    assert await store.forget_old_updates() == 1
    assert await store.update_handled(703)
    assert (await store.get_job(job.id)).update_id is None
    assert [entry.update_id for entry in await store.audit_log()] == [None]
    # The ids are free again: a new update with one of them is handled as new.
    assert not (await store.create_or_replay_job(new_job(update_id=701))).replayed


async def test_update_ids_are_unique_where_given(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "u.sqlite3", default_limit=1, tz=UTC):
        pass
    with closing(sqlite3.connect(tmp_path / "u.sqlite3")) as db:
        db.execute("INSERT INTO audit (admin_id, target_user_id, action, created_at)"
                   " VALUES (1, 2, 'ban', 'x'), (1, 2, 'unban', 'y')")  # NULLs: no conflict
        db.execute("INSERT INTO audit (admin_id, target_user_id, action, created_at, update_id)"
                   " VALUES (1, 2, 'ban', 'x', 5)")
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO audit (admin_id, target_user_id, action, created_at,"
                       " update_id) VALUES (1, 2, 'unban', 'y', 5)")


# --- end to end: the real Application against the fakes --------------------------------------

slow = pytest.mark.slow
AFTER_HANDLED = pytest.param(False, id="after-it-was-handled")
BEFORE_RECORDED = pytest.param(True, id="before-it-was-recorded")


def database(tmp_path: Path) -> Path:
    return tmp_path / "bot.sqlite3"  # the harness fixture's database


def forget_handled(path: Path, update_id: int) -> None:
    """As if the first handling had died just before it recorded the update as handled."""
    with closing(sqlite3.connect(path, timeout=10)) as db, db:
        db.execute("DELETE FROM handled_updates WHERE update_id = ?", (update_id,))


def handled(path: Path, update_id: int) -> bool:
    with closing(sqlite3.connect(path, timeout=10)) as db:
        try:
            row = db.execute("SELECT 1 FROM handled_updates WHERE update_id = ?",
                             (update_id,)).fetchone()
        except sqlite3.OperationalError:  # the schema is not created yet
            return False
    return row is not None


def job_count(path: Path) -> int:
    with closing(sqlite3.connect(path, timeout=10)) as db:
        return int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])


def outgoing(telegram: FakeTelegram) -> list[ApiCall]:
    """Every call the bot made other than polling."""
    return [call for call in telegram.calls if call.method != "getUpdates"]


def status_lines(telegram: FakeTelegram, request: dict[str, Any]) -> list[ApiCall]:
    return [call for call in telegram.calls_to("sendMessage")
            if replied_to(call) == request["message_id"] and "Queued" in call.params["text"]]


def dropped(caplog: pytest.LogCaptureFixture, update_id: int, how: str) -> bool:
    return any(f"update {update_id} was delivered again {how}" in record.getMessage()
               for record in caplog.records)


async def finished(harness: Harness, jobs: int) -> None:
    """Every job final and its status line deleted: nothing more will be sent."""
    await harness.settled()
    await wait_until(lambda: len(harness.telegram.calls_to("deleteMessage")) >= jobs)


async def redeliver(
    harness: Harness, caplog: pytest.LogCaptureFixture, path: Path, item: dict[str, Any], *,
    interrupted: bool,
) -> None:
    """Send the update that carried ``item`` again, once its handling is over, and wait until
    the copy was handled: dropped as handled, or (``interrupted``: its record deleted first)
    handled again and recorded."""
    tg = harness.telegram
    update_id = tg.update_id_of(item)
    await wait_until(lambda: handled(path, update_id))
    await harness.settled()
    if interrupted:
        forget_handled(path, update_id)
    tg.redeliver(update_id)
    if interrupted:
        await wait_until(lambda: handled(path, update_id))
    else:
        await wait_until(lambda: dropped(caplog, update_id, "after it was handled"))
    await wait_until(lambda: tg.pending_update_count == 0)
    await harness.settled()


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


@slow
@pytest.mark.parametrize("interrupted", [AFTER_HANDLED, BEFORE_RECORDED])
async def test_redelivered_photo_request_makes_one_job_and_one_charge(
    harness: Harness, caplog: pytest.LogCaptureFixture, tmp_path: Path, interrupted: bool,
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
    await harness.reply_to(request, "sendPhoto")
    await finished(harness, 1)
    before = len(outgoing(tg))
    await redeliver(harness, caplog, database(tmp_path), request, interrupted=interrupted)
    assert job_count(database(tmp_path)) == 1
    assert len(harness.emulator.requests_to("submit")) == 1
    assert len(harness.emulator.tasks) == 1
    assert len(status_lines(tg, request)) == 1
    assert len(tg.calls_to("sendPhoto")) == 1
    status = await harness.services.store.quota_status(1)
    assert (status.used, status.reserved) == (1, 0)
    if interrupted:
        update_id = tg.update_id_of(request)
        assert any(f"update {update_id} was delivered again; nothing new done"
                   in record.getMessage() for record in caplog.records)
        # The copy downloaded the photo again before the store told it apart; nothing else.
        assert {call.method for call in outgoing(tg)[before:]} <= {"getFile"}
    else:
        assert len(outgoing(tg)) == before  # not even a second reply
    assert not tg.internal_errors


@slow
async def test_photo_request_redelivered_while_the_first_still_runs_makes_one_job(
    harness: Harness, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    tg.slow_next("getFile", 1.0)  # the first copy is downloading the photo
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
    update_id = tg.update_id_of(request)
    await tg.wait_for_call("getFile")
    tg.redeliver(update_id)
    await wait_until(lambda: dropped(caplog, update_id, "while being handled"))
    await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    await wait_until(lambda: handled(database(tmp_path), update_id))
    assert job_count(database(tmp_path)) == 1
    assert len(harness.emulator.tasks) == 1
    assert len(status_lines(tg, request)) == 1
    status = await harness.services.store.quota_status(1)
    assert (status.used, status.reserved) == (1, 0)


@slow
@pytest.mark.parametrize("interrupted", [AFTER_HANDLED, BEFORE_RECORDED])
async def test_redelivered_admin_commands_change_things_once(
    harness: Harness, caplog: pytest.LogCaptureFixture, tmp_path: Path, interrupted: bool,
) -> None:
    tg = harness.telegram
    admin = harness.user(ADMIN_ID, "Root")
    alice = harness.user(1, "Alice", username="alice")
    await harness.reply_to(tg.send_text(alice, tg.private_chat(alice), "/quota"))
    chat = tg.private_chat(admin)
    store = harness.services.store

    async def admin_says(text: str) -> dict[str, Any]:
        message = tg.send_text(admin, chat, text)
        await harness.reply_to(message)
        return message

    grant = await admin_says("/grant @alice 2")
    await redeliver(harness, caplog, database(tmp_path), grant, interrupted=interrupted)
    status = await store.quota_status(1)
    assert (status.granted, status.remaining) == (2, 7)
    replies = [c for c in tg.calls_to("sendMessage")
               if replied_to(c) == grant["message_id"] and int(c.params["chat_id"]) == ADMIN_ID]
    assert len(replies) == (2 if interrupted else 1)
    assert all("Granted" in reply.params["text"] for reply in replies)

    # A copy of an older command must not undo a newer one.
    limit = await admin_says("/setquota @alice 9")
    await admin_says("/setquota @alice 3")
    await redeliver(harness, caplog, database(tmp_path), limit, interrupted=interrupted)
    assert (await store.quota_status(1)).limit == 3

    ban = await admin_says("/ban @alice")
    await admin_says("/unban @alice")
    await redeliver(harness, caplog, database(tmp_path), ban, interrupted=interrupted)
    user = await store.get_user(1)
    assert user is not None and not user.banned
    assert [entry.action for entry in await store.audit_log()] == [
        "unban", "ban", "set_limit", "set_limit", "grant",
    ]


@slow
@pytest.mark.parametrize("interrupted", [AFTER_HANDLED, BEFORE_RECORDED])
async def test_redelivered_again_press_makes_one_new_job(
    harness: Harness, caplog: pytest.LogCaptureFixture, tmp_path: Path, interrupted: bool,
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(), "/colorize")
    sent = await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    result = tg.bot_message(chat["id"], int(sent.result["message_id"]))
    again = next(button["callback_data"] for row in result["reply_markup"]["inline_keyboard"]
                 for button in row if button["callback_data"].startswith("again:"))
    press = tg.press_button(alice, result, again)
    await wait_until(lambda: len(tg.calls_to("sendPhoto")) == 2)
    await redeliver(harness, caplog, database(tmp_path), press, interrupted=interrupted)
    assert job_count(database(tmp_path)) == 2
    assert len(harness.emulator.tasks) == 2
    assert len(tg.calls_to("sendPhoto")) == 2
    assert len(status_lines(tg, request)) == 2
    status = await harness.services.store.quota_status(1)
    assert (status.used, status.reserved) == (2, 0)
    # The copy's answer to the press (if it got that far) failed quietly: already answered.
    assert not [m for m in tg.messages_in(chat["id"]) if "❌" in m.get("text", "")]


@slow
@pytest.mark.parametrize("interrupted", [AFTER_HANDLED, BEFORE_RECORDED])
async def test_redelivered_pick_press_runs_once(
    harness: Harness, caplog: pytest.LogCaptureFixture, tmp_path: Path, interrupted: bool,
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    photo = tg.send_photo(alice, chat, make_image())
    offer = await harness.reply_to(photo)
    keyboard = tg.bot_message(chat["id"], int(offer.result["message_id"]))
    press = tg.press_button(alice, keyboard, "pick:colorize")
    await harness.reply_to(photo, "sendPhoto")
    await redeliver(harness, caplog, database(tmp_path), press, interrupted=interrupted)
    assert job_count(database(tmp_path)) == 1
    assert len(harness.emulator.tasks) == 1
    assert len(tg.calls_to("sendPhoto")) == 1
    assert (await harness.services.store.quota_status(1)).used == 1
    assert not [m for m in tg.messages_in(chat["id"]) if "❌" in m.get("text", "")]


@slow
@pytest.mark.parametrize("interrupted", [AFTER_HANDLED, BEFORE_RECORDED])
async def test_redelivered_mask_runs_once(
    harness: Harness, caplog: pytest.LogCaptureFixture, tmp_path: Path, interrupted: bool,
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    group = tg.group_chat(-100700)
    request = tg.send_photo(alice, group, make_image(640, 480), "/erase@BailianTestBot")
    ask = await harness.reply_to(request)
    ask_message = tg.bot_message(group["id"], int(ask.result["message_id"]))
    mask = tg.send_photo(alice, group, make_mask(640, 480), reply_to=ask_message)
    await harness.reply_to(request, "sendPhoto")
    await finished(harness, 1)
    before = len(outgoing(tg))
    await redeliver(harness, caplog, database(tmp_path), mask, interrupted=interrupted)
    assert job_count(database(tmp_path)) == 1
    assert len(harness.emulator.tasks) == 1
    assert (await harness.services.store.quota_status(1)).used == 1
    assert len(outgoing(tg)) == before  # the wait is over: in a group the copy is ignored


# --- a real crash: the process killed with the job stored, the update not yet confirmed --------

HOLD = 30.0  # far longer than the test needs to kill the bot
START_TIMEOUT = 20.0
SETTLE_WATCH = 0.5
USER = 1


@slow
async def test_killed_after_the_job_was_stored_the_update_sent_again_runs_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    async with FakeTelegram() as telegram:
        emulator = DashScopeEmulator(api_key=API_KEY, latency=(0.05, 0.05), seed=5)
        await emulator.start()
        try:
            env = subprocess_env(telegram, emulator, path)
            # The "queued" status line is posted but its answer held: the job is stored and the
            # handler never finishes, so the update is not recorded as handled.
            telegram.slow_next("sendMessage", HOLD)
            alice = telegram.user(USER, "Alice")
            request = telegram.send_photo(alice, telegram.private_chat(alice), make_image(),
                                          "/colorize")
            update_id = telegram.update_id_of(request)
            async with bot_process(env, log) as first:
                await wait_until(
                    lambda: bool(telegram.calls_to("sendMessage")) and state_of(path) == "queued",
                    START_TIMEOUT,
                )
                first.send_signal(signal.SIGKILL)
                await first.wait()
            assert not handled(path, update_id)
            # The bot died before its next getUpdates confirmed the offset: Telegram sends the
            # update again (the fake has seen the offset, so it is told to).
            telegram.redeliver(update_id)
            async with bot_process(env, log):
                await wait_until(lambda: [s for s, _ in jobs(path)] == ["delivered"],
                                 START_TIMEOUT)
                await wait_until(lambda: handled(path, update_id), START_TIMEOUT)
                await asyncio.sleep(SETTLE_WATCH)
            log_text = log.read_text()
            assert jobs(path) == [("delivered", 1)], log_text
            assert await quota_of(path, USER) == (1, 0)
            assert len(emulator.tasks) == 1
            assert len(telegram.calls_to("sendPhoto")) == 1
            assert len(status_lines(telegram, request)) == 1  # the first copy's, none after
            assert f"update {update_id} was delivered again; nothing new done" in log_text
            assert "Traceback" not in log_text
        finally:
            await emulator.close()
