"""Albums: a command in an album's caption runs on every image of it (up to ten).

Decisions: an album without a command in a private chat gets one hint (write the command in
the caption, or send the images one at a time), not an actions keyboard under each of its
images; in a group it is ignored, as a single photo is. A command sent alone before runs on the
album. Requests that ask a further question (/erase's mask, /localstyle without a style) or make
several results per image need one image. More than ten images (Telegram never sends more in
one media group) run the first ten and say so.
"""

from __future__ import annotations

import dataclasses

from telegram import Update
from telegram.constants import ChatType

from bot.albums import MAX_ALBUM_IMAGES, AlbumPart
from bot.commands import Command, ParsedCommand, is_command, parse_command
from bot.errors import CommandParseError
from bot.jobs import AlbumImage, Requester
from bot.services import BotContext
from bot.texts import render_error, text
from handlers.common import image_of, requester


async def on_album_part(update: Update, context: BotContext) -> None:
    """One image of an album: gathered with the others; the whole album is handled once."""
    message = update.message
    assert message is not None and message.media_group_id is not None
    image = image_of(message)
    assert image is not None
    part = AlbumPart(update_id=update.update_id, message_id=message.message_id,
                     file_id=image.file_id, caption=message.caption or "")
    parts = await context.services.albums.gather((message.chat_id, message.media_group_id),
                                                 part)
    if parts is None:
        return  # the call of the album's first update handles it (bot/albums.py)
    # The reply goes to the part with the caption; its update keys the album's jobs.
    lead = next((p for p in parts if p.caption.strip()), parts[0])
    who = dataclasses.replace(await requester(update, context, message),
                              message_id=lead.message_id, update_id=lead.update_id)
    private = message.chat.type == ChatType.PRIVATE
    try:
        parsed = await _album_command(context, who, lead.caption, private)
    except CommandParseError as exc:
        await _answer(context, who, render_error(exc, who.lang))
        return
    if parsed is None:
        if private:
            await _answer(context, who, text("album_no_command", who.lang))
        return
    if parsed.n != 1 or parsed.command is Command.ERASE or (
        parsed.command is Command.LOCALSTYLE and parsed.style is None
    ):
        await _answer(context, who, text("album_unsupported", who.lang))
        return
    if len(parts) > MAX_ALBUM_IMAGES:
        await _answer(context, who, text("album_too_many", who.lang, max=MAX_ALBUM_IMAGES))
    images = [AlbumImage(p.file_id, p.update_id) for p in parts[:MAX_ALBUM_IMAGES]]
    await context.services.jobs.accept_album(who, parsed, images)


async def _album_command(
    context: BotContext, who: Requester, caption: str, private: bool
) -> ParsedCommand | None:
    """The caption's command; words alone are an /edit in a private chat; without either, a
    command sent alone before. Raises CommandParseError."""
    services = context.services
    if is_command(caption):
        return parse_command(caption, services.bot_username)
    if caption.strip():
        return parse_command(f"/edit {caption}", services.bot_username) if private else None
    pending = await services.conversations.take_pending_command(who.chat_id, who.user_id)
    return pending.parsed if pending is not None else None


async def _answer(context: BotContext, who: Requester, message: str) -> None:
    await context.services.messenger.send_text(who.chat_id, message, reply_to=who.message_id)
