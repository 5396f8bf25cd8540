"""Per-person limits on cheap requests, so that one person cannot slow everyone down.

Every answer goes through the Bot API's flood limits (about 30 messages a second in all, which
PTB's rate limiter enforces), so 150 ``/help`` from one person in a second would queue five
seconds of answers in front of everybody else's. Cheap requests (messages that are not an edit
of an image) pass a token bucket per person; the excess is dropped without an answer. Edits are
limited by the quota and the job queue instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# A person may send this many cheap requests at once (CHEAP_REQUEST_BURST)...
BURST = 10
# ...and one more every this many seconds after that (CHEAP_REQUEST_INTERVAL).
REFILL_SECONDS = 0.5
# Buckets kept at most; full ones (people who stopped) are forgotten first.
MAX_TRACKED = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class PerUserLimit:
    """A token bucket per user id."""

    def __init__(
        self, *, burst: int = BURST, refill_seconds: float = REFILL_SECONDS,
        clock: Callable[[], float] = time.monotonic, max_tracked: int = MAX_TRACKED,
    ) -> None:
        self._burst = float(burst)
        self._rate = 1.0 / refill_seconds
        self._clock = clock
        self._max_tracked = max_tracked
        self._buckets: dict[int, _Bucket] = {}

    def allow(self, user_id: int) -> bool:
        """Take a token for ``user_id``; False when they have none left (drop the request)."""
        now = self._clock()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            if len(self._buckets) >= self._max_tracked:
                self._forget_full(now)
            bucket = self._buckets[user_id] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _forget_full(self, now: float) -> None:
        for user_id, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self._rate >= self._burst:
                del self._buckets[user_id]
        if len(self._buckets) >= self._max_tracked:  # all busy: forget the oldest
            oldest = min(self._buckets, key=lambda uid: self._buckets[uid].updated)
            del self._buckets[oldest]
