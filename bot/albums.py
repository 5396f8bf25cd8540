"""Albums: the parts of a media group gathered into one request.

Telegram sends an album as one message (one update) per image, sharing a ``media_group_id``,
the caption usually on the first part only, all within about a second. Behind a webhook load
balancer those updates may reach different instances, so the parts are gathered in the store
(``album_parts``), not in this process: every handler call records its part, then waits until
no part of the album has arrived for a short window; then the call whose part has the smallest
update id among the parts not yet taken takes them all, in one write transaction, and handles
the album. The calls of the other parts return None.

The store decides, not a local wake-up: waiting is timed by the newest part's arrival, which a
local event would not shorten. Arrival times are the inserting instance's clock, so instances
must agree on the time to well within the window (NTP does).

What can go wrong, and what happens then:
- A part sent again (the same update) is kept once; its call finds it taken, or waits along.
- A part that arrives after its album was taken (later than the window) makes an album of its
  own: one image without the first part's caption, so in a private chat the person gets the
  "write the command in the caption" hint (or a command they sent before runs on it). It never
  joins or repeats the album already accepted.
- A process that dies while its call holds the album's smallest part leaves the album
  unhandled (nothing reserved, nothing charged): the person sends it again. Parts are deleted
  a day after they arrived by the periodic prune (bot/app.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from storage.models import AlbumPart, Store

__all__ = ["ALBUM_MEMORY", "MAX_ALBUM_IMAGES", "AlbumCollector", "AlbumKey", "AlbumPart"]

# Telegram's own limit on a media group; more than this from one album runs only these.
MAX_ALBUM_IMAGES = 10

# Parts are deleted this long after they arrived: an album is taken within seconds, and a part
# kept a day is still there when Telegram sends its update again (it retries for 24 h).
ALBUM_MEMORY = timedelta(days=1)

AlbumKey = tuple[int, str]  # (chat id, media_group_id)


class AlbumCollector:
    """Gathers the parts of each album, in the store, for ``window`` seconds after the last."""

    def __init__(self, store: Store, window: float) -> None:
        self._store = store
        self._window = window

    async def gather(self, key: AlbumKey, part: AlbumPart) -> tuple[AlbumPart, ...] | None:
        """The whole album, in update order, to one call (that of its smallest update id,
        once the window has passed); None to the calls of the other parts."""
        chat_id, group = key
        await self._store.add_album_part(chat_id, group, part)
        while True:  # polling the store: the part that ends the quiet may reach anywhere
            quiet = await self._store.album_quiet_for(chat_id, group)
            if quiet >= self._window:
                break
            await asyncio.sleep(self._window - quiet)
        return await self._store.take_album(chat_id, group, part.update_id)
