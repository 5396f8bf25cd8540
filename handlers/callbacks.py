"""Inline-keyboard presses: run again, upscale a result, pick an action or a style."""

from __future__ import annotations

import json
import logging
import secrets

from telegram import Update

from bot.commands import Command, ParsedCommand, parse_command, split_command
from bot.errors import CommandParseError, JobNotFoundError
from bot.pipeline import MAX_SEED, JobRunner, Requester
from bot.services import BotContext
from bot.texts import Lang, text
from handlers.common import ImageRef, is_group, language_of
from handlers.edit import ask_for_mask, parse_problem, run_command
from storage.models import Job

logger = logging.getLogger(__name__)


async def on_button(update: Update, context: BotContext) -> None:
    """Route a callback query by the prefix of its data."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None or query.data is None:
        return
    lang = await language_of(update, context)
    kind, _, rest = query.data.partition(":")
    if kind == "again":
        await _again(update, context, rest, lang)
    elif kind == "up":
        await _upscale(update, context, rest, lang)
    elif kind == "pick":
        await _pick(update, context, rest, lang)
    else:
        await query.answer(text("button_expired", lang), show_alert=True)


async def _owned_job(
    update: Update, context: BotContext, job_id_text: str, lang: Lang
) -> Job | None:
    """The job behind a result button, if the presser is the one who asked for it."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    try:
        job = await context.services.store.get_job(int(job_id_text))
    except (ValueError, JobNotFoundError):
        await query.answer(text("button_expired", lang), show_alert=True)
        return None
    message = query.message
    if job.user_id != user.id or message is None or message.chat.id != job.chat_id:
        await query.answer(text("not_your_button", lang), show_alert=True)
        return None
    return job


def _requester(update: Update, context: BotContext, chat_id: int, message_id: int,
               lang: Lang) -> Requester:
    user = update.effective_user
    assert user is not None
    return Requester(user_id=user.id, chat_id=chat_id, message_id=message_id, lang=lang,
                     is_admin=context.services.is_admin(user.id), is_group=is_group(update))


async def _again(update: Update, context: BotContext, rest: str, lang: Lang) -> None:
    query = update.callback_query
    assert query is not None
    job = await _owned_job(update, context, rest, lang)
    if job is None:
        return
    parsed, _ = JobRunner.spec_of(job)
    await query.answer(text("button_started", lang))
    who = _requester(update, context, job.chat_id, job.request_message_id, lang)
    await context.services.runner.accept(
        who, parsed.with_seed(secrets.randbelow(MAX_SEED + 1)), job.input_file_id,
        mask_file_id=job.mask_file_id,
    )


async def _upscale(update: Update, context: BotContext, rest: str, lang: Lang) -> None:
    query = update.callback_query
    assert query is not None
    job_text, _, index_text = rest.partition(":")
    job = await _owned_job(update, context, job_text, lang)
    if job is None:
        return
    raw = await context.services.store.get_setting(f"results:{job.id}")
    file_ids: list[str] = json.loads(raw) if raw else []
    # Only the plain indices our buttons carry: int() also takes "-1", "+0" and non-ASCII digits.
    try:
        if not (index_text.isascii() and index_text.isdigit()):
            raise ValueError(index_text)
        file_id = file_ids[int(index_text)]
    except (ValueError, IndexError):
        await query.answer(text("button_expired", lang), show_alert=True)
        return
    if not file_id:
        await query.answer(text("button_expired", lang), show_alert=True)
        return
    await query.answer(text("button_started", lang))
    who = _requester(update, context, job.chat_id, job.request_message_id, lang)
    parsed = ParsedCommand(command=Command.UPSCALE, prompt="", upscale_factor=2)
    await context.services.runner.accept(who, parsed, file_id)


async def _pick(update: Update, context: BotContext, choice: str, lang: Lang) -> None:
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    message = query.message
    services = context.services
    if message is None:
        await query.answer(text("button_expired", lang), show_alert=True)
        return
    pick = await services.pending.get_pick(message.chat.id, message.message_id)
    if pick is None:
        await query.answer(text("button_expired", lang), show_alert=True)
        return
    if pick.user_id != user.id:
        await query.answer(text("not_your_button", lang), show_alert=True)
        return
    await services.pending.drop_pick(message.chat.id, message.message_id)
    await query.answer()
    if choice.startswith("ls:"):
        split = split_command(pick.command_text, services.bot_username)
        rest = split[1] if split else ""
        command_text = f"/localstyle {choice[3:]} {rest}".strip()
    else:
        command_text = f"/{choice}"
    who = _requester(update, context, pick.chat_id, pick.request_message_id, lang)
    try:
        parsed = parse_command(command_text, services.bot_username)
    except CommandParseError as exc:
        await services.messenger.send_text(pick.chat_id, parse_problem(exc, lang),
                                           reply_to=pick.request_message_id)
        return
    if parsed is None:
        return
    await services.messenger.edit_text(
        message.chat.id, message.message_id, text("picked", lang,
                                                  choice=text(f"cmd_{parsed.command.value}", lang))
    )
    source = ImageRef(pick.file_id, pick.request_message_id)
    if parsed.command is Command.ERASE:
        await ask_for_mask(context, who, parsed, source, command_text)
    else:
        await run_command(context, who, parsed, source, command_text)
