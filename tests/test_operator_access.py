"""Who may use the bot, what it may spend, and what the admins hear about (issue 12, part B).

The allow-lists and the refusal memory are plain logic, tested directly; the spend cap is tested
on the store (one transaction with the reservation, also for two connections at once) and end to
end; the alerts on :class:`bot.alerts.AdminAlerts` and end to end. End-to-end tests run the real
Application against the fake Bot API and the DashScope emulator.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from telegram import Chat, Message, User

from bot.access import AccessPolicy, RefusalMemory
from bot.alerts import AdminAlerts, package_version
from bot.commands import parse_command
from bot.config import load_settings
from bot.errors import BudgetExceededError, ConfigError, JobNotFoundError
from bot.jobs import JobSpec
from bot.offline.bot_api import ApiCall, FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from bot.texts import Lang, render_error, text
from handlers.access import addressed_to_bot
from storage import JobState, NewJob, SqliteStore
from storage.models import next_month_start
from storage.pricing import check_budget
from tests.fakes.messenger import FakeMessenger
from tests.harness import (
    ADMIN_ID,
    Harness,
    make_image,
    serving,
    wait_until,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
QWEN = "qwen-image-edit"  # ¥0.3 an image
WANX = "wanx2.1-imageedit"  # ¥0.14 an image
EN, ZH = Lang.EN, Lang.ZH
BOT = "BailianTestBot"


# --- the allow-lists and the refusal memory (plain logic) ------------------------------------


@pytest.mark.parametrize(
    ("users", "chats", "user_id", "chat_id", "allowed"),
    [
        ((), (), 5, 5, True),  # no lists: everyone, as before
        ((), (), None, None, True),
        ((1,), (), 1, 1, True),  # a listed user, privately
        ((1,), (), 1, -100, True),  # ... and in any group
        ((1,), (), 2, 2, False),
        ((1,), (), 2, -100, False),
        ((), (-100,), 2, -100, True),  # any member of a listed group
        ((), (-100,), 2, 2, False),  # ... but not privately
        ((), (-100,), 2, -200, False),
        ((1,), (), 9, 9, True),  # an admin, listed nowhere
        ((1,), (), 9, -300, True),
        ((1,), (), None, -100, False),  # no sender (a channel post)
        ((), (-100,), None, -100, True),
    ],
)
def test_the_policy_allows_listed_users_listed_chats_and_admins(
    users: tuple[int, ...], chats: tuple[int, ...], user_id: int | None, chat_id: int | None,
    allowed: bool,
) -> None:
    policy = AccessPolicy(frozenset(users), frozenset(chats), admin_user_ids=frozenset({9}))
    assert policy.allows(user_id, chat_id) is allowed


def test_the_policy_comes_from_the_settings() -> None:
    settings = load_settings({
        "TELEGRAM_BOT_TOKEN": "1:t", "DASHSCOPE_API_KEY": "k", "ADMIN_USER_IDS": "9",
        "ALLOWED_USER_IDS": " 1, 2 ,", "ALLOWED_CHAT_IDS": "-1001234567890,-42",
    }, dotenv=None)
    policy = AccessPolicy.from_settings(settings)
    assert policy == AccessPolicy(frozenset({1, 2}), frozenset({-1001234567890, -42}),
                                  frozenset({9}))
    assert policy.restricted


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_refused_person_is_told_once_an_hour() -> None:
    clock = Ticks()
    memory = RefusalMemory(clock=clock)
    assert memory.should_tell(1)
    clock.now = 3599.0
    assert not memory.should_tell(1)
    assert memory.should_tell(2)  # per person
    clock.now = 3600.0
    assert memory.should_tell(1)
    assert not memory.should_tell(1)


def test_the_refusal_memory_is_bounded_and_forgets_the_oldest() -> None:
    clock = Ticks()
    memory = RefusalMemory(clock=clock, max_remembered=3)
    for user_id in (1, 2, 3):
        clock.now += 1
        assert memory.should_tell(user_id)
    clock.now += 1
    assert memory.should_tell(4)  # full of recent ones: the oldest (1) is forgotten
    assert not memory.should_tell(2) and not memory.should_tell(3)
    assert not memory.should_tell(4)
    assert memory.should_tell(1)


BOT_ID = 123456  # FakeTelegram's bot


def group_message(content: str, *, replying_to: int | None = None) -> Message:
    chat = Chat(-1001, Chat.SUPERGROUP)
    replied = None if replying_to is None else Message(
        1, datetime.now(UTC), chat, from_user=User(replying_to, "Someone", is_bot=False)
    )
    return Message(2, datetime.now(UTC), chat, from_user=User(5, "Bob", is_bot=False),
                   text=content, reply_to_message=replied)


@pytest.mark.parametrize(
    ("content", "replying_to", "addressed"),
    [
        ("/colorize", None, True),  # ours, for no bot in particular
        (f"/colorize@{BOT}", None, True),
        ("/colorize@OtherBot", None, False),
        ("/start@OtherBot", None, False),
        ("/foo", None, False),  # not ours, and naming nobody
        (f"/foo@{BOT}", None, True),
        (f"@{BOT.lower()} make it pink", 7, True),  # a mention
        ("hello everyone", None, False),
        ("make it pink", BOT_ID, True),  # a reply to the bot
        ("make it pink", 7, False),  # a reply to someone else
    ],
)
def test_what_in_a_group_is_addressed_to_the_bot(
    content: str, replying_to: int | None, addressed: bool
) -> None:
    message = group_message(content, replying_to=replying_to)
    assert addressed_to_bot(message, BOT, BOT_ID) is addressed


# --- settings ----------------------------------------------------------------------------------


BASE_ENV = {"TELEGRAM_BOT_TOKEN": "1:t", "DASHSCOPE_API_KEY": "k"}


def test_the_new_settings_default_to_no_lists_and_no_cap() -> None:
    settings = load_settings(BASE_ENV, dotenv=None)
    assert settings.allowed_user_ids == settings.allowed_chat_ids == frozenset()
    assert settings.monthly_budget_yuan is None
    assert load_settings(BASE_ENV | {"MONTHLY_BUDGET_YUAN": "12.5"},
                         dotenv=None).monthly_budget_yuan == Decimal("12.5")
    assert load_settings(BASE_ENV | {"MONTHLY_BUDGET_YUAN": "0"},
                         dotenv=None).monthly_budget_yuan == Decimal(0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALLOWED_USER_IDS", "1,alice"),
        ("ALLOWED_CHAT_IDS", "-100x"),
        ("MONTHLY_BUDGET_YUAN", "fifty"),
        ("MONTHLY_BUDGET_YUAN", "-1"),
        ("MONTHLY_BUDGET_YUAN", "NaN"),
        ("MONTHLY_BUDGET_YUAN", "Infinity"),
    ],
)
def test_bad_values_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(BASE_ENV | {name: value}, dotenv=None)
    assert raised.value.variable == name
    assert str(raised.value).startswith(f"{name}: invalid value")


# --- the spend cap on the store ------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def spec_of(command: str) -> str:
    parsed = parse_command(command, BOT)
    assert parsed is not None
    return JobSpec(parsed, EN).to_json()


def new_job(user_id: int, n: int = 1, *, model: str = WANX, unlimited: bool = False,
            update_id: int | None = None, input_file_id: str = "file-in") -> NewJob:
    return NewJob(
        user_id=user_id, chat_id=user_id, request_message_id=7, command="colorize", model=model,
        function=None if model == QWEN else "colorization",
        spec_json=spec_of("/edit x" if model == QWEN else f"/colorize n={n}"),
        input_file_id=input_file_id, images_requested=n, unlimited=unlimited,
        update_id=update_id,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[SqliteStore]:
    async with await SqliteStore.open(
        tmp_path / "cap.sqlite3", default_limit=10, tz=SHANGHAI, clock=clock
    ) as opened:
        for user_id in (1, 2, 3):
            await opened.touch_user(user_id, None, f"User {user_id}", "en")
        yield opened


async def test_the_spend_counts_delivered_and_reserved_images_at_list_price(
    store: SqliteStore, clock: Clock
) -> None:
    delivered = await store.create_job(new_job(1, model=QWEN))
    await store.mark_succeeded(delivered.id, ("u1",))
    await store.mark_delivered(delivered.id, 1)  # ¥0.3, though within the free allowance
    await store.create_job(new_job(1, 2))  # reserved: ¥0.28
    failed = await store.create_job(new_job(2, 4))
    await store.mark_failed(failed.id, "X", "refunded")  # nothing
    partly = await store.create_job(new_job(2, 3))
    await store.mark_succeeded(partly.id, ("u1", "u2", "u3"))
    await store.mark_delivered(partly.id, 1)  # one of three came out: ¥0.14
    assert await store.estimated_spend() == Decimal("0.72")
    assert await store.estimated_spend("2026-10") == 0
    clock.now = datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert await store.estimated_spend() == 0  # a new month starts from nothing
    assert await store.estimated_spend("2026-11") == Decimal("0.72")


async def test_a_creation_past_the_cap_is_refused_and_reserves_nothing(
    store: SqliteStore,
) -> None:
    await store.create_job(new_job(1, 2), budget_yuan=Decimal("0.5"))  # ¥0.28
    for job in (new_job(2, model=QWEN), new_job(3, model=QWEN, unlimited=True)):
        with pytest.raises(BudgetExceededError) as raised:  # 0.28 + 0.3 > 0.5, admins too
            await store.create_job(job, budget_yuan=Decimal("0.5"))
        refused = raised.value
        assert (refused.month, refused.spent, refused.cost, refused.budget) == (
            "2026-11", Decimal("0.28"), Decimal("0.3"), Decimal("0.5"))
        assert refused.resets_on == "2026-12-01"
        assert render_error(refused, EN) == text("budget_exceeded", EN, reset="2026-12-01")
    for user_id in (2, 3):
        status = await store.quota_status(user_id)
        assert (status.used, status.reserved) == (0, 0)
    with pytest.raises(JobNotFoundError):
        await store.get_job(2)
    assert await store.estimated_spend() == Decimal("0.28")
    # Exactly at the cap passes; without a cap anything does.
    await store.create_job(new_job(2, 1), budget_yuan=Decimal("0.42"))
    await store.create_job(new_job(3, 4, model=QWEN))
    assert await store.estimated_spend() == Decimal("0.42") + Decimal("1.2")


async def test_a_replayed_update_at_the_cap_is_its_job_not_a_refusal(store: SqliteStore) -> None:
    first = await store.create_or_replay_job(new_job(1, update_id=77), budget_yuan=Decimal("0.14"))
    again = await store.create_or_replay_job(new_job(1, update_id=77), budget_yuan=Decimal("0.14"))
    assert again.replayed and again.job.id == first.job.id


@pytest.mark.parametrize("connections", [1, 2])
async def test_two_requests_at_the_edge_of_the_cap_cannot_both_pass(
    tmp_path: Path, clock: Clock, connections: int
) -> None:
    """One store shared, or two connections to one file (as two processes would be)."""
    path = tmp_path / "edge.sqlite3"
    stores = [await SqliteStore.open(path, default_limit=10, tz=SHANGHAI, clock=clock)
              for _ in range(connections)]
    try:
        for user_id in (1, 2):
            await stores[0].touch_user(user_id, None, f"User {user_id}", "en")
        await stores[0].create_job(new_job(1, 1))  # ¥0.14 of ¥0.5 spent
        outcomes = await asyncio.gather(
            *(stores[i % connections].create_job(new_job(user_id, model=QWEN),
                                                 budget_yuan=Decimal("0.5"))
              for i, user_id in enumerate((1, 2))),
            return_exceptions=True,
        )
        assert sorted(type(outcome).__name__ for outcome in outcomes) == [
            "BudgetExceededError", "Job"]
        assert await stores[-1].estimated_spend() == Decimal("0.44")
        reserved = [(await stores[0].quota_status(u)).reserved for u in (1, 2)]
        assert sum(reserved) == 2  # the first job and the one that passed
    finally:
        for opened in stores:
            await opened.close()


def test_check_budget_is_strict_above_the_cap_only() -> None:
    check_budget(month="2026-11", spent=Decimal("0.16"), model=WANX, images=1,
                 budget=Decimal("0.3"))
    check_budget(month="2026-11", spent=Decimal("99"), model=WANX, images=4, budget=None)
    check_budget(month="2026-11", spent=Decimal(0), model="unpriced", images=4, budget=Decimal(0))
    with pytest.raises(BudgetExceededError) as raised:
        check_budget(month="2026-12", spent=Decimal("0.17"), model=WANX, images=1,
                     budget=Decimal("0.3"))
    assert raised.value.resets_on == "2027-01-01"
    assert next_month_start("2026-02") == "2026-03-01"


async def test_stuck_jobs_are_the_unfinished_ones_unchanged_past_the_bound(
    store: SqliteStore, clock: Clock
) -> None:
    queued = await store.create_job(new_job(1))
    submitted = await store.create_job(new_job(2))
    await store.mark_submitted(submitted.id, "task-1")
    done = await store.create_job(new_job(3))
    await store.mark_failed(done.id, "X", "gone")
    clock.now += timedelta(minutes=29)
    assert await store.stuck_jobs(timedelta(minutes=30)) == []
    await store.note_attempt(submitted.id)  # a change: its clock starts again
    clock.now += timedelta(minutes=2)
    assert [job.id for job in await store.stuck_jobs(timedelta(minutes=30))] == [queued.id]
    clock.now += timedelta(minutes=30)
    assert [job.id for job in await store.stuck_jobs(timedelta(minutes=30))] == [
        queued.id, submitted.id]


# --- the alerts ----------------------------------------------------------------------------------


@pytest.fixture
async def alerts_store(store: SqliteStore) -> SqliteStore:
    await store.touch_user(ADMIN_ID, "root", "Root", "zh-hans")
    await store.touch_user(ADMIN_ID + 1, "other", "Other", "en")
    return store


async def test_each_spend_threshold_is_told_once_a_month_in_each_admins_language(
    alerts_store: SqliteStore,
) -> None:
    messenger = FakeMessenger()
    admins = (ADMIN_ID, ADMIN_ID + 1)
    alerts = AdminAlerts(alerts_store, messenger, admins)
    budget = Decimal(10)
    await alerts.spend("2026-11", Decimal("7.99"), budget)
    assert messenger.sent == []
    await alerts.spend("2026-11", Decimal("8"), budget)
    await alerts.spend("2026-11", Decimal("9"), budget)
    warning = {lang: text("alert_budget_warning", lang, month="2026-11", spent="8.00",
                          budget="10.00", percent=80, reset="2026-12-01") for lang in Lang}
    assert messenger.texts_to(ADMIN_ID) == [warning[ZH]]
    assert messenger.texts_to(ADMIN_ID + 1) == [warning[EN]]
    refused = BudgetExceededError(month="2026-11", spent=Decimal("9.9"), cost=Decimal("0.3"),
                                  budget=budget, resets_on="2026-12-01")
    await alerts.budget_refused(refused)
    await alerts.budget_refused(refused)
    await alerts.spend("2026-11", Decimal(10), budget)
    reached = text("alert_budget_reached", EN, month="2026-11", spent="9.90", budget="10.00",
                   reset="2026-12-01")
    assert messenger.texts_to(ADMIN_ID + 1) == [warning[EN], reached]
    # A restart (a new AdminAlerts) remembers; a new month starts over, and a cap reached at
    # once makes the warning moot.
    again = AdminAlerts(alerts_store, messenger, admins)
    await again.spend("2026-11", Decimal(10), budget)
    await again.spend("2026-12", Decimal(10), budget)
    await again.spend("2026-12", Decimal("8.5"), budget)
    december = messenger.texts_to(ADMIN_ID + 1)[2:]
    assert len(december) == 1 and december[0].startswith("⛔") and "2026-12" in december[0]


async def test_hourly_alerts_and_nobody_to_tell(alerts_store: SqliteStore) -> None:
    messenger = FakeMessenger()
    now = [datetime(2026, 11, 15, 12, 0, tzinfo=UTC)]
    alerts = AdminAlerts(alerts_store, messenger, (ADMIN_ID + 1,), clock=lambda: now[0])
    job = await alerts_store.create_job(new_job(1))
    await alerts.stuck([job], 30)
    await alerts.stuck([job], 30)
    now[0] += timedelta(minutes=61)
    await alerts.stuck([job, job], 30)
    assert messenger.texts_to(ADMIN_ID + 1) == [
        text("alert_stuck", EN, minutes=30, count=1, jobs=f"#{job.id}"),
        text("alert_stuck", EN, minutes=30, count=2, jobs=f"#{job.id}, #{job.id}"),
    ]
    nobody = AdminAlerts(alerts_store, messenger, ())
    await nobody.spend("2027-01", Decimal(5), Decimal(5))
    await nobody.started(3)
    assert len(messenger.sent) == 2
    assert await alerts_store.get_setting("alert:budget100:2027-01") is None
    assert await alerts_store.get_setting("alert:started") is None


def test_the_version_is_the_installed_packages() -> None:
    assert package_version() == importlib.metadata.version("bailian-image-bot") != "unknown"


# --- end to end --------------------------------------------------------------------------------


def to_chat(call: ApiCall, chat_id: int) -> bool:
    return str(call.params.get("chat_id")) == str(chat_id)


def texts_to(tg: FakeTelegram, chat_id: int) -> list[str]:
    return [str(c.params["text"]) for c in tg.calls_to("sendMessage") if to_chat(c, chat_id)]


async def probe(harness: Harness, user: dict[str, Any]) -> None:
    """An allowed user's /quota, answered: updates sent before it have been looked at."""
    tg = harness.telegram
    asked = tg.send_text(user, tg.private_chat(user), "/quota")
    await harness.reply_to(asked)


