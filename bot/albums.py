"""Albums: the parts of a media group gathered into one request.

Telegram sends an album as one message (one update) per image, sharing a ``media_group_id``,
the caption usually on the first part only, all within about a second. The collector keeps the
parts in memory, keyed by (chat, media group), until none has come for a short window, and then
hands the whole album to the one handler call that brought its first part; the calls of the
other parts return at once.

In memory is enough: an album arrives in one burst, so nothing needs to outlive the window, and
a crash while one is being gathered loses only a request not yet accepted (nothing reserved,
nothing charged): the person sends it again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

# Telegram's own limit on a media group; more than this from one album runs only these.
MAX_ALBUM_IMAGES = 10

AlbumKey = tuple[int, str]  # (chat id, media_group_id)


@dataclass(frozen=True)
class AlbumPart:
    """One message of an album: its update, its message, its image and its caption."""

    update_id: int
    message_id: int
    file_id: str
    caption: str  # "" when it has none


@dataclass
class _Gathering:
    parts: list[AlbumPart]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # another part came


class AlbumCollector:
    """Gathers the parts of each album for ``window`` seconds after the last one."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._gathering: dict[AlbumKey, _Gathering] = {}

    async def gather(self, key: AlbumKey, part: AlbumPart) -> tuple[AlbumPart, ...] | None:
        """The whole album, in update order, to the call that brought its first part (once the
        window has passed); None to the calls of the other parts."""
        gathering = self._gathering.get(key)
        if gathering is not None:
            gathering.parts.append(part)
            gathering.arrived.set()
            return None
        gathering = _Gathering(parts=[part])
        self._gathering[key] = gathering
        try:
            while True:
                try:
                    await asyncio.wait_for(gathering.arrived.wait(), self._window)
                except TimeoutError:
                    break  # quiet for a whole window: the album is complete
                gathering.arrived.clear()
        finally:
            del self._gathering[key]
        return tuple(sorted(gathering.parts, key=lambda p: p.update_id))
