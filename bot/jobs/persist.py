"""State writes that must not be lost to a passing database fault.

A job whose state write failed (disk full, locked past the busy timeout, read-only file) would
otherwise be stranded until the next restart, or worse, a result Telegram already accepted would
be sent again after it. So the pipeline's state writes are retried, with backoff, for as long as
the process lives; the job waits meanwhile, and a stop leaves it resumable as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_PAUSE = 0.2
MAX_PAUSE = 30.0


async def persist(write: Callable[[], Awaitable[T]], what: str) -> T:
    """``write()`` until the database takes it."""
    pause = FIRST_PAUSE
    while True:
        try:
            return await write()
        except StoreUnavailableError as exc:
            logger.error("%s: the database is unavailable (%s); trying again in %.1f s",
                         what, exc, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE)
