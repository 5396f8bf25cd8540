"""An in-memory :class:`bot.ports.Messenger` that records every call, for pipeline tests.

Files are registered by id (:meth:`FakeMessenger.add_file`); message ids count up from 1001 and
delivered images get file ids ``result-1``, ``result-2``, ... Sending or editing can be made to
fail with a :class:`~bot.errors.DeliveryError`, and sending images can be held until released,
to test what the pipeline does around a slow or refused delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from bot.errors import DeliveryError, ImageError
from bot.ports import MAX_DOWNLOAD_BYTES, Keyboard, OutgoingImage

FIRST_MESSAGE_ID = 1001


@dataclass(frozen=True)
class SentText:
    chat_id: int
    text: str
    reply_to: int | None
    keyboard: Keyboard | None
    message_id: int


@dataclass(frozen=True)
class EditedText:
    chat_id: int
    message_id: int
    text: str
    keyboard: Keyboard | None


@dataclass(frozen=True)
class SentImages:
    chat_id: int
    images: tuple[OutgoingImage, ...]
    caption: str
    reply_to: int
    keyboard: Keyboard | None
    file_ids: tuple[str, ...]


class FakeMessenger:
    """Implements every method of :class:`bot.ports.Messenger` in memory."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.downloads: list[str] = []
        self.sent: list[SentText] = []
        self.edits: list[EditedText] = []
        self.deleted: list[tuple[int, int]] = []
        self.uploading: list[int] = []
        self.deliveries: list[SentImages] = []
        # Raised by every call of the method while set (None: the call succeeds).
        self.send_text_error: DeliveryError | None = None
        self.edit_error: DeliveryError | None = None
        self.send_images_error: DeliveryError | None = None
        # While set, send_images waits for it: the test sees the delivery under way.
        self.hold_images: asyncio.Event | None = None
        self.images_started = asyncio.Event()
        self._next_message_id = FIRST_MESSAGE_ID
        self._next_file = 1

    # --- set-up ------------------------------------------------------------------------------

    def add_file(self, file_id: str, data: bytes) -> None:
        self.files[file_id] = data

    def fail_send_text(self, reason: str = "Forbidden: bot was blocked by the user") -> None:
        self.send_text_error = DeliveryError(reason, permanent=True)

    def fail_edits(self, reason: str = "Bad Request: message to edit not found") -> None:
        self.edit_error = DeliveryError(reason, permanent=True)

    def fail_send_images(self, reason: str = "Forbidden: bot was blocked by the user") -> None:
        self.send_images_error = DeliveryError(reason, permanent=True)

    # --- what was said -----------------------------------------------------------------------

    def texts_to(self, chat_id: int) -> list[str]:
        return [message.text for message in self.sent if message.chat_id == chat_id]

    def replies_to(self, message_id: int) -> list[SentText]:
        return [message for message in self.sent if message.reply_to == message_id]

    def edits_of(self, message_id: int) -> list[str]:
        return [edit.text for edit in self.edits if edit.message_id == message_id]

    # --- the Messenger port ------------------------------------------------------------------

    async def download(self, file_id: str) -> bytes:
        self.downloads.append(file_id)
        data = self.files.get(file_id)
        if data is None:
            raise ImageError("file_unavailable", detail=f"no file {file_id}")
        if len(data) > MAX_DOWNLOAD_BYTES:
            raise ImageError("file_too_big", limit_mb=MAX_DOWNLOAD_BYTES // (1024 * 1024))
        return data

    async def send_text(
        self, chat_id: int, text: str, *, reply_to: int | None = None,
        keyboard: Keyboard | None = None,
    ) -> int:
        if self.send_text_error is not None:
            raise self.send_text_error
        message_id = self._message_id()
        self.sent.append(SentText(chat_id, text, reply_to, keyboard, message_id))
        return message_id

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, *, keyboard: Keyboard | None = None
    ) -> None:
        if self.edit_error is not None:
            raise self.edit_error
        self.edits.append(EditedText(chat_id, message_id, text, keyboard))

    async def delete(self, chat_id: int, message_id: int) -> None:
        self.deleted.append((chat_id, message_id))

    async def show_uploading(self, chat_id: int) -> None:
        self.uploading.append(chat_id)

    async def send_images(
        self, chat_id: int, images: Sequence[OutgoingImage], *, caption: str, reply_to: int,
        keyboard: Keyboard | None,
    ) -> tuple[str, ...]:
        self.images_started.set()
        if self.hold_images is not None:
            await self.hold_images.wait()
        if self.send_images_error is not None:
            raise self.send_images_error
        file_ids = tuple(f"result-{self._next_file + i}" for i in range(len(images)))
        self._next_file += len(images)
        self.deliveries.append(
            SentImages(chat_id, tuple(images), caption, reply_to, keyboard, file_ids)
        )
        return file_ids

    def _message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id
