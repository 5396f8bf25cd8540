"""Local limits that keep us under the service's: requests per second and tasks in progress.

Both make callers wait in FIFO order instead of failing. The rate limiter serves higher
priorities first, so a poll never takes the place of a waiting submit.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum

# Sent and received times differ by a few milliseconds of jitter (a new connection, the event
# loop's turn); widening our window by this much keeps the *server's* count under the cap too.
DEFAULT_WINDOW_MARGIN = 0.05


class Priority(IntEnum):
    """Who gets the next free request when several wait; higher goes first."""

    POLL = 0  # background polls: a late poll costs a little lag
    QUERY = 1  # explicit queries and cancels asked for by a caller
    SUBMIT = 2  # submits and qwen calls: a user is waiting for the job to start


class RateLimiter:
    """At most ``capacity`` grants in any window of ``window`` seconds (a sliding log).

    Unlike a token bucket refilled at the average rate, the log guarantees the window property
    itself: the grant that would be the (capacity+1)-th inside any window waits until the oldest
    one leaves it.
    """

    def __init__(
        self,
        qps: float,
        *,
        margin: float = DEFAULT_WINDOW_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if qps <= 0:
            raise ValueError("qps must be positive")
        # At most floor(qps) per second; below 1 qps, one request per 1/qps seconds.
        self.capacity = max(1, math.floor(qps))
        self.window = max(1.0, self.capacity / qps) + margin
        self._clock = clock
        self._granted: deque[float] = deque()
        self._waiters: dict[Priority, deque[asyncio.Future[None]]] = {p: deque() for p in Priority}
        self._timer: asyncio.TimerHandle | None = None
        self.grants_by_priority: dict[Priority, int] = dict.fromkeys(Priority, 0)

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiters.values())

    async def acquire(self, priority: Priority = Priority.QUERY) -> None:
        """Wait for a grant; waiters of one priority are served in arrival order."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[priority].append(future)
        self._dispatch()
        # Cancelled while waiting: the future is skipped by _next_waiter. Cancelled just after
        # the grant: the grant stays counted, which errs on the safe side.
        await future
        self.grants_by_priority[priority] += 1

    def _dispatch(self) -> None:
        now = self._clock()
        while self._granted and self._granted[0] <= now - self.window:
            self._granted.popleft()
        while len(self._granted) < self.capacity:
            future = self._next_waiter()
            if future is None:
                return
            self._granted.append(now)
            future.set_result(None)
        if self._next_waiter(peek=True) is not None and self._timer is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._granted[0] + self.window - now)
            self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _next_waiter(self, *, peek: bool = False) -> asyncio.Future[None] | None:
        for priority in sorted(Priority, reverse=True):
            queue = self._waiters[priority]
            while queue and queue[0].done():  # cancelled while waiting
                queue.popleft()
            if queue:
                return queue[0] if peek else queue.popleft()
        return None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class SlotQueue:
    """At most ``capacity`` holders at once; waiters get a slot in arrival order."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.in_use = 0
        self.max_in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self) -> None:
        """Take a slot, waiting behind everyone who asked earlier."""
        if self.in_use < self.capacity and not any(not f.done() for f in self._waiters):
            self._take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # The slot was handed to us as we were cancelled: pass it on.
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back; the longest waiter (if any) gets it at once."""
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)  # the slot passes on, in_use unchanged
                return
        if self.in_use <= 0:
            raise RuntimeError("release() without a matching acquire()")
        self.in_use -= 1

    def _take(self) -> None:
        self.in_use += 1
        self.max_in_use = max(self.max_in_use, self.in_use)
