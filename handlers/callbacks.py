"""Inline-keyboard presses: run again, upscale a result, pick an action or a style, say
whether an image sent during a mask wait is the mask, run a painted mask's preview.

Each kind of button has its own route in ``bot.app.build_application`` (by the patterns of
``bot.callback_data``); anything else is an expired or forged button.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from telegram import CallbackQuery, Message, Update
from telegram.error import BadRequest, TelegramError

from bot.callback_data import (
    Again,
    CancelJob,
    MaskAnswer,
    MaskChoice,
    MaskPreview,
    PickAction,
    PickStyle,
    PreviewStep,
    Upscale,
)
from bot.commands import Command, ParsedCommand, parse_command
from bot.conversations import Pick
from bot.errors import CommandParseError, JobNotFoundError
from bot.jobs import (
    Accepted,
    CancelOutcome,
    JobSpec,
    Press,
    PressKind,
    Requester,
    new_seed,
)
from bot.services import BotContext
from bot.texts import Lang, render_error, text
from handlers.common import ImageRef, is_group, language_of
from handlers.edit import new_photo, run_command
from handlers.masks import run_previewed, take_mask
from storage.models import Job

logger = logging.getLogger(__name__)


# A button naming one job: "again:<id>" or "cancel:<id>".
_JobPress = TypeVar("_JobPress", Again, CancelJob)


def _query(update: Update) -> tuple[CallbackQuery, str]:
    query = update.callback_query
    assert query is not None  # every route is a CallbackQueryHandler
    # PTB hands a press without data to every pattern route, so each route still parses its own.
    return query, query.data or ""


async def _pressed_job(
    update: Update, context: BotContext, parse: Callable[[str], _JobPress | None]
) -> tuple[CallbackQuery, _JobPress, Job, Lang] | None:
    """The press and the job it names, if well formed and pressed by the job's owner; else the
    presser has been answered."""
    query, data = _query(update)
    press = parse(data)
    if press is None:
        await expired(update, context)
        return None
    lang = await language_of(update, context)
    job = await _owned_job(update, context, press.job_id, lang)
    return None if job is None else (query, press, job, lang)


async def again(update: Update, context: BotContext) -> None:
    """Run a delivered request once more, with a new seed."""
    pressed = await _pressed_job(update, context, Again.parse)
    if pressed is None:
        return
    query, _, job, lang = pressed
    who = _requester(update, context, job.chat_id, job.request_message_id, lang)
    await _order(query, context, Press(PressKind.AGAIN, job.id, 0, who.user_id), who,
                 JobSpec.of(job).parsed.with_seed(new_seed()), job.input_file_id,
                 mask_file_id=job.mask_file_id, mask_png=job.mask_png)


async def upscale(update: Update, context: BotContext) -> None:
    """Upscale one delivered result (by its Telegram file id, so nothing is downloaded twice)."""
    query, data = _query(update)
    job_id = Upscale.job_of(data)
    if job_id is None:
        await expired(update, context)
        return
    lang = await language_of(update, context)
    job = await _owned_job(update, context, job_id, lang)
    if job is None:
        return
    press = Upscale.parse(data)
    if press is None or press.index >= len(job.result_file_ids) or not (
        job.result_file_ids[press.index]
    ):
        await _answer(query, text("button_expired", lang), show_alert=True)
        return
    who = _requester(update, context, job.chat_id, job.request_message_id, lang)
    parsed = ParsedCommand(command=Command.UPSCALE, prompt="", upscale_factor=2)
    await _order(query, context, Press(PressKind.UPSCALE, job.id, press.index, who.user_id),
                 who, parsed, job.result_file_ids[press.index])


async def pick_action(update: Update, context: BotContext) -> None:
    """A choice on the keyboard under a photo sent without a caption."""
    _, data = _query(update)
    press = PickAction.parse(data)
    if press is None:
        await expired(update, context)
        return
    lang = await language_of(update, context)
    pick = await _take_pick(update, context, lang)
    if pick is None:
        return
    try:
        parsed = parse_command(f"/{press.command.value}", context.services.bot_username)
    except CommandParseError as exc:
        await context.services.messenger.send_text(
            pick.chat_id, render_error(exc, lang), reply_to=pick.request_message_id
        )
        return
    assert parsed is not None
    await _run_pick(update, context, pick, parsed, lang)


async def pick_style(update: Update, context: BotContext) -> None:
    """A style on /localstyle's keyboard."""
    _, data = _query(update)
    press = PickStyle.parse(data)
    if press is None:
        await expired(update, context)
        return
    lang = await language_of(update, context)
    pick = await _take_pick(update, context, lang, styles=True)
    if pick is None:
        return
    assert pick.parsed is not None
    await _run_pick(update, context, pick, pick.parsed.with_style(press.style), lang)


