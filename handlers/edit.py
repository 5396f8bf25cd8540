"""Edit requests: a command in a photo's caption or replying to a photo; photos without one."""

from __future__ import annotations

import html
import logging
import re

from telegram import Update
from telegram.constants import ChatType

from bot.callback_data import PickAction, PickStyle
from bot.commands import (
    Command,
    LocalStyle,
    ParsedCommand,
    command_name,
    parse_command,
    split_command,
    suggest_command,
)
from bot.conversations import PendingCommand, Pick
from bot.errors import CommandParseError
from bot.jobs import Requester
from bot.ports import Button, Keyboard
from bot.services import BotContext
from bot.texts import render_error, text
from handlers.common import ImageRef, image_of, looks_like_image, reply, requester
from handlers.masks import ask_for_mask, end_wait_for_command, mask_received, still_waiting

logger = logging.getLogger(__name__)

# Actions offered under a photo sent without a caption: the ones that need no prompt.
QUICK_ACTIONS = (
    Command.UPSCALE, Command.COLORIZE, Command.DEWATERMARK, Command.LOCALSTYLE, Command.ERASE,
)


async def on_command(update: Update, context: BotContext) -> None:
    """A ``/command`` as a text or a caption: run it on its photo or the photo it replies to."""
    message = update.message
    assert message is not None
    services = context.services
    content = message.caption or message.text or ""
    try:
        parsed = parse_command(content, services.bot_username)
    except CommandParseError as exc:
        who = await requester(update, context, message)
        await reply(message, context, render_error(exc, who.lang))
        return
    if parsed is None:
        private = message.chat.type == ChatType.PRIVATE
        if split_command(content, services.bot_username) is None and _addressed_to_us(
            content, services.bot_username, private
        ):
            who = await requester(update, context, message)
            name = command_name(content)
            suggestion = suggest_command(name) if name else None
            if name and suggestion:
                await reply(message, context, text("unknown_command_suggest", who.lang,
                                                   command=html.escape(name),
                                                   suggestion=suggestion))
                return
            await reply(message, context, text("unknown_command", who.lang,
                                               command=html.escape(name or content[:32])))
        return
    await end_wait_for_command(update, context, message)  # a new command: the mask is not coming
    source = image_of(message) or image_of(message.reply_to_message)
    who = await requester(update, context, message)
    if source is None:
        # From the menu, or typed alone: the person's next photo here runs it.
        await services.conversations.start_pending_command(PendingCommand(
            user_id=who.user_id, chat_id=who.chat_id, parsed=parsed,
            request_message_id=who.message_id,
        ))
        await reply(message, context,
                    text("send_photo_now", who.lang, command=parsed.command.value))
        return
    await run_command(context, who, parsed, source)


async def on_image(update: Update, context: BotContext) -> None:
    """An image without a command: a mask someone waits for, else (private) an edit or a menu."""
    message = update.message
    user = update.effective_user
    assert message is not None and user is not None
    image = image_of(message)
    assert image is not None
    conversations = context.services.conversations
    wait = await conversations.mask_wait(message.chat_id, user.id)
    if wait is not None:
        await mask_received(update, context, message, wait, image)
        return
    if looks_like_image(message):
        pending = await conversations.take_pending_command(message.chat_id, user.id)
        if pending is not None:
            who = await requester(update, context, message)
            await run_command(context, who, pending.parsed, image)
            return
    if message.chat.type != ChatType.PRIVATE:
        return  # in groups the bot answers commands and mask replies only
    who = await requester(update, context, message)
    caption = message.caption or ""
    if not caption.strip() and not looks_like_image(message):
        await reply(message, context, text("image_not_image", who.lang))
        return
    await new_photo(context, who, image, caption)


async def on_reply_text(update: Update, context: BotContext) -> None:
    """Words replying to an image: an /edit of it. In a group only when they name the bot."""
    message = update.message
    assert message is not None and message.text is not None
    source = image_of(message.reply_to_message)
    assert source is not None
    words = message.text
    if message.chat.type != ChatType.PRIVATE:
        words, named = _without_mention(words, context.services.bot_username)
        if not named:
            return  # group talk about a photo, not a request to the bot
    if await still_waiting(update, context, message):
        return
    who = await requester(update, context, message)
    if not words.strip():
        await reply(message, context, text("private_hint", who.lang))
        return
    try:
        parsed = parse_command(f"/edit {words}", context.services.bot_username)
    except CommandParseError as exc:
        await reply(message, context, render_error(exc, who.lang))
        return
    assert parsed is not None
    await run_command(context, who, parsed, source)


