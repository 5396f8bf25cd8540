"""Conversations without dead ends: a command waits for its photo, words replying to a photo edit
it, and a request still waiting for a slot can be cancelled (issue 11)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from storage.models import JobState
from tests.harness import API_KEY, Harness, bot_settings, make_image, running, wait_until

pytestmark = pytest.mark.slow

BOT = "@BailianTestBot"


def bodies(harness: Harness, endpoint: str) -> list[dict[str, Any]]:
    return [r.body for r in harness.emulator.requests_to(endpoint) if r.body is not None]


async def quota(harness: Harness, user_id: int) -> tuple[int, int]:
    status = await harness.services.store.quota_status(user_id)
    return status.used, status.reserved


# --- a command sent without a photo ----------------------------------------------------------


async def test_a_command_without_a_photo_runs_on_the_next_photo_once(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    answer = await harness.reply_to(tg.send_text(alice, chat, "/cartoon the character waves"))
    assert "send me the photo" in answer.params["text"]
    assert not harness.emulator.requests
    photo = tg.send_photo(alice, chat, make_image())
    await harness.reply_to(photo, "sendPhoto")
    [body] = bodies(harness, "submit")
    assert body["input"]["function"] == "control_cartoon_feature"
    assert body["input"]["prompt"] == "the character waves"
    await harness.settled()
    again = tg.send_photo(alice, chat, make_image())  # used once: now just a photo
    assert "What shall I do" in (await harness.reply_to(again)).params["text"]
    assert await quota(harness, 1) == (1, 0)


async def test_cancel_drops_a_command_waiting_for_its_photo(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    await harness.reply_to(tg.send_text(alice, chat, "/upscale 3"))
    answer = await harness.reply_to(tg.send_text(alice, chat, "/cancel"))
    assert "/upscale no longer waits" in answer.params["text"]
    photo = tg.send_photo(alice, chat, make_image())
    assert "What shall I do" in (await harness.reply_to(photo)).params["text"]
    assert not harness.emulator.requests


async def test_in_a_group_only_the_senders_next_photo_runs_their_command(
    harness: Harness,
) -> None:
    tg = harness.telegram
    alice = harness.user(1, "Alice", language_code="zh-hans")
    bob = harness.user(2, "Bob")
    group = tg.group_chat(-100700)
    answer = await harness.reply_to(tg.send_text(alice, group, f"/colorize{BOT}"))
    assert "现在把图片发给我" in answer.params["text"]
    tg.send_photo(bob, group, make_image())  # Bob's photo is not Alice's
    probe = tg.send_text(bob, tg.private_chat(bob), "/quota")
    await harness.reply_to(probe)
    assert not harness.emulator.requests
    photo = tg.send_photo(alice, group, make_image())
    await harness.reply_to(photo, "sendPhoto")
    await harness.settled()
    assert await quota(harness, 1) == (1, 0)
    assert await quota(harness, 2) == (0, 0)


# --- words replying to a photo -------------------------------------------------------------------


async def test_words_replying_to_a_photo_in_private_are_an_edit(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    photo = tg.send_photo(alice, chat, make_image())
    await harness.reply_to(photo)  # the actions keyboard
    words = tg.send_text(alice, chat, "make it pink", reply_to=photo)
    await harness.reply_to(words, "sendPhoto")
    [body] = bodies(harness, "qwen")
    assert [part for part in body["input"]["messages"][0]["content"] if "text" in part] == [
        {"text": "make it pink"}
    ]


async def test_in_a_group_words_replying_to_a_photo_must_name_the_bot(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    group = tg.group_chat(-100701)
    photo = tg.send_photo(alice, group, make_image())
    tg.send_text(alice, group, "nice one", reply_to=photo)  # talk among people: ignored
    named = tg.send_text(alice, group, f"{BOT} make it pink", reply_to=photo)
    await harness.reply_to(named, "sendPhoto")
    [body] = bodies(harness, "qwen")
    texts = [part["text"] for part in body["input"]["messages"][0]["content"] if "text" in part]
    assert texts == ["make it pink"]
    group_texts = [c for c in tg.calls_to("sendMessage")
                   if str(c.params["chat_id"]) == str(group["id"])]
    assert all("nice one" not in str(c.params) for c in group_texts)


# --- cancelling a request that waits for a slot --------------------------------------------------


@pytest.fixture
async def one_slot(
    telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[Harness]:
    """One task at a time, tasks of a second: the third request waits unclaimed in the queue."""
    emulator = DashScopeEmulator(api_key=API_KEY, latency=(1.0, 1.0), seed=3)
    await emulator.start()
    try:
        settings = bot_settings(telegram, emulator, tmp_path / "bot.sqlite3",
                                DASHSCOPE_MAX_TASKS="1")
        async with running(settings) as application:
            yield Harness(telegram, emulator, settings, application)
    finally:
        await emulator.close()


async def queue_three(harness: Harness) -> dict[str, Any]:
    """Two requests that take the workers, then Carol's, which waits in the queue."""
    tg = harness.telegram
    for user_id, name in ((1, "Alice"), (2, "Bob")):
        user = harness.user(user_id, name)
        request = tg.send_photo(user, tg.private_chat(user), make_image(), "/colorize")
        await harness.reply_to(request)
    carol = harness.user(3, "Carol")
    request = tg.send_photo(carol, tg.private_chat(carol), make_image(), "/colorize")
    status = await harness.reply_to(request)
    assert "Queued" in status.params["text"]
    return status.result  # type: ignore[no-any-return]


async def test_the_cancel_button_on_a_queued_status_refunds_and_sends_nothing(
    one_slot: Harness,
) -> None:
    harness, tg = one_slot, one_slot.telegram
    status = await queue_three(harness)
    [[button]] = status["reply_markup"]["inline_keyboard"]
    bob = harness.users[2]
    tg.press_button(bob, tg.bot_message(3, status["message_id"]), button["callback_data"])
    refusal = await tg.wait_for_call("answerCallbackQuery")
    assert "someone else" in refusal.params["text"]
    tg.press_button(harness.users[3], tg.bot_message(3, status["message_id"]),
                    button["callback_data"])
    edited = await tg.wait_for_call(
        "editMessageText",
        lambda c: c.params.get("message_id") == status["message_id"]
        and str(c.params.get("chat_id")) == "3",
    )
    assert "Cancelled" in edited.params["text"] and "reply_markup" not in edited.params
    await harness.settled(timeout=20)
    job = await harness.services.store.get_job(3)
    assert job.state is JobState.CANCELED
    assert len(harness.emulator.tasks) == 2  # Carol's never reached DashScope
    assert await quota(harness, 3) == (0, 0)


async def test_slash_cancel_cancels_a_queued_request_and_not_a_running_one(
    one_slot: Harness,
) -> None:
    harness, tg = one_slot, one_slot.telegram
    await queue_three(harness)
    carol = harness.users[3]
    answer = await harness.reply_to(tg.send_text(carol, tg.private_chat(carol), "/cancel"))
    assert "never reached the image service" in answer.params["text"]
    alice = harness.users[1]
    await wait_until(lambda: bool(harness.emulator.tasks), 10)
    answer = await harness.reply_to(tg.send_text(alice, tg.private_chat(alice), "/cancel"))
    assert "cannot be recalled" in answer.params["text"]
    await harness.settled(timeout=20)
    assert (await harness.services.store.get_job(1)).state is JobState.DELIVERED
    assert (await harness.services.store.get_job(3)).state is JobState.CANCELED
    assert await quota(harness, 1) == (1, 0)
    assert await quota(harness, 3) == (0, 0)