async def cancel_job(update: Update, context: BotContext) -> None:
    """The ✖ on a queued status line: cancel the job if no worker has taken it yet."""
    pressed = await _pressed_job(update, context, CancelJob.parse)
    if pressed is None:
        return
    query, _, job, lang = pressed
    outcome = await context.services.jobs.cancel(job)
    if outcome is CancelOutcome.CANCELED:
        await _answer(query, text("cancelled_job", lang))
    elif outcome is CancelOutcome.TOO_LATE:
        await _answer(query, text("cancel_too_late", lang), show_alert=True)
    else:
        await _answer(query, text("button_expired", lang), show_alert=True)


async def mask_choice(update: Update, context: BotContext) -> None:
    """The answer to "a mask, or a new photo?" asked about an image sent during a mask wait."""
    query, data = _query(update)
    press = MaskChoice.parse(data)
    user = update.effective_user
    message = query.message
    if press is None or user is None or message is None:
        await expired(update, context)
        return
    lang = await language_of(update, context)
    conversations = context.services.conversations
    chat_id = message.chat.id
    question = await conversations.mask_question(chat_id, message.message_id)
    if question is None:
        await _answer(query, text("button_expired", lang), show_alert=True)
        return
    if question.user_id != user.id:
        await _answer(query, text("not_your_button", lang), show_alert=True)
        return
    wait = await conversations.mask_wait(chat_id, user.id)
    if (press.answer is MaskAnswer.USE and wait is None) or (
        await conversations.take_mask_question(chat_id, message.message_id) is None
    ):
        await _answer(query, text("button_expired", lang), show_alert=True)  # gone, or twice
        return
    await _answer(query)
    label = text("btn_mask_use" if press.answer is MaskAnswer.USE else "btn_mask_new", lang)
    await context.services.messenger.edit_text(chat_id, message.message_id,
                                               text("picked", lang, choice=label))
    who = _requester(update, context, chat_id, question.message_id, lang)
    image = ImageRef(question.file_id, question.message_id)
    if press.answer is MaskAnswer.USE:
        assert wait is not None
        await take_mask(context, who, wait, image, question.caption, ask_if_photo=False)
        return
    if wait is not None and await conversations.end_mask_wait(chat_id, user.id):
        await context.services.messenger.send_text(
            chat_id, text("mask_wait_ended", lang, command=wait.parsed.command.value),
            reply_to=question.message_id,
        )
    await new_photo(context, who, image, question.caption)


async def mask_preview(update: Update, context: BotContext) -> None:
    """[Run] [Redo] [Cancel] under the preview of a mask painted over the photo."""
    query, data = _query(update)
    press = MaskPreview.parse(data)
    user = update.effective_user
    message = query.message
    if press is None or user is None or not isinstance(message, Message):
        await expired(update, context)
        return
    lang = await language_of(update, context)
    painted = message.reply_to_message  # the preview answers the painted copy
    if painted is not None and painted.from_user is not None and painted.from_user.id != user.id:
        await _answer(query, text("not_your_button", lang), show_alert=True)
        return
    services = context.services
    chat_id = message.chat.id
    wait = await services.conversations.mask_wait(chat_id, user.id)
    candidate = wait.candidate if wait is not None else None
    if wait is None or candidate is None or candidate.preview != press.preview:
        await _answer(query, text("mask_preview_gone", lang), show_alert=True)
        return
    who = _requester(update, context, chat_id, candidate.message_id, lang)
    if press.step is PreviewStep.RUN:
        refusal = await services.jobs.precheck(who, candidate.parsed)
        if refusal is not None:  # the wait stays: after /lang, a grant or next month it can run
            await _answer(query, render_error(refusal, lang), show_alert=True)
            return
        if not await services.conversations.end_mask_wait(chat_id, user.id):
            await _answer(query, text("mask_preview_gone", lang), show_alert=True)
            return
        await _answer(query, text("button_started", lang))
        await _drop_keyboard(query)
        await run_previewed(context, who, wait, candidate)
        return
    await _answer(query)
    await _drop_keyboard(query)
    if press.step is PreviewStep.REDO:
        await services.conversations.start_mask_wait(replace(wait, candidate=None))
        answer = text("mask_redo", lang)
    else:
        await services.conversations.end_mask_wait(chat_id, user.id)
        answer = text("cancelled", lang)
    await services.messenger.send_text(chat_id, answer, reply_to=candidate.message_id)