@pytest.mark.slow
async def test_a_stranger_is_refused_once_an_hour_with_their_id_and_nothing_is_done(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3",
                       ALLOWED_USER_IDS="1") as harness:
        tg = harness.telegram
        alice = harness.user(1, "Alice")
        stranger = harness.user(4242, "李", language_code="zh-hans")
        chat = tg.private_chat(stranger)
        first = tg.send_photo(stranger, chat, make_image(), "/colorize")
        refusal = await harness.reply_to(first)
        assert refusal.params["text"] == text("access_refused", ZH, user_id=4242)
        tg.send_photo(stranger, chat, make_image(), "/edit make it blue")
        tg.send_text(stranger, chat, "/help")
        await probe(harness, alice)
        assert texts_to(tg, 4242) == [refusal.params["text"]]
        assert tg.calls_to("getFile") == [] and harness.emulator.requests == []
        assert await harness.services.store.get_user(4242) is None  # nothing stored

        request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
        await harness.reply_to(request, "sendPhoto")
        assert len(harness.emulator.requests_to("submit")) == 1
        await harness.settled()


@pytest.mark.slow
async def test_an_allowed_group_serves_every_member_and_other_groups_hear_one_refusal(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3", ALLOWED_USER_IDS="1",
                       ALLOWED_CHAT_IDS="-100700") as harness:
        tg = harness.telegram
        alice = harness.user(1, "Alice")
        member = harness.user(5, "Bob")  # listed nowhere, but in the allowed group
        allowed = tg.group_chat(-100700, "Allowed")
        photo = tg.send_photo(member, allowed, make_image(600, 600))
        command = tg.send_text(member, allowed, f"/upscale@{BOT} 2", reply_to=photo)
        await harness.reply_to(command, "sendPhoto")
        await harness.settled()
        assert await harness.services.store.get_user(5) is not None

        other = tg.group_chat(-100701, "Other")
        chatter = tg.send_photo(member, other, make_image())  # not for the bot: silence
        tg.send_text(member, other, "/start@SomeOtherBot")
        tg.send_text(member, other, "hello everyone")
        await probe(harness, alice)
        assert not [c for c in tg.calls if to_chat(c, other["id"])]
        refused = tg.send_text(member, other, "/colorize", reply_to=chatter)
        refusal = await harness.reply_to(refused)
        assert refusal.params["text"] == text("access_refused_group", EN, user_id=5,
                                              chat_id=-100701)
        tg.send_text(member, other, f"/upscale@{BOT}", reply_to=chatter)  # within the hour
        await probe(harness, alice)
        assert len([c for c in tg.calls if to_chat(c, other["id"])]) == 1
        assert len(tg.calls_to("getFile")) == 1  # the allowed group's photo only
        assert len(harness.emulator.requests_to("submit")) == 1


