"""The Telegram fake speaks the Bot API well enough for real python-telegram-bot to use it."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    ReplyParameters,
    Update,
    WebAppInfo,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.offline.bot_api import FakeTelegram

MB = 1024 * 1024


def png(width: int = 64, height: int = 48, color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def make_bot(fake: FakeTelegram, token: str | None = None) -> Bot:
    return Bot(
        token or fake.token,
        base_url=f"{fake.root_url}/bot",
        base_file_url=f"{fake.root_url}/file/bot",
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.close()
    assert server.internal_errors == []


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with make_bot(fake) as client:
        yield client


@pytest.fixture
def keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again:1")]])


async def test_get_me_and_raw_error_bodies(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "BailianTestBot", True)

    async with aiohttp.ClientSession() as session:
        wrong = await session.post(f"{fake.root_url}/bot999:nope/getMe")
        assert wrong.status == 401
        assert await wrong.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
        unknown = await session.post(f"{fake.root_url}/bot{fake.token}/frobnicate", json={})
        assert unknown.status == 404
        assert await unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        # A JSON body is accepted too (PTB itself sends forms).
        chat = fake.private_chat(fake.user(7))
        sent = await session.post(
            f"{fake.root_url}/bot{fake.token}/sendMessage",
            json={"chat_id": chat["id"], "text": "123"},
        )
        assert (await sent.json())["result"]["text"] == "123"

    assert [c.token_ok for c in fake.calls_to("getme")] == [True, True, False]
    assert any("999:nope" in raw.url for raw in fake.requests_raw)
    with pytest.raises(InvalidToken):
        async with make_bot(fake, token="42:wrong"):
            pass


async def test_send_message_replies_and_formatting(fake: FakeTelegram, bot: Bot) -> None:
    alice = fake.user(1001, username="alice")
    chat = fake.private_chat(alice)
    incoming = fake.send_text(alice, chat, "/start now")
    assert incoming["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]

    reply = await bot.send_message(
        chat["id"],
        "<b>Hi</b> &amp; welcome 🎨 <i>there</i>",
        parse_mode=ParseMode.HTML,
        reply_parameters=ReplyParameters(incoming["message_id"]),
    )
    assert reply.text == "Hi & welcome 🎨 there"
    assert [(e.type, e.offset, e.length) for e in reply.entities] == [
        ("bold", 0, 2),
        ("italic", 16, 5),  # the emoji counts two UTF-16 units
    ]
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == incoming["message_id"]
    assert reply.message_id == incoming["message_id"] + 1

    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(chat["id"], "x", reply_parameters=ReplyParameters(999))
    loose = await bot.send_message(
        chat["id"], "x", reply_parameters=ReplyParameters(999, allow_sending_without_reply=True)
    )
    assert loose.reply_to_message is None

    fake.delete_user_message(chat["id"], incoming["message_id"])
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(
            chat["id"], "late", reply_parameters=ReplyParameters(incoming["message_id"])
        )
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(chat["id"], "<blink>x</blink>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)Character '.' is reserved"):
        await bot.send_message(chat["id"], "Done.", parse_mode=ParseMode.MARKDOWN_V2)
    escaped = await bot.send_message(chat["id"], r"*Done*\.", parse_mode=ParseMode.MARKDOWN_V2)
    assert escaped.text == "Done."
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(555, "nobody")
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(chat["id"], " ")
    assert [m["message_id"] for m in fake.messages_in(chat["id"])] == [2, 3, 4]


async def test_photo_upload_sizes_and_download(fake: FakeTelegram, bot: Bot) -> None:
    chat = fake.private_chat(fake.user(1002))
    image = png(640, 480)
    sent = await bot.send_photo(chat["id"], image, caption="Result")
    assert len(sent.photo) == 3
    largest = sent.photo[-1]
    assert (largest.width, largest.height, largest.file_size) == (640, 480, len(image))
    assert max(sent.photo[0].width, sent.photo[0].height) <= 90
    assert fake.file_bytes(largest.file_id) == image
    assert sent.caption == "Result"
    upload = fake.calls_to("sendPhoto")[0].files["photo"]
    assert upload.data == image

    file = await bot.get_file(largest.file_id)
    assert bytes(await file.download_as_bytearray()) == image
    fake.fail_next(FakeTelegram.DOWNLOAD, error_code=502, description="Bad Gateway")
    with pytest.raises(NetworkError, match=r"(?i)bad gateway"):
        await file.download_as_bytearray()
    buffer = io.BytesIO()
    await file.download_to_memory(buffer)
    assert buffer.getvalue() == image

    with pytest.raises(BadRequest, match=r"(?i)PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(chat["id"], png(9000, 1500))
    with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(chat["id"], b"not an image")
    resent = await bot.send_photo(chat["id"], largest.file_id)
    assert resent.photo[-1].file_id == largest.file_id


async def test_user_photo_and_file_limits(fake: FakeTelegram, bot: Bot) -> None:
    alice = fake.user(1003)
    chat = fake.private_chat(alice)
    image = png(800, 600, "blue")
    message = fake.send_photo(alice, chat, image, caption="/edit make it green")
    sizes = message["photo"]
    assert [(s["width"], s["height"]) for s in sizes] == [(90, 68), (320, 240), (800, 600)]
    assert message["caption_entities"][0] == {"type": "bot_command", "offset": 0, "length": 5}
    assert fake.file_bytes(sizes[-1]["file_id"]) == image
    with Image.open(io.BytesIO(fake.file_bytes(sizes[0]["file_id"]))) as thumbnail:
        assert thumbnail.size == (90, 68)

    big_id, _ = fake.add_file(b"tiny", file_size=25 * MB)
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await bot.get_file(big_id)
    document = fake.send_document(alice, chat, b"%PDF", file_name="a.pdf", mime_type="x/pdf")
    assert document["document"]["file_name"] == "a.pdf"
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nonsense")


async def test_documents_and_media_groups(fake: FakeTelegram, bot: Bot) -> None:
    chat = fake.private_chat(fake.user(1004))
    data = png(30, 30)
    document = await bot.send_document(chat["id"], data, filename="result.png", caption="HD")
    assert document.document is not None
    assert (document.document.file_name, document.document.mime_type) == (
        "result.png",
        "image/png",
    )
    assert fake.file_bytes(document.document.file_id) == data

    first, second = png(100, 50, "green"), png(50, 100, "yellow")
    album = await bot.send_media_group(
        chat["id"],
        [InputMediaPhoto(first, caption="1 of 2"), InputMediaPhoto(second)],
    )
    assert len(album) == 2
    assert album[0].media_group_id is not None
    assert album[0].media_group_id == album[1].media_group_id
    assert album[0].caption == "1 of 2"
    assert (album[1].photo[-1].width, album[1].photo[-1].height) == (50, 100)
    assert fake.file_bytes(album[0].photo[-1].file_id) == first
    call = fake.calls_to("sendMediaGroup")[0]
    assert all(item["media"].startswith("attach://") for item in call.params["media"])
    assert len(call.files) == 2
    with pytest.raises(BadRequest, match=r"(?i)from 2 to 10"):
        await bot.send_media_group(chat["id"], [InputMediaPhoto(first)])


async def test_edits_and_deletes(
    fake: FakeTelegram, bot: Bot, keyboard: InlineKeyboardMarkup
) -> None:
    chat = fake.private_chat(fake.user(1005))
    status = await bot.send_message(chat["id"], "Queued", reply_markup=keyboard)
    assert status.reply_markup == keyboard

    edited = await bot.edit_message_text("Working", chat["id"], status.message_id)
    assert isinstance(edited, type(status))
    assert edited.text == "Working"
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # an edit without reply_markup drops the keyboard
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Working", chat["id"], status.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat["id"], 4242)
    with pytest.raises(BadRequest, match=r"(?i)there is no caption"):
        await bot.edit_message_caption(chat["id"], status.message_id, caption="c")
    marked = await bot.edit_message_reply_markup(
        chat["id"], status.message_id, reply_markup=keyboard
    )
    assert not isinstance(marked, bool)
    assert marked.reply_markup == keyboard

    assert fake.bot_message(chat["id"], status.message_id)["text"] == "Working"
    assert [m.get("text") for m in fake.message_versions(chat["id"])] == [
        "Queued",
        "Working",
        "Working",
    ]
    photo = await bot.send_photo(chat["id"], png(), caption="old")
    recaptioned = await bot.edit_message_caption(chat["id"], photo.message_id, caption="new")
    assert not isinstance(recaptioned, bool)
    assert recaptioned.caption == "new"

    assert await bot.delete_message(chat["id"], status.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(chat["id"], status.message_id)
    assert [m["message_id"] for m in fake.messages_in(chat["id"])] == [photo.message_id]
    copied = await bot.copy_message(chat["id"], chat["id"], photo.message_id)
    assert fake.bot_message(chat["id"], copied.message_id)["caption"] == "new"


async def test_commands_actions_and_callbacks(
    fake: FakeTelegram, bot: Bot, keyboard: InlineKeyboardMarkup
) -> None:
    alice = fake.user(1006)
    chat = fake.private_chat(alice)
    commands = [BotCommand("start", "Start"), BotCommand("edit", "Edit a photo")]
    assert await bot.set_my_commands(commands)
    assert await bot.set_my_commands(
        [BotCommand("start", "开始")], scope=BotCommandScopeAllPrivateChats(), language_code="zh"
    )
    assert tuple(await bot.get_my_commands()) == tuple(commands)
    assert fake.commands({"type": "all_private_chats"}, "zh") == [
        {"command": "start", "description": "开始"}
    ]
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])

    assert await bot.send_chat_action(chat["id"], "upload_photo")
    with pytest.raises(BadRequest, match=r"(?i)wrong parameter action"):
        await bot.send_chat_action(chat["id"], "dancing")

    message = await bot.send_message(chat["id"], "Pick", reply_markup=keyboard)
    query = fake.press_button(alice, message.to_dict(), "again:1")
    updates = await bot.get_updates(timeout=0)
    assert updates[-1].callback_query is not None
    assert updates[-1].callback_query.data == "again:1"
    assert updates[-1].callback_query.message is not None
    assert updates[-1].callback_query.message.message_id == message.message_id
    assert await bot.answer_callback_query(query["id"], text="OK")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query["id"])


async def test_get_updates_long_polling(fake: FakeTelegram, bot: Bot) -> None:
    alice = fake.user(1007)
    chat = fake.private_chat(alice)
    started = time.monotonic()
    assert await bot.get_updates(timeout=0) == ()
    assert time.monotonic() - started < 0.5

    first_id = fake.push_update({"message": fake.send_text(alice, chat, "a")})
    updates = await bot.get_updates(timeout=5)
    assert [u.message.text for u in updates if u.message] == ["a", "a"]
    assert first_id == updates[-1].update_id
    # Confirming with offset drops what came before.
    assert await bot.get_updates(offset=first_id + 1, timeout=0) == ()

    async def push_later() -> None:
        await asyncio.sleep(0.2)
        fake.send_text(alice, chat, "late")

    started = time.monotonic()
    pusher = asyncio.create_task(push_later())
    woken = await bot.get_updates(offset=first_id + 1, timeout=5)
    await pusher
    assert [u.message.text for u in woken if u.message] == ["late"]
    assert 0.15 < time.monotonic() - started < 2

    started = time.monotonic()
    assert await bot.get_updates(offset=woken[-1].update_id + 1, timeout=1) == ()
    assert 0.9 < time.monotonic() - started < 2

    fake.edit_text(alice, chat, woken[-1].message.to_dict(), "edited")  # type: ignore[union-attr]
    fake.send_text(alice, chat, "kept")
    only_messages = await bot.get_updates(timeout=0, allowed_updates=["message"])
    assert [u.message.text for u in only_messages if u.message] == ["kept"]
    limited = await bot.get_updates(timeout=0, limit=1)
    assert len(limited) == 1


async def test_fault_injection_maps_to_ptb_errors(
    fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without it PTB 22 warns about int retry_after while building RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    alice, bob = fake.user(1008), fake.user(1009)
    chat, other = fake.private_chat(alice), fake.private_chat(bob)

    fake.fail_next("sendMessage", error_code=429, description="Too Many Requests", retry_after=7)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(chat["id"], "x")
    assert flood.value.retry_after.total_seconds() == 7  # type: ignore[union-attr]
    assert (await bot.send_message(chat["id"], "x")).text == "x"

    fake.fail_next("sendMessage", times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match=r"(?i)Internal Server Error"):
            await bot.send_message(chat["id"], "x")
    assert await bot.send_message(chat["id"], "x")

    fake.fail_next(
        "sendPhoto", error_code=400, description="Bad Request: boom", chat_id=other["id"]
    )
    assert await bot.send_photo(chat["id"], png())
    with pytest.raises(BadRequest, match=r"(?i)boom"):
        await bot.send_photo(other["id"], png())

    fake.block_bot(bob["id"])
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(other["id"], "x")
    assert await bot.send_message(chat["id"], "still fine")

    fake.drop_next_get_updates()
    with pytest.raises(NetworkError):
        await bot.get_updates(timeout=0)
    assert await bot.get_updates(timeout=0) == ()
    assert len(fake.calls_to("getUpdates")) == 2


async def test_wait_for_call_walks_forward(fake: FakeTelegram, bot: Bot) -> None:
    chat = fake.private_chat(fake.user(1010))
    for text in ("one", "two", "three"):
        await bot.send_message(chat["id"], text)
    assert (await fake.wait_for_call("sendMessage")).params["text"] == "one"
    assert (await fake.wait_for_call("sendMessage")).params["text"] == "two"
    third = await fake.wait_for_call("sendMessage", lambda c: c.params["text"] == "three")
    assert third.params["chat_id"] == chat["id"]
    assert fake.bot_message(chat["id"], third.result["message_id"])["text"] == "three"
    assert third.response["ok"] is True

    waiter = asyncio.create_task(fake.wait_for_call("sendMessage", timeout=2))
    await asyncio.sleep(0.05)
    await bot.send_message(chat["id"], "four")
    assert (await waiter).params["text"] == "four"
    with pytest.raises(AssertionError, match=r"(?i)sendMessage"):
        await fake.wait_for_call("sendMessage", timeout=0.1)


async def test_application_polls_and_replies(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Reply to /start."""
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome!", do_quote=True)

    application = (
        Application.builder()
        .token(fake.token)
        .base_url(f"{fake.root_url}/bot")
        .base_file_url(f"{fake.root_url}/file/bot")
        .build()
    )
    application.add_handler(CommandHandler("start", start))
    alice = fake.user(1011)
    chat = fake.private_chat(alice)
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        try:
            incoming = fake.send_text(alice, chat, "/start")
            reply = await fake.wait_for_call("sendMessage", timeout=5)
        finally:
            await application.updater.stop()
            await application.stop()
    assert reply.params["text"] == "Welcome!"
    assert reply.params["reply_parameters"]["message_id"] == incoming["message_id"]
    assert fake.messages_in(chat["id"])[-1]["text"] == "Welcome!"
    # The last getUpdates confirmed the update, so nothing is pending any more.
    assert fake.calls_to("deleteWebhook")
    assert fake.pending_update_count == 0


