"""End-to-end conversations: keyboards, languages, groups, admins' alerts, what is ignored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import ADMIN_ID, Harness, make_image, replied_to, wait_until

pytestmark = pytest.mark.slow


def buttons(call: Any) -> list[dict[str, Any]]:
    markup = call.params["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    return [button for row in markup["inline_keyboard"] for button in row]


def submits(harness: Harness) -> list[dict[str, Any]]:
    return [r.body for r in harness.emulator.requests_to("submit") if r.body is not None]


async def test_photo_without_caption_offers_actions_that_only_its_sender_can_press(
    harness: Harness,
) -> None:
    tg = harness.telegram
    alice, bob = harness.user(1), harness.user(2)
    chat = tg.private_chat(alice)
    photo = tg.send_photo(alice, chat, make_image())
    offer = await harness.reply_to(photo)
    data = {b["callback_data"] for b in buttons(offer)}
    assert {"pick:upscale", "pick:colorize", "pick:erase"} <= data
    keyboard = tg.bot_message(chat["id"], offer.result["message_id"])
    tg.press_button(bob, keyboard, "pick:colorize")
    refusal = await tg.wait_for_call("answerCallbackQuery")
    assert "someone else" in refusal.params["text"]
    tg.press_button(alice, keyboard, "pick:colorize")
    await harness.reply_to(photo, "sendPhoto")
    assert submits(harness)[0]["input"]["function"] == "colorization"
    # The keyboard is used up: a second press does nothing but say so.
    tg.press_button(alice, keyboard, "pick:colorize")
    expired = await tg.wait_for_call("answerCallbackQuery", lambda c: "expired" in str(c.params))
    assert expired is not None
    await harness.settled()
    assert len(submits(harness)) == 1


async def test_caption_without_command_in_private_is_an_edit(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    photo = tg.send_photo(alice, tg.private_chat(alice), make_image(), "make it look like winter")
    await harness.reply_to(photo, "sendPhoto")
    content = harness.emulator.requests_to("qwen")[0].body["input"]["messages"][0]["content"]  # type: ignore[index]
    assert {"text": "make it look like winter"} in content


async def test_edit_sends_the_negative_prompt(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    photo = tg.send_photo(alice, tg.private_chat(alice), make_image(),
                          '/edit a snowy street neg="blurry, dark"')
    await harness.reply_to(photo, "sendPhoto")
    body = harness.emulator.requests_to("qwen")[0].body
    assert body is not None and body["parameters"]["negative_prompt"] == "blurry, dark"


async def test_localstyle_without_style_offers_the_eight(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(), "/localstyle the house")
    offer = await harness.reply_to(request)
    styles = [b["callback_data"] for b in buttons(offer)]
    assert len(styles) == 8 and "pick:ls:ice" in styles
    tg.press_button(alice, tg.bot_message(chat["id"], offer.result["message_id"]), "pick:ls:ice")
    await wait_until(lambda: harness.emulator.requests_to("submit"))
    body = submits(harness)[0]
    assert body["input"]["function"] == "stylization_local"
    assert "ice" in body["input"]["prompt"] and "house" in body["input"]["prompt"]
    await harness.settled()


async def test_expand_to_a_ratio_computes_the_scales(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(800, 800),
                            "/expand ratio=16:9")
    await harness.reply_to(request, "sendPhoto")
    parameters = submits(harness)[0]["parameters"]
    assert parameters["top_scale"] == parameters["bottom_scale"] == 1.0
    width = 800 * (parameters["left_scale"] + parameters["right_scale"] - 1)
    assert width / 800 == pytest.approx(16 / 9, rel=0.01)


async def test_language_follows_telegram_and_lang_overrides_it(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1, language_code="zh-hans")
    chat = tg.private_chat(alice)
    quota = tg.send_text(alice, chat, "/quota")
    answer = await harness.reply_to(quota)
    assert "本月" in answer.params["text"] and "5" in answer.params["text"]
    switch = tg.send_text(alice, chat, "/lang en")
    await harness.reply_to(switch)
    quota = tg.send_text(alice, chat, "/quota")
    answer = await harness.reply_to(quota)
    assert "This month" in answer.params["text"] and "Resets on" in answer.params["text"]
    bad = tg.send_text(alice, chat, "/lang klingon")
    answer = await harness.reply_to(bad)
    assert "/lang zh" in answer.params["text"]


async def test_unknown_commands_are_answered_only_when_meant_for_us(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    group = tg.group_chat(-100700)
    tg.send_text(alice, group, "/frobnicate")  # might be another bot's: stay quiet
    addressed = tg.send_text(alice, group, "/frobnicate@BailianTestBot")
    answer = await harness.reply_to(addressed)
    assert "/help" in answer.params["text"]
    private = tg.send_text(alice, tg.private_chat(alice), "/frobnicate")
    answer = await harness.reply_to(private)
    assert "frobnicate" in answer.params["text"]
    group_answers = [c for c in tg.calls_to("sendMessage")
                     if str(c.params["chat_id"]) == str(group["id"])]
    assert len(group_answers) == 1


async def test_command_without_an_image_asks_for_the_photo(harness: Harness) -> None:
    """Issue 11: it waits for the photo (tests/test_conversation.py follows it through)."""
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_text(alice, tg.private_chat(alice), "/cartoon the character waves")
    answer = await harness.reply_to(request)
    assert "send me the photo" in answer.params["text"]
    assert not harness.emulator.requests


async def test_edited_messages_and_channel_posts_are_ignored(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    text = tg.send_text(alice, chat, "hello")
    await harness.reply_to(text)  # the private-chat hint
    tg.edit_text(alice, chat, text, "/colorize")
    channel = tg.channel_chat(-100800, "News")
    tg.channel_post(channel, "/help")
    probe = tg.send_text(alice, chat, "/quota")
    await harness.reply_to(probe)
    answered = {replied_to(c) for c in tg.calls_to("sendMessage")
                if str(c.params["chat_id"]) != str(ADMIN_ID)}  # not the start alert
    assert answered == {text["message_id"], probe["message_id"]}
    assert not [c for c in tg.calls if str(c.params.get("chat_id")) == str(channel["id"])]


async def test_status_message_is_removed_after_delivery(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(), "/colorize")
    status = await harness.reply_to(request)
    await harness.reply_to(request, "sendPhoto")
    await tg.wait_for_call(
        "deleteMessage", lambda c: int(c.params["message_id"]) == status.result["message_id"]
    )
    edits = [c.params["text"] for c in tg.calls_to("editMessageText")]
    assert any("Working" in t for t in edits)


async def test_admins_are_not_limited_by_quota(harness: Harness) -> None:
    tg = harness.telegram
    admin = harness.user(ADMIN_ID, "Root")
    chat = tg.private_chat(admin)
    for _ in range(2):
        request = tg.send_photo(admin, chat, make_image(), "/colorize n=4")
        await harness.reply_to(request, "sendMediaGroup")
    await harness.settled()
    status = await harness.services.store.quota_status(ADMIN_ID)
    assert status.used == 8  # recorded for the usage report, never refused


async def test_account_error_tells_the_user_and_alerts_admins_once_an_hour(
    harness: Harness,
) -> None:
    tg = harness.telegram
    admin = harness.user(ADMIN_ID, "Root")
    tg.send_text(admin, tg.private_chat(admin), "/quota")
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    harness.emulator.fail_next("submit", 400, "Arrearage", "Access denied, account in arrears",
                               times=2)
    for _ in range(2):
        request = tg.send_photo(alice, chat, make_image(), "/colorize")
        answer = await tg.wait_for_call(
            "sendMessage", lambda c, r=request: replied_to(c) == r["message_id"]
            and "admins have been told" in c.params["text"],
        )
        assert "Nothing was charged" in answer.params["text"]
    await harness.settled()
    alerts = [c for c in tg.calls_to("sendMessage")
              if str(c.params["chat_id"]) == str(ADMIN_ID) and "Arrearage" in c.params["text"]]
    assert len(alerts) == 1
    assert await harness.services.store.quota_status(1) is not None
    assert (await harness.services.store.quota_status(1)).used == 0


async def test_queued_status_shows_the_position_moving_up(harness: Harness) -> None:
    tg = harness.telegram
    harness.emulator.slow_next("submit", 0.4, times=8)
    for user_id in range(1, 8):
        user = harness.user(user_id)
        last = tg.send_photo(user, tg.private_chat(user), make_image(), "/colorize")
        first_status = await harness.reply_to(last)  # accepted one after the other
    assert "position" in first_status.params["text"]
    shown = int(first_status.params["text"].split("position ")[1].split(".")[0])
    assert shown > 1
    moved = await tg.wait_for_call(
        "editMessageText",
        lambda c: int(c.params["message_id"]) == first_status.result["message_id"]
        and str(c.params["chat_id"]) == str(last["chat"]["id"])
        and "position" in c.params["text"],
    )
    assert int(moved.params["text"].split("position ")[1].split(".")[0]) < shown
    await harness.settled(timeout=20)


async def test_a_non_image_file_without_caption_is_not_offered_actions(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    document = tg.send_document(
        alice, tg.private_chat(alice), b"PK\x03\x04 zip", file_name="a.zip",
        mime_type="application/zip",
    )
    answer = await harness.reply_to(document)
    assert "not a picture" in answer.params["text"]
    assert "reply_markup" not in answer.params
    assert not tg.calls_to("getFile")


async def test_admin_targets_by_reply_and_explains_mistakes(harness: Harness) -> None:
    tg = harness.telegram
    admin = harness.user(ADMIN_ID, "Root")
    alice = harness.user(1, "Alice", username="alice")
    group = tg.group_chat(-100900)
    said = tg.send_text(alice, group, "/quota@BailianTestBot")
    await harness.reply_to(said)
    store = harness.services.store

    async def admin_says(text: str, reply_to: dict[str, Any] | None = None) -> str:
        message = tg.send_text(admin, group, text, reply_to=reply_to)
        return str((await harness.reply_to(message)).params["text"])

    assert "Granted" in await admin_says("/grant 2", reply_to=said)
    assert (await store.quota_status(1)).granted == 2
    assert "Granted" in await admin_says("/grant -1", reply_to=said)
    assert (await store.quota_status(1)).granted == 1
    assert "Unknown user" in await admin_says("/setquota @nobody 3")
    assert "Usage: /setquota" in await admin_says("/setquota @alice lots")
    assert "Name the user" in await admin_says("/ban")
    assert "cannot be banned" in await admin_says(f"/ban {ADMIN_ID}")
    assert "12" in await admin_says("/setquota @alice 12")
    assert (await store.quota_status(1)).limit == 12
    await admin_says("/setquota @alice default")
    assert (await store.quota_status(1)).limit == 5
    assert "Usage: /usage" in await admin_says("/usage 2026-13")
    log = await store.audit_log()
    assert [entry.action for entry in log][:2] == ["set_limit", "set_limit"]
