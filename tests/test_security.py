"""Security: secrets stay on their side and out of the logs; users cannot act for each other.

Everything runs end to end: the real Application against the fake Bot API and the emulator.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import pytest

from bot.logging_setup import setup_logging
from storage.models import JobState
from tests.harness import ADMIN_ID, API_KEY, Harness, make_image, make_mask, wait_until

pytestmark = pytest.mark.slow

ALICE, BOB = 1, 2


# --- secret hygiene ------------------------------------------------------------------------------


@pytest.fixture
def bot_log() -> Iterator[io.StringIO]:
    """The bot's own log handler, as ``python -m bot`` installs it, writing into a buffer.

    The token and key are given to setup_logging by the test (they are fixed by the fakes), at
    DEBUG so every library's chatter is seen. Restores the root logger afterwards.
    """
    from bot.offline.bot_api import FakeTelegram

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    setup_logging("DEBUG", (FakeTelegram().token, API_KEY))
    handler = next(h for h in root.handlers if getattr(h, "_bailian_bot", False))
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def request_body(harness: Harness, endpoint: str) -> dict[str, Any]:
    body = harness.emulator.requests_to(endpoint)[0].body
    assert isinstance(body, dict)
    return cast(dict[str, Any], body)


def _markup(call: Any) -> dict[str, Any]:
    markup = call.params["reply_markup"]
    return cast(dict[str, Any], json.loads(markup) if isinstance(markup, str) else markup)


async def _full_run(harness: Harness) -> None:
    """One of everything: qwen, wanx album, erase with a mask, buttons, failures, alerts."""
    tg, emulator = harness.telegram, harness.emulator
    admin = harness.user(ADMIN_ID, "Root")
    alice = harness.user(ALICE, "Alice", username="alice")
    chat = tg.private_chat(alice)
    await harness.reply_to(tg.send_text(alice, chat, "/quota"))
    await harness.reply_to(tg.send_text(admin, tg.private_chat(admin), "/setquota @alice 50"))
    edit = tg.send_photo(alice, chat, make_image(), "/edit make the sky red")
    await harness.reply_to(edit, "sendPhoto")
    album = tg.send_photo(alice, chat, make_image(), "/colorize n=2")
    await harness.reply_to(album, "sendMediaGroup")
    erase = tg.send_photo(alice, chat, make_image(640, 480), "/erase a vase")
    await harness.reply_to(erase)
    tg.send_photo(alice, chat, make_mask(640, 480))
    sent = await harness.reply_to(erase, "sendPhoto")
    await harness.settled()
    upscale = next(
        b["callback_data"] for b in _markup(sent)["inline_keyboard"][0]
        if b["callback_data"].startswith("up:")
    )
    tg.press_button(alice, tg.bot_message(chat["id"], int(sent.result["message_id"])), upscale)
    await wait_until(lambda: len(emulator.requests_to("submit")) == 3)
    await harness.settled()
    # Failures: a failed task, a Telegram 500 on the status message, an invalid key.
    emulator.script_next_task("failed")
    tg.fail_next("sendMessage", chat_id=ALICE)
    tg.send_photo(alice, chat, make_image(), "/dewatermark")
    await tg.wait_for_call("sendMessage", lambda c: "failed" in c.params.get("text", ""))
    await harness.settled()
    emulator.fail_next("submit", 401, "InvalidApiKey", "Invalid API-key provided.")
    tg.send_photo(alice, chat, make_image(), "/colorize")
    await tg.wait_for_call(  # the account alert (not the "bot started" one)
        "sendMessage", lambda c: str(c.params["chat_id"]) == str(ADMIN_ID)
        and "InvalidApiKey" in c.params.get("text", "")
    )
    await harness.settled()
    assert len(emulator.requests_to("submit")) >= 5


async def test_secrets_never_cross_over_nor_reach_the_logs(
    harness: Harness, bot_log: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _full_run(harness)
    token = harness.telegram.token
    secret_part = token.split(":", 1)[1]  # the part that grants access
    assert token != API_KEY and secret_part not in API_KEY

    dashscope_side = [
        json.dumps([r.method, r.path, r.headers, r.body], default=str)
        for r in harness.emulator.requests
    ]
    assert len(dashscope_side) >= 10
    assert not [r for r in dashscope_side if secret_part in r]
    # The key is sent, and only as the Authorization header of API calls.
    api_calls = [r for r in harness.emulator.requests if r.endpoint != "result"]
    assert all(r.headers.get("Authorization") == f"Bearer {API_KEY}" for r in api_calls)
    downloads = harness.emulator.requests_to("result")
    assert downloads and not [r for r in downloads if API_KEY in json.dumps(r.headers)]

    telegram_side = harness.telegram.requests_raw
    assert len(telegram_side) >= 20
    for raw in telegram_side:
        assert API_KEY not in raw.url
        assert API_KEY not in json.dumps(raw.headers)
        assert API_KEY.encode() not in raw.body

    log_text = bot_log.getvalue()
    assert "InvalidApiKey" in log_text or "job" in log_text  # the handler did see the run
    assert secret_part not in log_text and API_KEY not in log_text
    # Stronger: no record carries a secret even before the masking filter runs.
    for record in caplog.records:
        rendered = record.getMessage() + (record.exc_text or "")
        assert secret_part not in rendered, rendered
        assert API_KEY not in rendered, rendered


# --- admin commands --------------------------------------------------------------------------


ADMIN_COMMANDS = [
    "/setquota @bob 100",
    "/setquota 2 default",
    "/grant 2 50",
    "/grant @alice 50",
    "/ban @bob",
    "/unban @carol",
    "/usage",
    "/usage 2026-01",
    "/queue",
]


@pytest.mark.parametrize("chat_kind", ["private", "group"])
async def test_admin_commands_from_non_admins_change_nothing(
    harness: Harness, chat_kind: str
) -> None:
    tg, store = harness.telegram, harness.services.store
    alice = harness.user(ALICE, "Alice", username="alice")
    bob = harness.user(BOB, "Bob", username="bob")
    carol = harness.user(3, "Carol", username="carol")
    for user in (alice, bob, carol):
        await harness.reply_to(tg.send_text(user, tg.private_chat(user), "/quota"))
    admin = harness.user(ADMIN_ID, "Root")
    ban = tg.send_text(admin, tg.private_chat(admin), "/ban @carol")
    await harness.reply_to(ban)
    before = [await store.quota_status(uid) for uid in (ALICE, BOB, 3)]
    banned_before = [(await store.get_user(uid)).banned for uid in (ALICE, BOB, 3)]  # type: ignore[union-attr]
    chat = tg.private_chat(alice) if chat_kind == "private" else tg.group_chat(-100900)
    for command in ADMIN_COMMANDS:
        message = tg.send_text(alice, chat, command.replace(" ", "@BailianTestBot ", 1)
                               if chat_kind == "group" and " " in command else command)
        answer = await harness.reply_to(message)
        assert answer.params["text"] == "Only admins can use this command."
    # By reply to Bob's message too (the form that names no user).
    bob_says = tg.send_text(bob, tg.group_chat(-100901), "hi")
    for command in ("/ban", "/grant 10", "/setquota 99"):
        message = tg.send_text(alice, tg.group_chat(-100901), command, reply_to=bob_says)
        answer = await harness.reply_to(message)
        assert answer.params["text"] == "Only admins can use this command."
    after = [await store.quota_status(uid) for uid in (ALICE, BOB, 3)]
    banned_after = [(await store.get_user(uid)).banned for uid in (ALICE, BOB, 3)]  # type: ignore[union-attr]
    assert after == before
    assert banned_after == banned_before == [False, False, True]


# --- buttons ---------------------------------------------------------------------------------


async def _alices_result(harness: Harness) -> tuple[int, dict[str, Any]]:
    """Alice's delivered /colorize in a group: (job id, the result message)."""
    tg = harness.telegram
    alice = harness.user(ALICE, "Alice")
    group = tg.group_chat(-100600)
    photo = tg.send_photo(alice, group, make_image())
    request = tg.send_text(alice, group, "/colorize@BailianTestBot", reply_to=photo)
    sent = await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    job_id = int(_markup(sent)["inline_keyboard"][0][0]["callback_data"].split(":")[1])
    return job_id, tg.bot_message(group["id"], int(sent.result["message_id"]))


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        ("again:{job}", "someone else"),
        ("up:{job}:0", "someone else"),
        ("again:{job}", "someone else"),  # replayed once more
        ("again:999999", "expired"),
        ("again:-1", "expired"),
        ("again:1e3", "expired"),
        ("up:{job}", "someone else"),
        ("up:{job}:x", "someone else"),
        ("pick:upscale", "expired"),
        ("pick:ls:ice", "expired"),
        ("drop:table", "expired"),
        ("", "expired"),
    ],
)
async def test_forged_or_replayed_buttons_are_refused(
    harness: Harness, data: str, answer: str
) -> None:
    """Bob presses buttons carrying Alice's job id: on her message and forged on his own."""
    tg = harness.telegram
    job_id, result = await _alices_result(harness)
    bob = harness.user(BOB, "Bob")
    own = tg.send_text(bob, tg.private_chat(bob), "/quota")
    bob_message = tg.bot_message(BOB, int((await harness.reply_to(own)).result["message_id"]))
    forged = data.format(job=job_id)
    for message in (result, bob_message):
        tg.press_button(bob, message, forged)
        refusal = await tg.wait_for_call("answerCallbackQuery")
        assert answer in refusal.params["text"], refusal.params
    assert len(harness.emulator.requests_to("submit")) == 1
    assert (await harness.services.store.quota_status(BOB)).used == 0
    assert (await harness.services.store.quota_status(ALICE)).used == 1


