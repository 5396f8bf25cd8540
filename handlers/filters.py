"""Message filters the routes in ``bot.app.build_application`` are built from."""

from __future__ import annotations

from telegram import Message
from telegram.ext import filters

from bot.commands import is_command
from handlers.common import image_of


class _FromPerson(filters.MessageFilter):
    """Sent by a person: other bots (and anonymous channel posts) are not served."""

    def filter(self, message: Message) -> bool:
        return message.from_user is not None and not message.from_user.is_bot


class _CommandText(filters.MessageFilter):
    """Text or caption that starts with a ``/command`` (ours or not, for this bot or another)."""

    def filter(self, message: Message) -> bool:
        return is_command(message.caption or message.text or "")


class _Image(filters.MessageFilter):
    """Carries something we may read as an image: a photo, a document, a static sticker."""

    def filter(self, message: Message) -> bool:
        return image_of(message) is not None


class _RepliesToImage(filters.MessageFilter):
    """Replies to a message that carries an image."""

    def filter(self, message: Message) -> bool:
        return image_of(message.reply_to_message) is not None


class _InAlbum(filters.MessageFilter):
    """Part of an album (a media group): Telegram sends each of its images on its own."""

    def filter(self, message: Message) -> bool:
        return message.media_group_id is not None


FROM_PERSON = _FromPerson(name="FROM_PERSON")
IN_ALBUM = _InAlbum(name="IN_ALBUM")
REPLIES_TO_IMAGE = _RepliesToImage(name="REPLIES_TO_IMAGE")
COMMAND_TEXT = _CommandText(name="COMMAND_TEXT")
IMAGE = _Image(name="IMAGE")
# New messages only: edits, channel posts and service messages (joins, pins) are not requests.
NEW_MESSAGE = filters.UpdateType.MESSAGE & ~filters.StatusUpdate.ALL & FROM_PERSON
