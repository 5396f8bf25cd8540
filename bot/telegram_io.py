"""The pipeline's Messenger, implemented with python-telegram-bot."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    ReplyParameters,
    WebAppInfo,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError

from bot.errors import DeliveryError, ImageError
from bot.ports import MAX_DOWNLOAD_BYTES, Button, Keyboard, OutgoingImage

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Transient failures (5xx, dropped connections) are tried again this many times, with a pause.
SEND_ATTEMPTS = 3
SEND_RETRY_PAUSE = 1.0


def to_markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | None:
    if not keyboard:
        return None
    return InlineKeyboardMarkup([[_button(b) for b in row] for row in keyboard])


def _button(button: Button) -> InlineKeyboardButton:
    if button.web_app is not None:
        return InlineKeyboardButton(button.label, web_app=WebAppInfo(button.web_app))
    return InlineKeyboardButton(button.label, callback_data=button.data)


def _reply(message_id: int | None) -> ReplyParameters | None:
    # If the user deleted the request meanwhile, deliver anyway rather than fail.
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


class TelegramMessenger:
    """Sends and edits messages and fetches files through one PTB ``Bot``."""

    def __init__(self, bot: Bot, *, retry_pause: float = SEND_RETRY_PAUSE) -> None:
        self.bot = bot
        self._retry_pause = retry_pause

    async def download(self, file_id: str) -> bytes:
        try:
            tg_file = await self.bot.get_file(file_id)
            if tg_file.file_size is not None and tg_file.file_size > MAX_DOWNLOAD_BYTES:
                raise ImageError("file_too_big", limit_mb=MAX_DOWNLOAD_BYTES // (1024 * 1024))
            data = bytes(await tg_file.download_as_bytearray())
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise ImageError(
                    "file_too_big", limit_mb=MAX_DOWNLOAD_BYTES // (1024 * 1024)
                ) from exc
            raise ImageError("file_unavailable", detail=exc.message) from exc
        except TelegramError as exc:
            # The message of a failed download can carry the file URL, hence the token: drop it.
            raise ImageError("file_unavailable", detail=type(exc).__name__) from exc
        if len(data) > MAX_DOWNLOAD_BYTES:
            raise ImageError("file_too_big", limit_mb=MAX_DOWNLOAD_BYTES // (1024 * 1024))
        return data

    async def send_text(
        self, chat_id: int, text: str, *, reply_to: int | None = None,
        keyboard: Keyboard | None = None,
    ) -> int:
        message = await self._replying(
            lambda reply: self.bot.send_message(
                chat_id, text, parse_mode=ParseMode.HTML, reply_parameters=reply,
                reply_markup=to_markup(keyboard),
            ),
            reply_to,
        )
        return message.message_id

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, *, keyboard: Keyboard | None = None
    ) -> None:
        try:
            await self.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML,
                reply_markup=to_markup(keyboard),
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            raise DeliveryError(exc.message, permanent=True) from exc
        except TelegramError as exc:
            raise DeliveryError(type(exc).__name__, permanent=False) from exc

    async def delete(self, chat_id: int, message_id: int) -> None:
        try:
            await self.bot.delete_message(chat_id, message_id)
        except TelegramError as exc:  # already gone, or too old to delete: nothing to do
            logger.info("could not delete message %s in %s: %s", message_id, chat_id, exc)

    async def show_uploading(self, chat_id: int) -> None:
        try:
            await self.bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
        except TelegramError as exc:
            logger.info("chat action failed in %s: %s", chat_id, exc)

    async def send_images(
        self, chat_id: int, images: Sequence[OutgoingImage], *, caption: str, reply_to: int,
        keyboard: Keyboard | None,
    ) -> tuple[str, ...]:
        markup = to_markup(keyboard)
        sent: list[Message] = []
        # Photos and documents cannot share an album: if any cannot be a photo (even as a
        # preview), all go as documents (full resolution is the safe side).
        as_photos = all(image.photo is not None for image in images)
        if len(images) == 1:
            image = images[0]
            photo = image.photo
            if photo is not None:
                sent.append(await self._replying(lambda reply: self.bot.send_photo(
                    chat_id, photo, caption=caption, parse_mode=ParseMode.HTML,
                    reply_parameters=reply, reply_markup=markup,
                    filename=image.photo_filename,
                ), reply_to))
            else:
                sent.append(await self._send_document(chat_id, image, caption, reply_to, markup))
        else:
            sent.extend(await self._send_album(chat_id, images, caption, reply_to, as_photos))
            # An album cannot carry buttons: they come in a short message of their own.
            if markup is not None:
                await self._replying(lambda reply: self.bot.send_message(
                    chat_id, caption, parse_mode=ParseMode.HTML,
                    reply_parameters=reply, reply_markup=markup,
                ), sent[0].message_id)
        # After photos: the originals of previews, and /upscale's full-resolution files.
        for image in images if as_photos else ():
            if image.also_document or not image.as_photo:
                await self._send_document(chat_id, image, None, reply_to, None)
        return tuple(_file_id(message) for message in sent)

    async def _send_document(
        self, chat_id: int, image: OutgoingImage, caption: str | None, reply_to: int,
        markup: InlineKeyboardMarkup | None,
    ) -> Message:
        return await self._replying(lambda reply: self.bot.send_document(
            chat_id, image.data, caption=caption, parse_mode=ParseMode.HTML,
            reply_parameters=reply, reply_markup=markup, filename=image.filename,
            disable_content_type_detection=True,
        ), reply_to)

    async def _send_album(
        self, chat_id: int, images: Sequence[OutgoingImage], caption: str, reply_to: int,
        as_photos: bool,
    ) -> tuple[Message, ...]:
        media: list[InputMediaPhoto | InputMediaDocument] = []
        for index, image in enumerate(images):
            first = index == 0
            photo = image.photo if as_photos else None
            if photo is not None:
                media.append(InputMediaPhoto(
                    photo, caption=caption if first else None,
                    parse_mode=ParseMode.HTML, filename=image.photo_filename,
                ))
            else:
                media.append(InputMediaDocument(
                    image.data, caption=caption if first else None,
                    parse_mode=ParseMode.HTML, filename=image.filename,
                ))
        return await self._replying(lambda reply: self.bot.send_media_group(
            chat_id, media, reply_parameters=reply
        ), reply_to)

    async def _replying(
        self, send: Callable[[ReplyParameters | None], Awaitable[T]], reply_to: int | None
    ) -> T:
        """Send as a reply to ``reply_to``; if that message is gone, send without the reply."""
        try:
            return await self._retrying(lambda: send(_reply(reply_to)))
        except DeliveryError as exc:
            # allow_sending_without_reply should prevent this, but a delivery must not be lost
            # to a deleted request whatever path the server takes.
            if reply_to is None or "replied not found" not in exc.reason.lower():
                raise
        logger.info("message %s to reply to is gone: sending without the reply", reply_to)
        return await self._retrying(lambda: send(None))

    async def _retrying(self, send: Callable[[], Awaitable[T]]) -> T:
        """Send, trying again after transient failures; flood limits are the rate limiter's."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await send()
            except Forbidden as exc:  # the user blocked the bot, or it was removed from the group
                raise DeliveryError(exc.message, permanent=True) from exc
            except BadRequest as exc:
                raise DeliveryError(exc.message, permanent=True) from exc
            except NetworkError as exc:
                if attempt == SEND_ATTEMPTS:
                    raise DeliveryError(type(exc).__name__, permanent=False) from exc
                logger.info("send failed (%s), attempt %s of %s", exc, attempt, SEND_ATTEMPTS)
                await asyncio.sleep(self._retry_pause * attempt)
            except TelegramError as exc:
                raise DeliveryError(type(exc).__name__, permanent=False) from exc
        raise AssertionError("unreachable")



def _file_id(message: Message) -> str:
    if message.photo:
        return message.photo[-1].file_id
    if message.document:
        return message.document.file_id
    return ""