async def test_every_fabricated_update_parses_in_ptb(fake: FakeTelegram, bot: Bot) -> None:
    alice = fake.user(1012, "Алиса", username="alice", language_code="ru")
    chat = fake.private_chat(alice)
    group = fake.group_chat(-1001234, "Editors")
    channel = fake.channel_chat(-1005678, "News")
    photo = fake.send_photo(alice, group, png(), caption="/edit@BailianTestBot sky")
    fake.send_document(alice, chat, png(), file_name="big.png", file_size=30 * MB)
    replied = fake.send_text(alice, group, "and this", reply_to=photo)
    fake.edit_text(alice, group, replied, "and that")
    fake.channel_post(channel, "hello channel")
    updates = await bot.get_updates(timeout=0)
    assert len(updates) == 5
    first, second, third, fourth, fifth = updates
    assert first.message is not None
    assert first.message.chat.type == "supergroup"
    assert first.message.caption_entities[0].length == len("/edit@BailianTestBot")
    assert second.message is not None
    assert second.message.document is not None
    assert second.message.document.file_size == 30 * MB
    assert third.message is not None
    assert third.message.reply_to_message is not None
    assert third.message.reply_to_message.photo
    assert fourth.edited_message is not None
    assert fourth.edited_message.text == "and that"
    assert fifth.channel_post is not None
    assert fifth.channel_post.sender_chat is not None
    assert fifth.channel_post.sender_chat.id == channel["id"]
    assert [u.update_id for u in updates] == sorted(u.update_id for u in updates)
    assert [m.get("text") for m in fake.messages_in(group["id"])] == [None, "and that"]


