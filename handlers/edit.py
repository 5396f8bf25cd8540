"""Edit requests: a command in a photo's caption, or a command replying to a photo; masks."""

from __future__ import annotations

import html
import logging

from telegram import Message, Update
from telegram.constants import ChatType

from bot.commands import (
    Command,
    LocalStyle,
    ParsedCommand,
    command_name,
    is_command,
    parse_command,
    split_command,
)
from bot.errors import CommandParseError, ImageError, RequestValidationError
from bot.pending import MaskWait
from bot.pipeline import Requester, explain
from bot.ports import Button, Keyboard
from bot.services import BotContext
from bot.texts import Lang, text
from handlers.common import ImageRef, image_of, looks_like_image, reply, requester

logger = logging.getLogger(__name__)

# Actions offered under a photo sent without a caption: the ones that need no prompt.
QUICK_ACTIONS = (
    Command.UPSCALE, Command.COLORIZE, Command.DEWATERMARK, Command.LOCALSTYLE, Command.ERASE,
)


def parse_problem(exc: CommandParseError, lang: Lang) -> str:
    """A parse error as the user sees it: what is wrong, then an example that works."""
    params = {k: html.escape(str(v)) for k, v in exc.params.items()}
    problem = text(exc.key, lang, **params)
    if not exc.example:
        return problem
    return text("parse_problem", lang, problem=problem, example=html.escape(exc.example))


async def on_message(update: Update, context: BotContext) -> None:
    """Every new message that is not one of the bot's own commands (/start, /quota, ...)."""
    message = update.message
    user = update.effective_user
    if message is None or user is None or user.is_bot:
        return
    services = context.services
    content = message.caption or message.text or ""
    image = image_of(message)
    private = message.chat.type == ChatType.PRIVATE

    if image is not None and not is_command(content):
        wait = await services.pending.mask_wait(message.chat_id, user.id)
        if wait is not None:
            await _mask_received(update, context, message, wait, image, content)
            return

    if is_command(content):
        name = command_name(content)
        try:
            parsed = parse_command(content, services.bot_username)
        except CommandParseError as exc:
            who = await requester(update, context, message)
            await reply(message, context, parse_problem(exc, who.lang))
            return
        if parsed is None:
            if split_command(content, services.bot_username) is None and _addressed_to_us(
                content, services.bot_username, private
            ):
                who = await requester(update, context, message)
                await reply(message, context, text("unknown_command", who.lang,
                                                   command=html.escape(name or content[:32])))
            return
        source = image or image_of(message.reply_to_message)
        who = await requester(update, context, message)
        if source is None:
            await reply(message, context, text("need_image", who.lang,
                                               command=parsed.command.value))
            return
        await run_command(context, who, parsed, source, content)
        return

    if image is not None and private:
        who = await requester(update, context, message)
        if content.strip():
            try:
                parsed = parse_command(f"/edit {content}", services.bot_username)
            except CommandParseError as exc:
                await reply(message, context, parse_problem(exc, who.lang))
                return
            assert parsed is not None
            await run_command(context, who, parsed, image, f"/edit {content}")
        elif looks_like_image(message):
            await offer_actions(context, who, image)
        else:
            await reply(message, context, text("image_not_image", who.lang))
        return

    if private and message.text:
        who = await requester(update, context, message)
        await reply(message, context, text("private_hint", who.lang))


def _addressed_to_us(content: str, bot_username: str, private: bool) -> bool:
    """In groups, answer an unknown command only if it names this bot."""
    first = content.split(maxsplit=1)[0] if content.strip() else ""
    if "@" in first:
        return first.split("@", 1)[1].lower() == bot_username.lower()
    return private


async def run_command(
    context: BotContext, who: Requester, parsed: ParsedCommand, source: ImageRef,
    command_text: str,
) -> None:
    """Start what a parsed command asks for, on the image it refers to."""
    services = context.services
    if parsed.command is Command.LOCALSTYLE and parsed.style is None:
        await offer_styles(context, who, source, command_text)
        return
    if parsed.command is Command.ERASE:
        await ask_for_mask(context, who, parsed, source, command_text)
        return
    await services.runner.accept(who, parsed, source.file_id)