@pytest.mark.slow
async def test_admins_are_always_allowed_and_a_strangers_button_press_is_refused(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3",
                       ALLOWED_USER_IDS="1") as harness:
        tg = harness.telegram
        admin = harness.user(ADMIN_ID, "Root")
        answer = await harness.reply_to(tg.send_text(admin, tg.private_chat(admin), "/quota"))
        assert answer.params["text"] == text("quota_admin", EN)

        alice = harness.user(1, "Alice")
        stranger = harness.user(6, "Eve")
        group = tg.group_chat(-100800, "Mixed")  # not listed: Alice may, Eve may not
        photo = tg.send_photo(alice, group, make_image())
        request = tg.send_text(alice, group, f"/localstyle@{BOT} the house", reply_to=photo)
        offer = await harness.reply_to(request)
        keyboard = tg.bot_message(group["id"], offer.result["message_id"])
        tg.press_button(stranger, keyboard, "pick:ls:ice")
        refusal = await tg.wait_for_call("answerCallbackQuery")
        assert refusal.params["text"] == text("access_refused_button", EN, user_id=6)
        assert refusal.params.get("show_alert") in (True, "true")
        tg.press_button(stranger, keyboard, "pick:ls:ice")  # answered each time: no spinner
        await tg.wait_for_call("answerCallbackQuery")
        assert harness.emulator.requests == []
        tg.press_button(alice, keyboard, "pick:ls:ice")  # the keyboard was untouched
        await harness.reply_to(photo, "sendPhoto")
        assert len(harness.emulator.requests_to("submit")) == 1
        await harness.settled()