async def test_someone_elses_action_keyboard_is_refused(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(ALICE, "Alice")
    bob = harness.user(BOB, "Bob")
    group = tg.group_chat(-100601)
    await harness.reply_to(tg.send_text(alice, tg.private_chat(alice), "/quota"))
    request = tg.send_photo(alice, group, make_image(), "/localstyle@BailianTestBot")
    keyboard = await harness.reply_to(request)
    message = tg.bot_message(group["id"], int(keyboard.result["message_id"]))
    tg.press_button(bob, message, "pick:ls:ice")
    refusal = await tg.wait_for_call("answerCallbackQuery")
    assert "someone else" in refusal.params["text"]
    tg.press_button(alice, message, "pick:ls:ice")
    await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    tg.press_button(alice, message, "pick:ls:ice")  # replayed by its owner: already used
    replay = await tg.wait_for_call("answerCallbackQuery", lambda c: "text" in c.params)
    assert "expired" in replay.params["text"]
    assert len(harness.emulator.requests_to("submit")) == 1
    assert (await harness.services.store.quota_status(BOB)).used == 0


# --- masks -----------------------------------------------------------------------------------


async def test_another_users_image_is_never_a_mask(harness: Harness) -> None:
    """Private: Bob's photo in his own chat; group: Bob's photo, plain and as a reply."""
    tg = harness.telegram
    alice = harness.user(ALICE, "Alice")
    bob = harness.user(BOB, "Bob")
    private = tg.send_photo(alice, tg.private_chat(alice), make_image(640, 480), "/erase")
    await harness.reply_to(private)
    group = tg.group_chat(-100602)
    in_group = tg.send_photo(alice, group, make_image(640, 480), "/erase@BailianTestBot")
    ask = await harness.reply_to(in_group)
    ask_message = tg.bot_message(group["id"], int(ask.result["message_id"]))

    bobs_photo = tg.send_photo(bob, tg.private_chat(bob), make_mask(640, 480))
    offered = await harness.reply_to(bobs_photo)  # his own photo: the action keyboard
    assert "What shall I do" in offered.params["text"]
    tg.send_photo(bob, group, make_mask(640, 480))
    tg.send_photo(bob, group, make_mask(640, 480), reply_to=ask_message)
    tg.send_document(bob, group, make_mask(640, 480), file_name="m.png", caption="here")
    await harness.reply_to(tg.send_text(bob, tg.private_chat(bob), "/quota"))
    assert not harness.emulator.requests
    assert [await harness.services.conversations.mask_wait(c, ALICE) for c in (ALICE, group["id"])]

    # Alice's own masks, each in its chat, are taken.
    tg.send_photo(alice, tg.private_chat(alice), make_mask(640, 480))
    tg.send_photo(alice, group, make_mask(640, 480), reply_to=ask_message)
    await harness.reply_to(private, "sendPhoto")
    await harness.reply_to(in_group, "sendPhoto")
    await harness.settled()
    jobs = [await harness.services.store.get_job(i) for i in (1, 2)]
    assert {job.user_id for job in jobs} == {ALICE}
    assert all(job.state is JobState.DELIVERED for job in jobs)
    assert (await harness.services.store.quota_status(BOB)).used == 0


# --- hostile names and prompts -------------------------------------------------------------------

HOSTILE_NAME = "<b>Bob</b> & <i>\"x\"</i>'); DROP TABLE users;-- *bold* _it_ [a](tg://x)"
HOSTILE_USERNAME = "robert');DROP_TABLE_users;--"
HOSTILE_PROMPT = "'; DROP TABLE jobs;-- <b>x</b> &amp; *y* _z_ `c` [l](http://e) <script>"


def _shown(call: Any) -> str:
    """What the user sees: the fake parsed the HTML (a parse error is a 400, not a message)."""
    assert call.response["ok"], call.response
    return str(call.result.get("text") or call.result.get("caption") or "")


async def test_hostile_names_and_prompts_are_stored_and_echoed_literally(
    harness: Harness,
) -> None:
    tg, store = harness.telegram, harness.services.store
    bob = harness.user(BOB, HOSTILE_NAME, username=HOSTILE_USERNAME)
    chat = tg.private_chat(bob)
    request = tg.send_photo(bob, chat, make_image(), f"/edit {HOSTILE_PROMPT}")
    await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    body = request_body(harness, "qwen")
    assert {"text": HOSTILE_PROMPT} in body["input"]["messages"][0]["content"]
    stored = await store.get_user(BOB)
    assert stored is not None
    assert (stored.display_name, stored.username) == (HOSTILE_NAME, HOSTILE_USERNAME)
    job = await store.get_job(1)
    assert HOSTILE_PROMPT in job.spec_json or json.dumps(HOSTILE_PROMPT) in job.spec_json

    bad_value = tg.send_photo(bob, chat, make_image(), "/colorize n=<b>1</b>&amp;")
    assert "(you wrote <b>1</b>&amp;)" in _shown(await harness.reply_to(bad_value))
    unknown = tg.send_text(bob, chat, "/paint<i>x</i> now")
    assert _shown(await harness.reply_to(unknown))  # answered (a hint), parsed without error

    carol = harness.user(3, HOSTILE_NAME)  # no username: /usage shows the display name
    carols = tg.send_photo(carol, tg.private_chat(carol), make_image(), "/edit brighter")
    await harness.reply_to(carols, "sendPhoto")
    await harness.settled()

    admin = harness.user(ADMIN_ID, "Root")
    admin_chat = tg.private_chat(admin)
    usage = _shown(await harness.reply_to(tg.send_text(admin, admin_chat, "/usage")))
    assert f"@{HOSTILE_USERNAME}" in usage
    assert HOSTILE_NAME in usage
    grant = tg.send_text(admin, admin_chat, f"/grant @{HOSTILE_USERNAME} 2")
    assert f"@{HOSTILE_USERNAME}" in _shown(await harness.reply_to(grant))
    assert (await store.quota_status(BOB)).granted == 2
    missing = tg.send_text(admin, admin_chat, "/ban @<script>alert(1)</script>")
    assert "@<script>alert(1)</script>" in _shown(await harness.reply_to(missing))
    # The tables are all still there and the bot still answers.
    assert (await store.quota_status(BOB)).used == 1
    await harness.reply_to(tg.send_text(bob, chat, "/quota"))
    # (The admin had no chat with the bot when it started: its start alert and admin menu
    # were refused by Telegram, as they would be.)
    assert not [c for c in tg.calls if not c.response.get("ok", True)
                and c.method != "getUpdates"
                and str(c.params.get("chat_id")) != str(ADMIN_ID)
                and c.method != "setMyCommands"]


@pytest.mark.parametrize("index", ["-1", "1", "+0", "٠"])
async def test_forged_result_index_is_refused_for_the_owner_too(
    harness: Harness, index: str
) -> None:
    """Only the indices the bot put on its buttons are valid (no negative or non-ASCII ones)."""
    tg = harness.telegram
    job_id, result = await _alices_result(harness)
    alice = harness.users[ALICE]
    tg.press_button(alice, result, f"up:{job_id}:{index}")
    refusal = await tg.wait_for_call("answerCallbackQuery")
    assert "expired" in refusal.params["text"]
    assert len(harness.emulator.requests_to("submit")) == 1