async def _drop_keyboard(query: CallbackQuery) -> None:
    """Take the buttons off a message once pressed, so they cannot be pressed again."""
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except TelegramError as exc:  # deleted meanwhile, or already without them
        logger.info("the keyboard of a pressed message stayed: %s", exc)


async def expired(update: Update, context: BotContext) -> None:
    """Any other button: from an older version of the bot, or forged."""
    query, _ = _query(update)
    await _answer(query, text("button_expired", await language_of(update, context)),
                  show_alert=True)


async def _order(
    query: CallbackQuery, context: BotContext, press: Press, who: Requester,
    parsed: ParsedCommand, input_file_id: str, *, mask_file_id: str | None = None,
    mask_png: bytes | None = None,
) -> None:
    """A result button's job: the press is answered first, "On it" only if the job will run.

    A refusal (ban, quota, spend cap) is the answer itself, as an alert, and nothing else is
    said; a press while the job an earlier press of the button made still runs makes nothing.
    """
    jobs = context.services.jobs
    if not await jobs.presses.begin(press):
        await _answer(query, text("button_already_running", who.lang), show_alert=True)
        return
    made = None
    try:
        refusal = await jobs.precheck(who, parsed)
        if refusal is not None:
            await _answer(query, render_error(refusal, who.lang), show_alert=True)
            return
        await _answer(query, text("button_started", who.lang))
        result = await jobs.accept(who, parsed, input_file_id, mask_file_id=mask_file_id,
                                   mask_png=mask_png)
        if isinstance(result, Accepted):
            made = result.job.id
    finally:
        await jobs.presses.made(press, made)


async def _owned_job(update: Update, context: BotContext, job_id: int, lang: Lang) -> Job | None:
    """The job behind a result button, if the presser is the one who asked for it."""
    query, _ = _query(update)
    user = update.effective_user
    assert user is not None
    try:
        job = await context.services.store.get_job(job_id)
    except JobNotFoundError:
        await _answer(query, text("button_expired", lang), show_alert=True)
        return None
    message = query.message
    if job.user_id != user.id or message is None or message.chat.id != job.chat_id:
        await _answer(query, text("not_your_button", lang), show_alert=True)
        return None
    return job


async def _take_pick(
    update: Update, context: BotContext, lang: Lang, *, styles: bool = False
) -> Pick | None:
    """The keyboard's pending choice, used up, if the presser owns it; else they are told."""
    query, _ = _query(update)
    user = update.effective_user
    assert user is not None
    message = query.message
    conversations = context.services.conversations
    pick = None
    if message is not None:
        pick = await conversations.get_pick(message.chat.id, message.message_id)
    if pick is None or styles != (pick.parsed is not None):
        await _answer(query, text("button_expired", lang), show_alert=True)
        return None
    if pick.user_id != user.id:
        await _answer(query, text("not_your_button", lang), show_alert=True)
        return None
    assert message is not None
    if await conversations.take_pick(message.chat.id, message.message_id) is None:
        await _answer(query, text("button_expired", lang), show_alert=True)  # pressed twice
        return None
    await _answer(query)
    return pick


async def _run_pick(
    update: Update, context: BotContext, pick: Pick, parsed: ParsedCommand, lang: Lang
) -> None:
    query, _ = _query(update)
    message = query.message
    assert message is not None
    command = text(f"cmd_{parsed.command.value}", lang)
    if parsed.style is not None:  # "Local style: Ice", the button pressed named
        picked = text("picked_style", lang, command=command, style=parsed.style.label(lang))
    else:
        picked = text("picked", lang, choice=command)
    await context.services.messenger.edit_text(message.chat.id, message.message_id, picked)
    who = _requester(update, context, pick.chat_id, pick.request_message_id, lang)
    await run_command(context, who, parsed, ImageRef(pick.file_id, pick.request_message_id))


async def _answer(query: CallbackQuery, message: str | None = None, *,
                  show_alert: bool = False) -> None:
    """Answer the press; a press Telegram sent again was answered already (or is too old)."""
    try:
        await query.answer(message, show_alert=show_alert)
    except BadRequest as exc:
        logger.info("callback query %s could not be answered: %s", query.id, exc)


def _requester(update: Update, context: BotContext, chat_id: int, message_id: int,
               lang: Lang) -> Requester:
    user = update.effective_user
    assert user is not None
    return Requester(user_id=user.id, chat_id=chat_id, message_id=message_id, lang=lang,
                     is_admin=context.services.is_admin(user.id), is_group=is_group(update),
                     update_id=update.update_id)
