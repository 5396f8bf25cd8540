"""What the web server needs from the conversation: the /erase waits it draws masks for."""

from __future__ import annotations

from typing import Protocol

from bot.texts import Lang


class DrawingDesk(Protocol):
    """The open /erase waits, as the Mini App sees them (handlers/masks.py implements it)."""

    async def photo(self, user_id: int, chat_id: int, request_message_id: int) -> bytes | None:
        """The base photo's bytes for that person's open wait; None: no such wait, or over."""
        ...

    async def lang(self, user_id: int) -> Lang:
        """The language the person reads."""
        ...

    async def submit(
        self, user_id: int, chat_id: int, request_message_id: int, png: bytes
    ) -> str | None:
        """Run the wait's request with the drawn mask: None when accepted, else why not
        (a text in the person's language)."""
        ...
