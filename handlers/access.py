"""Turns away people the allow-lists leave out (:mod:`bot.access`), before anything else runs.

A refused person is told once an hour at most, with their numeric id to give the operator. In a
group only what is addressed to the bot earns that answer (one of its commands, a command or a
mention naming it, a reply to one of its messages): the bot must not talk in a group on every
message it sees. A refused button press is always answered (an unanswered press spins), with the
same words, seen only by the one who pressed.
"""

from __future__ import annotations

import logging

from telegram import Message, Update, User
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.access import AccessPolicy, RefusalMemory
from bot.commands import is_command, split_command
from bot.errors import BotError
from bot.services import BotContext
from bot.texts import text
from handlers.common import is_group, language_of

logger = logging.getLogger(__name__)


class AccessGate:
    """The policy and whom it refused lately; :meth:`check` runs first (group -4)."""

    def __init__(self, policy: AccessPolicy, memory: RefusalMemory | None = None) -> None:
        self._policy = policy
        self._memory = memory or RefusalMemory()

    async def check(self, update: Update, context: BotContext) -> None:
        """Stop an update from anyone not allowed; tell them once an hour at most."""
        if update.pre_checkout_query is not None or (
            update.message is not None and update.message.successful_payment is not None
        ):
            # Payments judge access themselves: a pre-checkout is refused with a reason (never
            # left to time out), and Stars already taken are credited whatever changed since.
            return
        user = update.effective_user
        chat = update.effective_chat
        if self._policy.allows(user.id if user else None, chat.id if chat else None):
            return
        logger.info("update %s from user %s in chat %s refused: not on the allow-lists",
                    update.update_id, user.id if user else None, chat.id if chat else None)
        if user is not None and not user.is_bot:
            try:
                await self._refuse(update, context, user)
            except Exception:  # whatever fails while refusing, the update goes no further
                logger.exception("refusing update %s failed", update.update_id)
        raise ApplicationHandlerStop

    async def _refuse(self, update: Update, context: BotContext, user: User) -> None:
        query = update.callback_query
        if query is not None:
            lang = await language_of(update, context)
            try:
                await query.answer(text("access_refused_button", lang, user_id=user.id),
                                   show_alert=True)
            except TelegramError as exc:
                logger.info("callback query %s could not be answered: %s", query.id, exc)
            return
        message = update.message
        if message is None:
            return  # edits, member changes: nothing asked
        group = is_group(update)
        if group and not addressed_to_bot(message, context.services.bot_username, context.bot.id):
            return
        if not self._memory.should_tell(user.id):
            return
        lang = await language_of(update, context)  # a /lang choice, if they ever made one
        answer = (text("access_refused_group", lang, user_id=user.id, chat_id=message.chat_id)
                  if group else text("access_refused", lang, user_id=user.id))
        try:
            await context.services.messenger.send_text(message.chat_id, answer,
                                                        reply_to=message.message_id)
        except BotError as exc:
            logger.info("a refusal could not be sent to chat %s: %s", message.chat_id, exc)


def addressed_to_bot(message: Message, bot_username: str, bot_id: int) -> bool:
    """One of our commands (for us or for no bot in particular), a command or a mention naming
    us, or a reply to one of our messages."""
    content = message.caption or message.text or ""
    if split_command(content, bot_username) is not None:
        return True
    first = content.split(maxsplit=1)[0] if content.strip() else ""
    if "@" in first and is_command(content, bot_username):
        return True
    if f"@{bot_username}".casefold() in content.casefold():
        return True
    replied = message.reply_to_message
    return replied is not None and replied.from_user is not None and (
        replied.from_user.id == bot_id
    )