async def test_more_api_rules(fake: FakeTelegram, bot: Bot) -> None:
    chat = fake.private_chat(fake.user(1013))
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(chat["id"], "1 < 2 <b>bold</b>", parse_mode=ParseMode.HTML)
    escaped = await bot.send_message(chat["id"], "1 &lt; 2", parse_mode=ParseMode.HTML)
    assert escaped.text == "1 < 2"
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(chat["id"], "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(chat["id"], b"\x89PNG" + bytes(10 * MB))

    status = await bot.send_photo(chat["id"], png(20, 20, "white"), caption="before")
    swapped = await bot.edit_message_media(
        InputMediaDocument(png(40, 40), filename="full.png", caption="after"),
        chat["id"],
        status.message_id,
    )
    assert not isinstance(swapped, bool)
    assert swapped.document is not None
    assert swapped.document.file_name == "full.png"
    assert swapped.caption == "after"
    assert not swapped.photo

    # Only one getUpdates may wait at a time, as on the real server (PTB gives each Bot a
    # single getUpdates connection, hence a second instance).
    async with make_bot(fake) as second_instance:
        waiting = asyncio.create_task(bot.get_updates(timeout=3))
        while not fake.calls_to("getUpdates"):
            await asyncio.sleep(0.01)
        assert await second_instance.get_updates(timeout=0) == ()
        with pytest.raises(Conflict):
            await waiting


async def test_web_app_buttons_follow_the_api_rules(fake: FakeTelegram, bot: Bot) -> None:
    alice = fake.user(1, "Alice")
    private = fake.private_chat(alice)
    group = fake.group_chat(-100555)

    def keyboard(url: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton("Draw", web_app=WebAppInfo(url))]])

    sent = await bot.send_message(private["id"], "draw",
                                  reply_markup=keyboard("https://bot.example.com/mask?t=x"))
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].web_app == WebAppInfo(
        "https://bot.example.com/mask?t=x")
    # The fake's one allowance: http to the loopback host, for the bot's own test server.
    await bot.send_message(private["id"], "draw", reply_markup=keyboard("http://127.0.0.1:8080/m"))
    with pytest.raises(BadRequest, match=r"(?i)only https links are allowed"):
        await bot.send_message(private["id"], "draw",
                               reply_markup=keyboard("http://bot.example.com/mask"))
    with pytest.raises(BadRequest, match=r"(?i)button_type_invalid"):
        await bot.send_message(group["id"], "draw",
                               reply_markup=keyboard("https://bot.example.com/mask"))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(private["id"], "x", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("x", callback_data="x" * 65)]]))