async def ask_for_mask(
    context: BotContext, who: Requester, parsed: ParsedCommand, source: ImageRef,
    command_text: str,
) -> None:
    """Check the base image and options now, then wait for the mask."""
    services = context.services
    try:
        services.runner.check_request(parsed, with_mask=True)
        spec_model = services.runner.model_of(parsed)
        await services.runner.prepared_input(source.file_id, spec_model)
    except (RequestValidationError, ImageError) as exc:
        await services.messenger.send_text(who.chat_id, explain(exc, who.lang),
                                           reply_to=who.message_id)
        return
    key = "erase_ask_mask_group" if who.is_group else "erase_ask_mask"
    prompt_id = await services.messenger.send_text(
        who.chat_id, text(key, who.lang), reply_to=who.message_id
    )
    await services.pending.start_mask_wait(
        user_id=who.user_id, chat_id=who.chat_id, file_id=source.file_id,
        command_text=command_text, request_message_id=who.message_id,
        prompt_message_id=prompt_id,
    )


async def _mask_received(
    update: Update, context: BotContext, message: Message, wait: MaskWait, mask: ImageRef,
    caption: str,
) -> None:
    services = context.services
    who = await requester(update, context, message)
    command_text = wait.command_text
    if caption.strip():
        command_text = f"{command_text} {caption}"
    try:
        parsed = parse_command(command_text, services.bot_username)
    except CommandParseError as exc:
        await reply(message, context, parse_problem(exc, who.lang))
        return
    assert parsed is not None
    try:
        base = await services.runner.prepared_input(wait.file_id, services.runner.model_of(parsed))
        await services.runner.prepared_mask(mask.file_id, (base.width, base.height))
    except ImageError as exc:
        # The wait stays open: the user can send a better mask or /cancel.
        await reply(message, context, f"{explain(exc, who.lang)}\n{text('mask_retry', who.lang)}")
        return
    await services.pending.end_mask_wait(message.chat_id, wait.user_id)
    request = Requester(
        user_id=who.user_id, chat_id=who.chat_id, message_id=wait.request_message_id,
        lang=who.lang, is_admin=who.is_admin, is_group=who.is_group,
    )
    await services.runner.accept(request, parsed, wait.file_id, mask_file_id=mask.file_id)


async def offer_styles(
    context: BotContext, who: Requester, source: ImageRef, command_text: str
) -> None:
    """/localstyle without a style: a keyboard of the eight."""
    services = context.services
    styles = list(LocalStyle)
    rows: list[tuple[Button, ...]] = []
    for start in range(0, len(styles), 2):
        rows.append(tuple(
            Button(style.label(who.lang.value), f"pick:ls:{style.value}")
            for style in styles[start:start + 2]
        ))
    keyboard: Keyboard = tuple(rows)
    message_id = await services.messenger.send_text(
        who.chat_id, text("pick_style", who.lang), reply_to=who.message_id, keyboard=keyboard
    )
    await services.pending.put_pick(
        keyboard_message_id=message_id, user_id=who.user_id, chat_id=who.chat_id,
        file_id=source.file_id, request_message_id=source.message_id,
        command_text=command_text,
    )


async def offer_actions(context: BotContext, who: Requester, source: ImageRef) -> None:
    """A photo without a caption in a private chat: what shall we do with it?"""
    services = context.services
    buttons = [Button(text(f"cmd_{c.value}", who.lang), f"pick:{c.value}") for c in QUICK_ACTIONS]
    keyboard: Keyboard = tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))
    message_id = await services.messenger.send_text(
        who.chat_id, text("pick_action", who.lang), reply_to=who.message_id, keyboard=keyboard
    )
    await services.pending.put_pick(
        keyboard_message_id=message_id, user_id=who.user_id, chat_id=who.chat_id,
        file_id=source.file_id, request_message_id=source.message_id,
    )
