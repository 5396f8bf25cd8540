"""Drops a person's cheap requests past their limit (:mod:`bot.flood`) before anything runs."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.services import BotContext
from handlers.common import image_of

logger = logging.getLogger(__name__)


async def cheap_requests(update: Update, context: BotContext) -> None:
    """Runs first (its own handler group): a message that is not an edit of an image takes a
    token from the sender's bucket or is dropped quietly. Button presses are answered anyway:
    an unanswered press leaves a spinner on the button."""
    user = update.effective_user
    message = update.message
    if user is None or message is None:
        return
    if image_of(message) is not None or image_of(message.reply_to_message) is not None:
        return  # an edit request: the quota and the queue limit those
    if message.successful_payment is not None:
        return  # Stars already taken: never dropped
    if not context.services.cheap_limit.allow(user.id):
        logger.info("update %s from user %s dropped: over the cheap-request limit",
                    update.update_id, user.id)
        raise ApplicationHandlerStop
