"""The /erase trap (issue 11): a photo sent while /erase waits for its mask is asked about, never
thresholded and charged without asking; words and other commands meanwhile are answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.conversations import Conversations, MaskQuestion, Pick
from storage import SqliteStore
from tests.harness import Harness, make_image, make_mask

BOT = "@BailianTestBot"
CAT = (200, 120, 40)


def bodies(harness: Harness, endpoint: str) -> list[dict[str, Any]]:
    return [r.body for r in harness.emulator.requests_to(endpoint) if r.body is not None]


async def quota(harness: Harness, user_id: int) -> tuple[int, int]:
    status = await harness.services.store.quota_status(user_id)
    return status.used, status.reserved


async def test_a_mask_question_is_no_pick_and_is_answered_once(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "q.sqlite3", default_limit=5,
                                   tz=ZoneInfo("Asia/Shanghai"))
    try:
        conversations = Conversations(store)
        question = MaskQuestion(user_id=1, chat_id=10, file_id="cat", message_id=5,
                                caption="make the cat orange")
        await conversations.put_mask_question(77, question)
        await conversations.put_pick(78, Pick(user_id=1, chat_id=10, file_id="dog",
                                              request_message_id=6))
        assert await conversations.get_pick(10, 77) is None  # an action button cannot use it
        assert await conversations.mask_question(10, 78) is None  # nor the other way round
        assert await conversations.mask_question(10, 77) == question
        assert await conversations.take_mask_question(10, 77) == question
        assert await conversations.take_mask_question(10, 77) is None
    finally:
        await store.close()


async def erase_then_cat(
    harness: Harness,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Alice asks for /erase, then sends a cat photo: (chat, request, cat, question)."""
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(640, 480), "/erase a spoon")
    assert "mask" in (await harness.reply_to(request)).params["text"]
    cat = tg.send_photo(alice, chat, make_image(640, 480, CAT), "make the cat orange")
    question = await harness.reply_to(cat)
    return chat, request, cat, question.result  # type: ignore[return-value]


@pytest.mark.slow
async def test_a_photo_after_erase_is_asked_about_and_nothing_is_charged(
    harness: Harness,
) -> None:
    chat, _, _, question = await erase_then_cat(harness)
    assert "looks like a photo" in question["text"]
    [buttons] = question["reply_markup"]["inline_keyboard"]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [
        ("Use as mask", "mask:use"), ("It's a new photo", "mask:new"),
    ]
    assert not harness.emulator.requests
    assert await quota(harness, 1) == (0, 0)
    assert await harness.services.conversations.mask_wait(chat["id"], 1) is not None


@pytest.mark.slow
async def test_a_new_photo_ends_the_wait_and_is_handled_as_one(harness: Harness) -> None:
    tg = harness.telegram
    chat, _, cat, question = await erase_then_cat(harness)
    tg.press_button(harness.users[1], tg.bot_message(chat["id"], question["message_id"]),
                    "mask:new")
    ended = await harness.reply_to(cat)
    assert "No longer waiting for the mask for /erase" in ended.params["text"]
    await harness.reply_to(cat, "sendPhoto")
    [body] = bodies(harness, "qwen")  # the caption ran as an /edit of the cat
    texts = [part["text"] for part in body["input"]["messages"][0]["content"] if "text" in part]
    assert texts == ["make the cat orange"]
    assert not harness.emulator.requests_to("submit")
    assert await harness.services.conversations.mask_wait(chat["id"], 1) is None
    await harness.settled()
    assert await quota(harness, 1) == (1, 0)


@pytest.mark.slow
async def test_use_as_mask_runs_the_erase_with_it(harness: Harness) -> None:
    tg = harness.telegram
    chat, request, _, question = await erase_then_cat(harness)
    tg.press_button(harness.users[1], tg.bot_message(chat["id"], question["message_id"]),
                    "mask:use")
    await harness.reply_to(request, "sendPhoto")
    [body] = bodies(harness, "submit")
    assert body["input"]["function"] == "description_edit_with_mask"
    assert body["input"]["mask_image_url"].startswith("data:image/png;base64,")
    assert body["input"]["prompt"] == "a spoon make the cat orange"
    # Pressed again: the question was answered once.
    tg.press_button(harness.users[1], tg.bot_message(chat["id"], question["message_id"]),
                    "mask:use")
    again = await tg.wait_for_call("answerCallbackQuery", lambda c: "text" in c.params)
    assert "expired" in again.params["text"]
    await harness.settled()
    assert len(bodies(harness, "submit")) == 1
    assert await quota(harness, 1) == (1, 0)


@pytest.mark.slow
async def test_a_black_and_white_mask_runs_at_once(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(640, 480), "/erase a spoon")
    await harness.reply_to(request)
    mask = tg.send_photo(alice, chat, make_mask(640, 480))
    await harness.reply_to(request, "sendPhoto")
    [body] = bodies(harness, "submit")
    assert body["input"]["function"] == "description_edit_with_mask"
    assert "mask:use" not in str([c.params for c in tg.calls_to("sendMessage")])
    # Fetched once, though it was looked at twice (a painted copy? a mask?).
    mask_file = mask["photo"][-1]["file_id"]
    assert sum(c.params["file_id"] == mask_file for c in tg.calls_to("getFile")) == 1


@pytest.mark.slow
async def test_a_command_photo_during_the_wait_runs_and_ends_the_wait(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(640, 480), "/erase a spoon")
    await harness.reply_to(request)
    other = tg.send_photo(alice, chat, make_image(640, 480, CAT), "/colorize")
    ended = await harness.reply_to(other)
    assert "No longer waiting for the mask for /erase" in ended.params["text"]
    await harness.reply_to(other, "sendPhoto")
    [body] = bodies(harness, "submit")
    assert body["input"]["function"] == "colorization"
    assert await harness.services.conversations.mask_wait(chat["id"], 1) is None


@pytest.mark.slow
async def test_words_during_the_wait_are_told_it_still_waits(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(640, 480), "/erase a spoon")
    await harness.reply_to(request)
    answer = await harness.reply_to(tg.send_text(alice, chat, "make it nicer"))
    assert "Still waiting for the mask" in answer.params["text"]
    assert "/cancel" in answer.params["text"]
    assert await harness.services.conversations.mask_wait(chat["id"], 1) is not None
    assert not harness.emulator.requests


@pytest.mark.slow
async def test_in_a_group_only_words_to_the_bot_are_answered(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1, "Alice", language_code="zh-hans")
    group = tg.group_chat(-100800)
    request = tg.send_photo(alice, group, make_image(640, 480), f"/erase{BOT}")
    ask = await harness.reply_to(request)
    prompt = tg.bot_message(group["id"], ask.result["message_id"])
    chatter = tg.send_text(alice, group, "lunch at noon?")
    named = tg.send_text(alice, group, f"{BOT} what now?")
    assert "还在等待" in (await harness.reply_to(named)).params["text"]
    replying = tg.send_text(alice, group, "ok", reply_to=prompt)
    assert "还在等待" in (await harness.reply_to(replying)).params["text"]
    assert not [c for c in tg.calls_to("sendMessage")
                if c.params.get("reply_parameters", {}).get("message_id")
                == chatter["message_id"]]
