"""Local limits that keep us under the service's: requests per second and tasks in progress.

Both make callers wait in FIFO order instead of failing. The rate limiter serves higher
priorities first, so a poll never takes the place of a waiting submit, and it keeps part of every
window free of polls, so a submit that arrives finds a grant even when polls are dense.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import IntEnum

# Sent and received times differ by a few milliseconds of jitter (a new connection, the event
# loop's turn); widening our window by this much keeps the *server's* count under the cap too.
DEFAULT_WINDOW_MARGIN = 0.05
# Grants of every window that polls may not take: a submit arriving while polls are dense is
# then sent at once instead of waiting for the window to slide (up to a second).
DEFAULT_POLL_RESERVE = 1


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

    :meth:`request` holds its entry in the log while the request is under way and stamps it
    with the time the exchange ended. The service receives a request between its grant and
    its answer, so however late a busy event loop or a slow connection sends it, the
    service's own count of any window stays within ``capacity`` too.
    """

    def __init__(
        self,
        qps: float,
        *,
        margin: float = DEFAULT_WINDOW_MARGIN,
        poll_reserve: int = DEFAULT_POLL_RESERVE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if qps <= 0:
            raise ValueError("qps must be positive")
        # At most floor(qps) per second; below 1 qps, one request per 1/qps seconds.
        self.capacity = max(1, math.floor(qps))
        self.window = max(1.0, self.capacity / qps) + margin
        # Polls may fill the window up to this many grants (at least one, or they never run).
        self.poll_capacity = max(1, self.capacity - max(0, poll_reserve))
        self._clock = clock
        self._granted: deque[float] = deque()
        self._in_flight = 0  # grants from request() whose exchange has not ended: never expire
        self._waiters: dict[Priority, deque[asyncio.Future[None]]] = {p: deque() for p in Priority}
        self._timer: asyncio.TimerHandle | None = None
        self._kind: dict[asyncio.Future[None], bool] = {}  # waiter -> granted via request()
        self.grants_by_priority: dict[Priority, int] = dict.fromkeys(Priority, 0)
        # The longest any caller of each priority waited for its grant, in seconds.
        self.max_wait: dict[Priority, float] = dict.fromkeys(Priority, 0.0)

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiters.values())

    @contextlib.asynccontextmanager
    async def request(self, priority: Priority = Priority.QUERY) -> AsyncIterator[None]:
        """A grant held for one exchange, then logged as if granted when the exchange ended."""
        await self.acquire(priority, in_flight=True)
        try:
            yield
        finally:
            self._in_flight -= 1
            self._granted.append(self._clock())
            self._dispatch()

    async def acquire(
        self, priority: Priority = Priority.QUERY, *, in_flight: bool = False
    ) -> None:
        """Wait for a grant; waiters of one priority are served in arrival order.

        ``in_flight``: the caller (:meth:`request`) ends the grant itself.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[priority].append(future)
        self._kind[future] = in_flight
        asked_at = self._clock()
        self._dispatch()
        # Cancelled while waiting: the future is skipped by _next_waiter. Cancelled just after
        # the grant: the grant stays counted, which errs on the safe side.
        try:
            await future
        except asyncio.CancelledError:
            if in_flight and future.done() and not future.cancelled():
                # Granted as we were cancelled: request() will not end it, so end it here.
                self._in_flight -= 1
                self._granted.append(self._clock())
            raise
        self.grants_by_priority[priority] += 1
        self.max_wait[priority] = max(self.max_wait[priority], self._clock() - asked_at)

    def _dispatch(self) -> None:
        now = self._clock()
        while self._granted and self._granted[0] <= now - self.window:
            self._granted.popleft()
        while self._used < self.capacity:
            polls_allowed = self._used < self.poll_capacity
            future = self._next_waiter(polls=polls_allowed)
            if future is None:
                break
            if self._kind.pop(future, False):
                self._in_flight += 1
            else:
                self._granted.append(now)
            future.set_result(None)
        if self._next_waiter(peek=True) is None:
            return
        # The next grant comes when enough old ones leave the window: one for anybody, more
        # when only polls wait and the window is above their share. Exchanges under way leave
        # it only when they end, and that end dispatches again.
        limit = self.capacity if self._next_waiter(peek=True, polls=False) else self.poll_capacity
        index = self._used - limit
        if index >= len(self._granted):
            return
        due = self._granted[max(0, index)] + self.window
        if self._timer is not None:
            if self._timer.when() <= self._loop_time(due, now):
                return
            self._timer.cancel()  # set for polls; a submit that came since needs it sooner
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, due - now), self._on_timer)

    @staticmethod
    def _loop_time(due: float, now: float) -> float:
        """``due`` on our clock as a time of the event loop's clock."""
        return asyncio.get_running_loop().time() + max(0.0, due - now)

    @property
    def _used(self) -> int:
        return len(self._granted) + self._in_flight

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _next_waiter(
        self, *, peek: bool = False, polls: bool = True
    ) -> asyncio.Future[None] | None:
        for priority in sorted(Priority, reverse=True):
            if priority is Priority.POLL and not polls:
                continue
            queue = self._waiters[priority]
            while queue and queue[0].done():  # cancelled while waiting
                self._kind.pop(queue.popleft(), None)
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

    @property
    def free(self) -> bool:
        """Whether an acquire now would get a slot without waiting."""
        return self.in_use < self.capacity and self.waiting == 0

    async def acquire(self, on_wait: Callable[[int], Awaitable[None]] | None = None) -> None:
        """Take a slot, waiting behind everyone who asked earlier.

        ``on_wait(ahead)`` is awaited when a wait starts (already in line, so nobody passes
        meanwhile), with the number of waiters ahead of this one.
        """
        if self.free:
            self._take()
            return
        ahead = self.waiting
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            if on_wait is not None:
                await on_wait(ahead)
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                # The slot was handed to us as we were cancelled: pass it on.
                self.release()
            else:
                future.cancel()  # out of the line (release skips it)
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