def _without_mention(words: str, bot_username: str) -> tuple[str, bool]:
    """The words with ``@bot`` taken out, and whether it was there (any case)."""
    mention = re.compile(rf"(?<!\w)@{re.escape(bot_username.lstrip('@'))}\b", re.IGNORECASE)
    stripped, count = mention.subn(" ", words)
    return " ".join(stripped.split()), count > 0


async def on_private_text(update: Update, context: BotContext) -> None:
    """Plain text in a private chat: how to ask for an edit."""
    message = update.message
    assert message is not None
    if await still_waiting(update, context, message):
        return
    who = await requester(update, context, message)
    await reply(message, context, text("private_hint", who.lang))


def _addressed_to_us(content: str, bot_username: str, private: bool) -> bool:
    """In groups, answer an unknown command only if it names this bot."""
    first = content.split(maxsplit=1)[0] if content.strip() else ""
    if "@" in first:
        return first.split("@", 1)[1].lower() == bot_username.lower()
    return private


async def new_photo(context: BotContext, who: Requester, image: ImageRef, caption: str) -> None:
    """An image the person says is a new photo (not the mask /erase waits for): in a private
    chat its caption is an /edit, no caption gets the actions keyboard; groups need a command."""
    if who.is_group:
        return
    if not caption.strip():
        await offer_actions(context, who, image)
        return
    try:
        parsed = parse_command(f"/edit {caption}", context.services.bot_username)
    except CommandParseError as exc:
        await context.services.messenger.send_text(who.chat_id, render_error(exc, who.lang),
                                                   reply_to=who.message_id)
        return
    assert parsed is not None
    await run_command(context, who, parsed, image)


async def run_command(
    context: BotContext, who: Requester, parsed: ParsedCommand, source: ImageRef
) -> None:
    """Start what a parsed command asks for, on the image it refers to."""
    if parsed.command is Command.LOCALSTYLE and parsed.style is None:
        await offer_styles(context, who, source, parsed)
    elif parsed.command is Command.ERASE and not parsed.boxes:  # box= is the mask already
        await ask_for_mask(context, who, parsed, source)
    else:
        await context.services.jobs.accept(who, parsed, source.file_id)


async def offer_styles(
    context: BotContext, who: Requester, source: ImageRef, parsed: ParsedCommand
) -> None:
    """/localstyle without a style: a keyboard of the eight, after naming a word that was meant
    as a style and is none of them."""
    styles = list(LocalStyle)
    keyboard: Keyboard = tuple(
        tuple(Button(style.label(who.lang.value), PickStyle(style).encode())
              for style in styles[start:start + 2])
        for start in range(0, len(styles), 2)
    )
    question = text("pick_style", who.lang)
    if parsed.unknown_style:
        notice = text("localstyle_unknown_style", who.lang,
                      style=html.escape(parsed.unknown_style))
        question = f"{notice}\n{question}"
    await _offer(context, who, source, question, keyboard, parsed)


async def offer_actions(context: BotContext, who: Requester, source: ImageRef) -> None:
    """A photo without a caption in a private chat: what shall we do with it?"""
    buttons = [Button(text(f"cmd_{c.value}", who.lang), PickAction(c).encode())
               for c in QUICK_ACTIONS]
    keyboard: Keyboard = tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))
    await _offer(context, who, source, text("pick_action", who.lang), keyboard, None)


async def _offer(
    context: BotContext, who: Requester, source: ImageRef, question: str, keyboard: Keyboard,
    parsed: ParsedCommand | None,
) -> None:
    services = context.services
    message_id = await services.messenger.send_text(
        who.chat_id, question, reply_to=who.message_id, keyboard=keyboard
    )
    await services.conversations.put_pick(message_id, Pick(
        user_id=who.user_id, chat_id=who.chat_id, file_id=source.file_id,
        request_message_id=source.message_id, parsed=parsed,
    ))
