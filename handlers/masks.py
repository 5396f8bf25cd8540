"""/erase's mask: checked request first, then the owner's next image in the chat is the mask.

An image that does not look like a mask (bot/images.py ``looks_like_mask``) is asked about
before it is used: a photo sent after /erase is most often a new request, not a mask.
"""

from __future__ import annotations

import re

from telegram import Message, Update

from bot.callback_data import MaskAnswer, MaskChoice
from bot.commands import ParsedCommand, parse_command
from bot.conversations import MaskQuestion, MaskWait
from bot.errors import CommandParseError, ImageError, RequestValidationError
from bot.jobs import Requester
from bot.ports import Button, Keyboard
from bot.services import BotContext
from bot.texts import render_error, text
from handlers.common import ImageRef, language_of, reply, requester


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
    """The owner's image while a mask is awaited: a mask is used; anything that looks like a
    photo is asked about first (a photo sent by mistake must not be thresholded and paid for)."""
    who = await requester(update, context, message)
    await take_mask(context, who, wait, mask, message.caption or "", ask_if_photo=True)


async def take_mask(
    context: BotContext, who: Requester, wait: MaskWait, mask: ImageRef, caption: str, *,
    ask_if_photo: bool,
) -> None:
    """Run the waiting request with ``mask``; its caption may add to the request.

    ``who`` names the message that carried the mask (answers reply to it).
    """
    services = context.services
    try:
        is_mask = await services.jobs.check_mask(wait.parsed, wait.file_id, mask.file_id,
                                                 unless_photo=ask_if_photo)
    except ImageError as exc:
        # The wait stays open: the user can send a better mask or /cancel.
        await _tell(context, who,
                    f"{render_error(exc, who.lang)}\n{text('mask_retry', who.lang)}")
        return
    if not is_mask:
        await _ask_what_it_is(context, who, mask, caption)
        return
    parsed = wait.parsed
    if caption.strip():
        try:
            extra = parse_command(f"/{parsed.command.value} {caption}", services.bot_username)
        except CommandParseError as exc:
            await _tell(context, who, render_error(exc, who.lang))
            return
        assert extra is not None
        parsed = wait.with_caption(extra)
    if not await services.conversations.end_mask_wait(who.chat_id, wait.user_id):
        return  # another copy of this mask (or a /cancel) ended the wait first
    request = Requester(
        user_id=who.user_id, chat_id=who.chat_id, message_id=wait.request_message_id,
        lang=who.lang, is_admin=who.is_admin, is_group=who.is_group, update_id=who.update_id,
    )
    await services.jobs.accept(request, parsed, wait.file_id, mask_file_id=mask.file_id)


async def _ask_what_it_is(
    context: BotContext, who: Requester, image: ImageRef, caption: str
) -> None:
    """The mask or a new photo? Two buttons, answered by :func:`handlers.callbacks.mask_choice`."""
    services = context.services
    keyboard: Keyboard = ((
        Button(text("btn_mask_use", who.lang), MaskChoice(MaskAnswer.USE).encode()),
        Button(text("btn_mask_new", who.lang), MaskChoice(MaskAnswer.NEW).encode()),
    ),)
    question_id = await services.messenger.send_text(
        who.chat_id, text("mask_question", who.lang), reply_to=who.message_id, keyboard=keyboard
    )
    await services.conversations.put_mask_question(question_id, MaskQuestion(
        user_id=who.user_id, chat_id=who.chat_id, file_id=image.file_id,
        message_id=image.message_id, caption=caption,
    ))


async def end_wait_for_command(update: Update, context: BotContext, message: Message) -> None:
    """Another command from someone waiting here for a mask: stop waiting, and say so."""
    user = update.effective_user
    assert user is not None
    conversations = context.services.conversations
    wait = await conversations.mask_wait(message.chat_id, user.id)
    if wait is None or not await conversations.end_mask_wait(message.chat_id, user.id):
        return
    lang = await language_of(update, context)
    await reply(message, context,
                text("mask_wait_ended", lang, command=wait.parsed.command.value))


async def still_waiting(update: Update, context: BotContext, message: Message) -> bool:
    """Words from someone waiting here for a mask: remind them (True), else False."""
    user = update.effective_user
    assert user is not None
    wait = await context.services.conversations.mask_wait(message.chat_id, user.id)
    if wait is None:
        return False
    lang = await language_of(update, context)
    await reply(message, context,
                text("mask_still_waiting", lang, command=wait.parsed.command.value))
    return True


async def on_group_text(update: Update, context: BotContext) -> None:
    """Group words to the bot (a reply to it, or naming it) while the sender owes a mask."""
    message = update.message
    assert message is not None and message.text is not None
    answered = message.reply_to_message
    to_bot = (answered is not None and answered.from_user is not None
              and answered.from_user.id == context.bot.id)
    if not to_bot and not _names(message.text, context.services.bot_username):
        return  # talk among people
    await still_waiting(update, context, message)


def _names(words: str, bot_username: str) -> bool:
    """Whether ``words`` mention ``@bot`` (any case)."""
    mention = rf"(?<!\w)@{re.escape(bot_username.lstrip('@'))}\b"
    return re.search(mention, words, re.IGNORECASE) is not None


async def _tell(context: BotContext, who: Requester, words: str) -> None:
    await context.services.messenger.send_text(who.chat_id, words, reply_to=who.message_id)