@pytest.mark.slow
async def test_the_spend_cap_refuses_before_downloading_and_alerts_at_80_and_100_percent(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    # Two wanx images (¥0.28) are 80 % of ¥0.35; a third would pass the cap.
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3",
                       MONTHLY_BUDGET_YUAN="0.35") as harness:
        tg = harness.telegram
        store = harness.services.store
        admin = harness.user(ADMIN_ID, "Root", language_code="zh-hans")
        admin_chat = tg.private_chat(admin)
        await harness.reply_to(tg.send_text(admin, admin_chat, "/quota"))
        li = harness.user(2, "李", language_code="zh-hans")
        chat = tg.private_chat(li)
        month = store.current_month()
        for _ in range(2):
            request = tg.send_photo(li, chat, make_image(), "/colorize")
            await harness.reply_to(request, "sendPhoto")
            await harness.settled()
        warning = text("alert_budget_warning", ZH, month=month, spent="0.28", budget="0.35",
                       percent=80, reset=next_month_start(month))
        await wait_until(lambda: warning in texts_to(tg, ADMIN_ID))

        downloads = len(tg.calls_to("getFile"))
        refused = tg.send_photo(li, chat, make_image(), "/colorize")
        refusal = await harness.reply_to(refused)
        assert refusal.params["text"] == text("budget_exceeded", ZH,
                                              reset=next_month_start(month))
        reached = text("alert_budget_reached", ZH, month=month, spent="0.28", budget="0.35",
                       reset=next_month_start(month))
        await wait_until(lambda: reached in texts_to(tg, ADMIN_ID))
        # Admins are refused too; the alerts are not repeated.
        mine = tg.send_photo(admin, admin_chat, make_image(), "/colorize")
        own = await harness.reply_to(mine)
        assert own.params["text"] == text("budget_exceeded", ZH, reset=next_month_start(month))
        assert len(tg.calls_to("getFile")) == downloads  # nothing downloaded for either
        assert len(harness.emulator.requests_to("submit")) == 2
        status = await store.quota_status(2)
        assert (status.used, status.reserved) == (2, 0)
        assert await store.estimated_spend() == Decimal("0.28")
        with pytest.raises(JobNotFoundError):
            await store.get_job(3)

        usage = await harness.reply_to(tg.send_text(admin, admin_chat, "/usage"))
        assert text("usage_budget", ZH, spent="0.28", budget="0.35", percent=80) in (
            usage.params["text"])
        alerts = [t for t in texts_to(tg, ADMIN_ID) if t in (warning, reached)]
        assert alerts == [warning, reached]


