"""Operating the bot: admin commands on any numeric id, /id, the admins' menu, no admin at all."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.app import ADMIN_MENU_COMMANDS, MENU_COMMANDS
from bot.offline.bot_api import ApiCall, FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from bot.texts import Lang, text
from handlers.info import next_month_start
from storage import open_store
from tests.harness import (
    ADMIN_ID,
    API_KEY,
    Harness,
    bot_settings,
    make_image,
    replied_to,
    running,
    wait_until,
)

pytestmark = pytest.mark.slow

STRANGER = 4242  # never wrote to the bot before the admin names them
PLACEHOLDER = f"<code>{STRANGER}</code>"  # how admins see them until then: the id alone
EN, ZH = Lang.EN, Lang.ZH


@asynccontextmanager
async def started(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path, **overrides: str
) -> AsyncIterator[Harness]:
    """The harness with some settings overridden."""
    settings = bot_settings(telegram, emulator, tmp_path / "bot.sqlite3", **overrides)
    async with running(settings) as application:
        yield Harness(telegram, emulator, settings, application)


async def says(harness: Harness, user: dict[str, Any], words: str,
               chat: dict[str, Any] | None = None) -> str:
    """What the bot answers ``user`` saying ``words`` (in their private chat by default)."""
    tg = harness.telegram
    message = tg.send_text(user, chat or tg.private_chat(user), words)
    return str((await harness.reply_to(message)).params["text"])


async def quota_text(harness: Harness, *, limit: int, granted: int) -> str:
    """What /quota says to someone who has used nothing yet."""
    store, settings = harness.services.store, harness.settings
    return text("quota_status", EN, used=0, reserved=0, limit=limit, granted=granted,
                remaining=limit + granted, reset=next_month_start(store.current_month()),
                tz=settings.quota_timezone)


def chat_scope(chat_id: int) -> dict[str, Any]:
    return {"type": "chat", "chat_id": chat_id}


def scope_chat(call: ApiCall) -> int | None:
    scope = call.params.get("scope")
    return int(scope["chat_id"]) if isinstance(scope, dict) and "chat_id" in scope else None


def names(commands: list[dict[str, Any]]) -> list[str]:
    return [command["command"] for command in commands]


# --- admin commands on a numeric id of someone who never wrote --------------------------------


async def test_ban_by_id_before_they_ever_wrote_refuses_their_first_request(
    harness: Harness,
) -> None:
    tg, store = harness.telegram, harness.services.store
    admin = harness.user(ADMIN_ID, "Root")
    assert await store.get_user(STRANGER) is None

    answer = await says(harness, admin, f"/ban {STRANGER}")
    assert answer == text("admin_banned", EN, user=PLACEHOLDER)
    placeholder = await store.get_user(STRANGER)
    assert placeholder is not None and placeholder.banned
    assert placeholder.display_name == f"user {STRANGER}"

    mallory = harness.user(STRANGER, "Mallory", username="mallory")
    request = tg.send_photo(mallory, tg.private_chat(mallory), make_image(), "/colorize")
    refusal = await harness.reply_to(request)
    assert refusal.params["text"] == text("banned", EN)
    assert not tg.calls_to("getFile")  # nothing downloaded
    assert not harness.emulator.requests_to("submit")
    seen = await store.get_user(STRANGER)
    assert seen is not None and seen.banned  # writing keeps the ban, and fills in the name
    assert (seen.display_name, seen.username) == ("Mallory", "mallory")

    answer = await says(harness, admin, f"/unban {STRANGER}")
    assert answer == text("admin_unbanned", EN, user=f"@mallory (<code>{STRANGER}</code>)")
    stored = await store.get_user(STRANGER)
    assert stored is not None and not stored.banned
    assert [e.action for e in await store.audit_log()] == ["unban", "ban"]


async def test_setquota_by_id_is_what_the_stranger_then_sees(harness: Harness) -> None:
    admin = harness.user(ADMIN_ID, "Root")
    answer = await says(harness, admin, f"/setquota {STRANGER} 3")
    assert answer == text("admin_quota_set", EN, user=PLACEHOLDER, limit=3, remaining=3)

    stranger = harness.user(STRANGER, "Sam")
    assert await says(harness, stranger, "/quota") == await quota_text(
        harness, limit=3, granted=0
    )


async def test_grant_by_id_for_a_stranger(harness: Harness) -> None:
    admin = harness.user(ADMIN_ID, "Root")
    answer = await says(harness, admin, f"/grant {STRANGER} 2")
    assert answer == text("admin_granted", EN, user=PLACEHOLDER, images=2, granted=2,
                          remaining=7)  # 5 a month, and 2
    assert (await harness.services.store.quota_status(STRANGER)).granted == 2

    stranger = harness.user(STRANGER, "Sam")
    assert await says(harness, stranger, "/quota") == await quota_text(
        harness, limit=5, granted=2
    )


async def test_an_unknown_username_or_a_non_user_id_is_still_refused(harness: Harness) -> None:
    store = harness.services.store
    admin = harness.user(ADMIN_ID, "Root")
    answer = await says(harness, admin, "/ban @unknownname")
    assert answer == text("admin_unknown_user", EN, user="@unknownname")
    answer = await says(harness, admin, "/setquota -100123 3")  # a group's id, not a person's
    assert answer == text("admin_bad_user_id", EN, user="-100123")
    assert await store.find_user_by_username("unknownname") is None
    assert await store.get_user(-100123) is None
    assert await store.audit_log() == []


async def test_a_configured_admin_cannot_be_banned_before_they_wrote(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    other_admin = ADMIN_ID + 1
    async with started(
        telegram, emulator, tmp_path, ADMIN_USER_IDS=f"{ADMIN_ID},{other_admin}"
    ) as harness:
        admin = harness.user(ADMIN_ID, "Root")
        answer = await says(harness, admin, f"/ban {other_admin}")
        assert answer == text("admin_cannot_ban_admin", EN)
        stored = await harness.services.store.get_user(other_admin)
        assert stored is None or not stored.banned
        assert await harness.services.store.audit_log() == []


# --- /id -----------------------------------------------------------------------------------------


async def test_id_in_private_says_the_id_once_in_the_users_language(harness: Harness) -> None:
    alice = harness.user(31337, "Alice", language_code="en")
    answer = await says(harness, alice, "/id")
    assert answer == text("id_private", EN, user_id=31337)
    assert answer.count("31337") == 1 and "ADMIN_USER_IDS" in answer

    li = harness.user(31338, "李", language_code="zh-hans")
    answer = await says(harness, li, "/id")
    assert answer == text("id_private", ZH, user_id=31338)
    assert "用户 ID" in answer and answer.count("31338") == 1


async def test_id_in_a_group_says_the_user_and_the_chat(harness: Harness) -> None:
    tg = harness.telegram
    group = tg.group_chat(-100777, "Friends")
    alice = harness.user(31337, "Alice")
    answer = await says(harness, alice, "/id@BailianTestBot", chat=group)
    assert answer == text("id_group", EN, user_id=31337, chat_id=-100777)
    assert "31337" in answer and "-100777" in answer and "ALLOWED_CHAT_IDS" in answer


# --- the command menus -----------------------------------------------------------------------


async def test_admins_get_the_admin_commands_in_their_own_menu_only(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # The admin who never started the bot comes first: the others must get their menus anyway.
    never_started, unknown, known_zh = ADMIN_ID - 1, ADMIN_ID, ADMIN_ID + 1
    telegram.fail_next("setMyCommands", error_code=400, description="Bad Request: chat not found",
                       chat_id=never_started, times=2)
    database = tmp_path / "bot.sqlite3"
    store = await open_store(f"sqlite:///{database}", default_limit=5,
                             tz=ZoneInfo("Asia/Shanghai"))
    try:  # a known admin: wrote to the bot before this start
        await store.touch_user(known_zh, None, "管理员", "zh-hans")
    finally:
        await store.close()
    admins = f"{unknown},{known_zh},{never_started}"
    async with started(telegram, emulator, tmp_path, ADMIN_USER_IDS=admins) as harness:
        public, everything = list(MENU_COMMANDS), [*MENU_COMMANDS, *ADMIN_MENU_COMMANDS]
        assert "id" in public and not set(ADMIN_MENU_COMMANDS) & set(public)
        for code in ("zh", "en", ""):
            assert names(telegram.commands(language_code=code)) == public

        zh_menu = telegram.commands(chat_scope(unknown), "zh")
        en_menu = telegram.commands(chat_scope(unknown))
        assert names(zh_menu) == names(en_menu) == everything
        ban_zh = {c["command"]: c["description"] for c in zh_menu}["ban"]
        ban_en = {c["command"]: c["description"] for c in en_menu}["ban"]
        assert (ban_zh, ban_en) == (text("menu_ban", ZH), text("menu_ban", EN))
        # A known admin gets their language whatever their client's.
        for code in ("zh", ""):
            menu = telegram.commands(chat_scope(known_zh), code)
            assert names(menu) == everything
            assert menu[-1]["description"] == text("menu_queue", ZH)

        # Telegram refused the admin who never started the bot; the bot serves all the same.
        refused = [c for c in telegram.calls_to("setMyCommands")
                   if scope_chat(c) == never_started]
        assert refused and all(c.response["error_code"] == 400 for c in refused)
        assert telegram.commands(chat_scope(never_started)) == []
        assert [r for r in caplog.records
                if r.levelno == logging.INFO and str(never_started) in r.getMessage()]
        late = harness.user(never_started, "Late")
        assert "ADMIN_USER_IDS" in await says(harness, late, "/id")
    assert not [r for r in caplog.records if "no admin is configured" in r.getMessage()]


# --- no admin configured -------------------------------------------------------------------------


async def test_without_admins_an_account_error_claims_nobody_was_told(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with started(telegram, emulator, tmp_path, ADMIN_USER_IDS="") as harness:
        assert not harness.settings.admin_user_ids
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                    and "no admin is configured" in r.getMessage()]
        assert len(warnings) == 1
        assert "ADMIN_USER_IDS" in warnings[0].getMessage() and "/id" in warnings[0].getMessage()

        # A service that echoes the key: the client masks it before anything logs it.
        emulator.fail_next("submit", 401, "InvalidApiKey", f"Invalid API-key provided: {API_KEY}")
        tg = harness.telegram
        alice = harness.user(1, "Alice")
        request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
        failure = await harness.telegram.wait_for_call(
            "sendMessage",
            lambda c: str(c.params["chat_id"]) == "1" and "❌" in c.params["text"],
        )
        said = failure.params["text"]
        assert text("fail_account_no_admin", EN) in said
        assert text("fail_account", EN) not in said and "admins" not in said
        assert text("not_charged", EN) in said
        await harness.settled()
        assert not [c for c in tg.calls_to("sendPhoto") if str(c.params["chat_id"]) == "1"]
        assert (await harness.services.store.quota_status(1)).used == 0
        assert replied_to(failure) == request["message_id"]

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r for r in errors if "InvalidApiKey" in r.getMessage()], errors
    for record in caplog.records:
        rendered = record.getMessage() + (record.exc_text or "")
        assert API_KEY not in rendered, rendered


async def test_with_admins_the_account_error_still_says_they_were_told(harness: Harness) -> None:
    harness.emulator.fail_next("submit", 401, "InvalidApiKey", "Invalid API-key provided.")
    tg = harness.telegram
    admin = harness.user(ADMIN_ID, "Root")
    tg.private_chat(admin)
    alice = harness.user(1, "Alice")
    tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
    failure = await tg.wait_for_call(
        "sendMessage", lambda c: str(c.params["chat_id"]) == "1" and "❌" in c.params["text"]
    )
    assert text("fail_account", EN) in failure.params["text"]
    await wait_until(lambda: any(
        str(c.params["chat_id"]) == str(ADMIN_ID) and "InvalidApiKey" in c.params["text"]
        for c in tg.calls_to("sendMessage")
    ))
