"""Small helpers every handler shares: who is asking, in which language, about which image."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop

from bot.jobs import Requester
from bot.services import BotContext
from bot.texts import Lang

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRef:
    """A Telegram file holding an image: the largest photo size, or an image document."""

    file_id: str
    message_id: int


def image_of(message: Message | None) -> ImageRef | None:
    """The image a message carries, if any (photo, or a document we will try to decode)."""
    if message is None:
        return None
    if message.photo:
        return ImageRef(message.photo[-1].file_id, message.message_id)
    if message.document is not None:
        return ImageRef(message.document.file_id, message.message_id)
    if message.sticker is not None and not (
        message.sticker.is_animated or message.sticker.is_video
    ):
        return ImageRef(message.sticker.file_id, message.message_id)
    return None


def looks_like_image(message: Message) -> bool:
    """A photo, a sticker, or a document whose type says image (or says nothing)."""
    if message.document is None:
        return image_of(message) is not None
    mime = message.document.mime_type or ""
    return not mime or mime.startswith("image/")


def is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


async def track_user(update: Update, context: BotContext) -> None:
    """Record every user as last seen (runs before the other handlers, in group -1)."""
    user = update.effective_user
    if user is None or user.is_bot:
        return
    await context.services.store.touch_user(
        user.id, user.username, user.full_name, user.language_code
    )


class HandledUpdates:
    """Each update handled once, though Telegram may send it again.

    Telegram sends an update again when its offset was not confirmed: the bot died between
    handling it and the next getUpdates, or a webhook call was retried. :meth:`skip` runs before
    everything else (group -2) and stops a copy of an update that was handled, or is being
    handled in this process right now (updates run concurrently). :meth:`record` runs after the
    routes (group 1); PTB runs later groups after a route raised and the error handler
    answered, so an update whose handling ended in an error is recorded too (its answer was
    the error message). A crash before the record leaves the copy to be handled again; what it
    would do twice (a job, an admin change) is keyed by its update id in the store, in the
    transaction of the change itself.
    """

    def __init__(self) -> None:
        self._in_flight: set[int] = set()

    async def skip(self, update: Update, context: BotContext) -> None:
        """Stop an update handled already, or under way (group -2)."""
        update_id = update.update_id
        if update_id in self._in_flight:
            logger.info("update %s was delivered again while being handled; dropped", update_id)
            raise ApplicationHandlerStop
        self._in_flight.add(update_id)
        try:
            handled = await context.services.store.update_handled(update_id)
        except Exception:  # the check saves answering twice; the effects are keyed anyway
            logger.warning("could not check whether update %s was handled", update_id,
                           exc_info=True)
            handled = False
        if handled:
            self._in_flight.discard(update_id)
            logger.info("update %s was delivered again after it was handled; dropped",
                        update_id)
            raise ApplicationHandlerStop

    async def record(self, update: Update, context: BotContext) -> None:
        """Remember the update as handled, once the routes ran (group 1)."""
        try:
            await context.services.store.record_update_handled(update.update_id)
        except Exception:  # the user was answered; an error message now would mislead
            logger.warning("could not record update %s as handled", update.update_id,
                           exc_info=True)
        finally:
            self._in_flight.discard(update.update_id)


async def language_of(update: Update, context: BotContext) -> Lang:
    """The user's /lang choice, else their Telegram language, else English."""
    user = update.effective_user
    if user is None:
        return Lang.EN
    stored = await context.services.store.get_user(user.id)
    if stored is not None and stored.language in ("zh", "en"):
        return Lang(stored.language)
    return Lang.from_code(user.language_code)


async def requester(update: Update, context: BotContext, message: Message) -> Requester:
    user = update.effective_user
    assert user is not None
    return Requester(
        user_id=user.id,
        chat_id=message.chat_id,
        message_id=message.message_id,
        lang=await language_of(update, context),
        is_admin=context.services.is_admin(user.id),
        is_group=is_group(update),
        update_id=update.update_id,
    )


async def reply(message: Message, context: BotContext, text: str) -> int:
    """Answer a message (HTML) through the messenger, which survives a deleted request."""
    return await context.services.messenger.send_text(
        message.chat_id, text, reply_to=message.message_id
    )
