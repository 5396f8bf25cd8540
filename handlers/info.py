"""/start, /help, /quota, /lang, /cancel, /id."""

from __future__ import annotations

from telegram import Update

from bot.jobs import CancelOutcome
from bot.services import BotContext
from bot.texts import Lang, text
from handlers.common import language_of, reply
from storage.models import next_month_start


async def start(update: Update, context: BotContext) -> None:
    """A short welcome: what the bot does, one example, send a photo (/help has the rest)."""
    message = update.effective_message
    if message is None:
        return
    await reply(message, context, text("start", await language_of(update, context)))


async def help_command(update: Update, context: BotContext) -> None:
    """Every command with an example, groups, masks."""
    message = update.effective_message
    if message is None:
        return
    lang = await language_of(update, context)
    await reply(message, context, text("help", lang,
                                       bot=context.services.bot_username))


async def quota(update: Update, context: BotContext) -> None:
    """Used, remaining, granted extra, purchased images, and when the month resets."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    services = context.services
    lang = await language_of(update, context)
    if services.is_admin(user.id):
        await reply(message, context, text("quota_admin", lang))
        return
    status = await services.store.quota_status(user.id)
    answer = text(
        "quota_status", lang, used=status.used, reserved=status.reserved,
        limit=status.limit, granted=status.granted, remaining=status.remaining,
        reset=next_month_start(status.month), tz=services.settings.quota_timezone,
    )
    if status.purchased or services.settings.star_packs:  # bought images, or they may buy
        answer += "\n" + text("quota_purchased", lang, purchased=status.purchased)
    await reply(message, context, answer)


async def lang_command(update: Update, context: BotContext) -> None:
    """/lang zh|en overrides Telegram's language; /lang auto follows it again."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    store = context.services.store
    choice = (context.args[0].lower() if context.args else "")
    if choice in ("zh", "cn", "中文"):
        await store.set_language(user.id, "zh")
        await reply(message, context, text("lang_set", Lang.ZH))
    elif choice in ("en", "english"):
        await store.set_language(user.id, "en")
        await reply(message, context, text("lang_set", Lang.EN))
    elif choice == "auto":
        await store.set_language(user.id, None)
        await reply(message, context, text("lang_set", Lang.from_code(user.language_code)))
    else:
        await reply(message, context, text("lang_usage", await language_of(update, context)))


async def cancel(update: Update, context: BotContext) -> None:
    """Stop what the person started last here: a mask wait, a command waiting for its photo,
    or a request still waiting for a slot."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    services = context.services
    lang = await language_of(update, context)
    chat_id = message.chat_id
    if await services.conversations.end_mask_wait(chat_id, user.id):
        await reply(message, context, text("cancelled", lang))
        return
    pending = await services.conversations.take_pending_command(chat_id, user.id)
    if pending is not None:
        await reply(message, context, text("cancelled_command", lang,
                                           command=pending.parsed.command.value))
        return
    unfinished = [job for job in await services.store.resumable_jobs()
                  if job.user_id == user.id and job.chat_id == chat_id]
    if not unfinished:
        await reply(message, context, text("nothing_to_cancel", lang))
        return
    outcome = await services.jobs.cancel(max(unfinished, key=lambda job: job.id))
    key = {CancelOutcome.CANCELED: "cancelled_job", CancelOutcome.TOO_LATE: "cancel_too_late",
           CancelOutcome.GONE: "nothing_to_cancel"}[outcome]
    await reply(message, context, text(key, lang))


async def show_id(update: Update, context: BotContext) -> None:
    """The sender's user id and the chat's id: what operators put in the settings."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    lang = await language_of(update, context)
    if message.chat_id == user.id:  # a private chat has its user's id
        answer = text("id_private", lang, user_id=user.id)
    else:
        answer = text("id_group", lang, user_id=user.id, chat_id=message.chat_id)
    await reply(message, context, answer)
