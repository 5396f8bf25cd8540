"""/erase's mask: checked request first, then the owner's next image in the chat is the mask."""

from __future__ import annotations

from telegram import Message, Update

from bot.commands import ParsedCommand, parse_command
from bot.conversations import MaskWait
from bot.errors import CommandParseError, ImageError, RequestValidationError
from bot.jobs import Requester
from bot.services import BotContext
from bot.texts import render_error, text
from handlers.common import ImageRef, reply, requester


async def ask_for_mask(
    context: BotContext, who: Requester, parsed: ParsedCommand, source: ImageRef
) -> None:
    """Check the base image and options now, then wait for the mask."""
    services = context.services
    try:
        await services.jobs.check_before_mask(parsed, source.file_id)
    except (RequestValidationError, ImageError) as exc:
        await services.messenger.send_text(who.chat_id, render_error(exc, who.lang),
                                           reply_to=who.message_id)
        return
    key = "erase_ask_mask_group" if who.is_group else "erase_ask_mask"
    prompt_id = await services.messenger.send_text(
        who.chat_id, text(key, who.lang), reply_to=who.message_id
    )
    await services.conversations.start_mask_wait(MaskWait(
        user_id=who.user_id, chat_id=who.chat_id, parsed=parsed, file_id=source.file_id,
        request_message_id=who.message_id, prompt_message_id=prompt_id,
    ))


async def mask_received(
    update: Update, context: BotContext, message: Message, wait: MaskWait, mask: ImageRef
) -> None:
    """The owner's image while a mask is awaited: its caption may add to the request."""
    services = context.services
    who = await requester(update, context, message)
    parsed = wait.parsed
    caption = message.caption or ""
    if caption.strip():
        try:
            extra = parse_command(f"/{parsed.command.value} {caption}", services.bot_username)
        except CommandParseError as exc:
            await reply(message, context, render_error(exc, who.lang))
            return
        assert extra is not None
        parsed = wait.with_caption(extra)
    try:
        await services.jobs.check_mask(parsed, wait.file_id, mask.file_id)
    except ImageError as exc:
        # The wait stays open: the user can send a better mask or /cancel.
        await reply(message, context,
                    f"{render_error(exc, who.lang)}\n{text('mask_retry', who.lang)}")
        return
    if not await services.conversations.end_mask_wait(message.chat_id, wait.user_id):
        return  # another copy of this mask (or a /cancel) ended the wait first
    request = Requester(
        user_id=who.user_id, chat_id=who.chat_id, message_id=wait.request_message_id,
        lang=who.lang, is_admin=who.is_admin, is_group=who.is_group, update_id=who.update_id,
    )
    await services.jobs.accept(request, parsed, wait.file_id, mask_file_id=mask.file_id)
