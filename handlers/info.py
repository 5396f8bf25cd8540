"""/start, /help, /quota, /lang, /cancel."""

from __future__ import annotations

from telegram import Update

from bot.services import BotContext
from bot.texts import Lang, text
from handlers.common import language_of, reply


async def start(update: Update, context: BotContext) -> None:
    """Greet and explain: the same as /help."""
    await help_command(update, context)


async def help_command(update: Update, context: BotContext) -> None:
    """Every command with an example, groups, masks."""
    message = update.effective_message
    if message is None:
        return
    lang = await language_of(update, context)
    await reply(message, context, text("help", lang,
                                       bot=context.services.bot_username))


def next_month_start(month: str) -> str:
    """The first day of the month after ``YYYY-MM``, as ``YYYY-MM-01``."""
    year, mon = (int(part) for part in month.split("-"))
    year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return f"{year:04d}-{mon:02d}-01"


async def quota(update: Update, context: BotContext) -> None:
    """Used, remaining, granted extra, and when the month resets."""
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
    await reply(message, context, text(
        "quota_status", lang, used=status.used, reserved=status.reserved,
        limit=status.limit, granted=status.granted, remaining=status.remaining,
        reset=next_month_start(status.month), tz=services.settings.quota_timezone,
    ))


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
    """End a wait for a mask."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    lang = await language_of(update, context)
    ended = await context.services.conversations.end_mask_wait(message.chat_id, user.id)
    await reply(message, context, text("cancelled" if ended else "nothing_to_cancel", lang))


