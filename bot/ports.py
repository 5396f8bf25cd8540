"""What the job pipeline needs from the chat platform, as a Protocol it can be tested against.

The pipeline knows nothing of Telegram; ``bot.telegram_io`` implements this with
python-telegram-bot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Telegram's getFile refuses anything larger.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Button:
    """Either callback ``data`` or a ``web_app`` URL (a Mini App; private chats only)."""

    label: str
    data: str = ""  # callback data, <= 64 bytes
    web_app: str | None = None

    def __post_init__(self) -> None:
        if bool(self.data) == (self.web_app is not None):
            raise ValueError("a button has either callback data or a web_app URL")


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class OutgoingImage:
    data: bytes
    filename: str
    as_photo: bool  # False: too big for a photo, send as a document
    also_document: bool = False  # /upscale: the full-resolution file as well
    # When too big for a photo: a JPEG that fits one, shown as the photo with the original
    # following as a document (None: the document alone).
    preview: bytes | None = None

    @property
    def photo(self) -> bytes | None:
        """What goes as the photo: the image itself, its preview, or nothing."""
        return self.data if self.as_photo else self.preview

    @property
    def photo_filename(self) -> str:
        if self.as_photo:
            return self.filename
        return f"{self.filename.rpartition('.')[0] or self.filename}-preview.jpg"


class Messenger(Protocol):
    async def download(self, file_id: str) -> bytes:
        """The file's bytes; ImageError("file_too_big") above MAX_DOWNLOAD_BYTES."""
        ...

    async def send_text(
        self, chat_id: int, text: str, *, reply_to: int | None = None,
        keyboard: Keyboard | None = None,
    ) -> int:
        """Send a message (HTML); returns its id. Replies fall back to a plain send."""
        ...

    async def edit_text(
        self, chat_id: int, message_id: int, text: str, *, keyboard: Keyboard | None = None
    ) -> None: ...

    async def delete(self, chat_id: int, message_id: int) -> None: ...

    async def show_uploading(self, chat_id: int) -> None: ...

    async def send_images(
        self, chat_id: int, images: Sequence[OutgoingImage], *, caption: str, reply_to: int,
        keyboard: Keyboard | None,
    ) -> tuple[str, ...]:
        """Deliver the images (one media group when several); returns their Telegram file ids."""
        ...