@pytest.mark.slow
async def test_usage_without_a_cap_shows_the_spend_alone(harness: Harness) -> None:
    tg = harness.telegram
    admin = harness.user(ADMIN_ID, "Root")
    usage = await harness.reply_to(tg.send_text(admin, tg.private_chat(admin), "/usage"))
    assert text("usage_no_budget", EN, spent="0.00") in usage.params["text"]


@pytest.mark.slow
async def test_the_start_alert_tells_the_version_and_the_resumed_jobs_once_an_hour(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    database = tmp_path / "bot.sqlite3"
    alice = telegram.user(1, "Alice")
    telegram.private_chat(alice)
    telegram.private_chat(telegram.user(ADMIN_ID, "Root"))
    file_id, _ = telegram.add_file(make_image())
    async with await SqliteStore.open(database, default_limit=5, tz=SHANGHAI) as before:
        await before.touch_user(1, None, "Alice", "en")
        # A job a stopped bot left queued.
        left = await before.create_job(new_job(1, input_file_id=file_id))
    started = text("alert_started", EN, version=package_version(), resumed=1)
    async with serving(telegram, emulator, database) as harness:
        assert texts_to(telegram, ADMIN_ID) == [started]
        await harness.settled()
        assert (await harness.services.store.get_job(left.id)).state is JobState.DELIVERED
    async with serving(telegram, emulator, database):  # restarted within the hour
        assert texts_to(telegram, ADMIN_ID) == [started]


@pytest.mark.slow
async def test_a_job_stuck_past_the_bound_is_reported_to_the_admins_hourly(
    harness: Harness,
) -> None:
    tg = harness.telegram
    tg.private_chat(harness.user(ADMIN_ID, "Root"))
    database = harness.settings.database_url.removeprefix("sqlite:///")
    long_ago = Clock(datetime.now(UTC) - timedelta(hours=2))
    async with await SqliteStore.open(database, default_limit=5, tz=SHANGHAI,
                                      clock=long_ago) as other:
        await other.touch_user(1, None, "Alice", "en")
        stuck = await other.create_job(new_job(1))
        await other.mark_submitted(stuck.id, "task-lost-long-ago")
        workers = harness.services.jobs.workers
        await workers.sweep_once()
        said = text("alert_stuck", EN, minutes=30, count=1, jobs=f"#{stuck.id}")
        await wait_until(lambda: said in texts_to(tg, ADMIN_ID))
        await harness.settled()  # the sweep resumed it; the emulator knows no such task
        assert (await harness.services.store.get_job(stuck.id)).state is JobState.FAILED

        another = await other.create_job(new_job(1))
        await workers.sweep_once()
        await harness.settled()
        assert (await harness.services.store.get_job(another.id)).state is JobState.FAILED
    stuck_alerts = [t for t in texts_to(tg, ADMIN_ID) if t.startswith("⚠️")]
    assert stuck_alerts == [said]  # the second stuck job fell within the hour
