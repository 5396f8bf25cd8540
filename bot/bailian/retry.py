"""Retry policy: named constants, a pure delay function, and one loop that applies them.

Only :class:`RetryableError` is retried (throttling, 5xx, timeouts, dropped connections); a retry
that would break the attempt or time budget ends in :class:`ServiceBusyError` instead.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.errors import RetryableError, ServiceBusyError

T = TypeVar("T")

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# A Retry-After above this is not believed (a misconfigured proxy), backoff applies instead.
MAX_RETRY_AFTER = 60.0
# Wall time from the first attempt after which we stop starting new ones.
TOTAL_RETRY_BUDGET = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; the defaults are the constants above."""

    max_attempts: int = MAX_ATTEMPTS
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    max_retry_after: float = MAX_RETRY_AFTER
    total_budget: float = TOTAL_RETRY_BUDGET


DEFAULT_RETRY_POLICY = RetryPolicy()


def retry_delay(
    policy: RetryPolicy,
    retries_done: int,
    retry_after: float | None = None,
    *,
    rng: Callable[[], float] = _random.random,
) -> float:
    """Seconds to wait before retry number ``retries_done + 1``.

    A sane ``Retry-After`` (0..max_retry_after) is obeyed as is: the server knows when it will
    have room. Otherwise full jitter over a capped exponential, so clients that failed together
    do not come back together.
    """
    if retry_after is not None and 0.0 <= retry_after <= policy.max_retry_after:
        return retry_after
    ceiling = min(policy.max_delay, policy.initial_delay * 2.0**retries_done)
    return ceiling * rng()


async def call_with_retries(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = _random.random,
) -> T:
    """Await ``operation()`` until it succeeds, retrying RetryableError within the budget."""
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except ServiceBusyError:
            raise
        except RetryableError as exc:
            delay = retry_delay(policy, attempt - 1, exc.retry_after, rng=rng)
            out_of_attempts = attempt >= policy.max_attempts
            out_of_time = clock() - started + delay > policy.total_budget
            if out_of_attempts or out_of_time:
                log.warning("%s: giving up after %d attempts (%s)", what, attempt, exc.code)
                raise ServiceBusyError(
                    exc.code,
                    exc.message,
                    status=exc.status,
                    request_id=exc.request_id,
                    retry_after=exc.retry_after,
                ) from exc
            log.info("%s: %s, retry %d in %.2f s", what, exc.code, attempt, delay)
            await sleep(delay)
