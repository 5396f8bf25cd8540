"""The retry policy: the pure delay function (table) and the loop with sleeps patched out."""

from __future__ import annotations

import pytest

from bot.bailian.retry import RetryPolicy, call_with_retries, retry_delay
from bot.errors import AccountError, RetryableError, ServiceBusyError

POLICY = RetryPolicy(
    max_attempts=5, initial_delay=0.5, max_delay=8.0, max_retry_after=60.0, total_budget=60.0
)


@pytest.mark.parametrize(
    ("retries_done", "retry_after", "rng", "expected"),
    [
        (0, None, 1.0, 0.5),
        (0, None, 0.5, 0.25),
        (0, None, 0.0, 0.0),
        (1, None, 1.0, 1.0),
        (2, None, 1.0, 2.0),
        (3, None, 1.0, 4.0),
        (4, None, 1.0, 8.0),
        (5, None, 1.0, 8.0),  # capped
        (10, None, 0.5, 4.0),  # capped, then jittered
        (0, 3.0, 0.1, 3.0),  # Retry-After obeyed as is, no jitter
        (3, 0.0, 0.7, 0.0),
        (0, 60.0, 1.0, 60.0),
        (0, 61.0, 1.0, 0.5),  # not sane: backoff instead
        (2, -1.0, 0.5, 1.0),  # not sane: backoff instead
    ],
)
def test_retry_delay_table(
    retries_done: int, retry_after: float | None, rng: float, expected: float
) -> None:
    assert retry_delay(POLICY, retries_done, retry_after, rng=lambda: rng) == pytest.approx(
        expected
    )


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_retries_retryable_errors_then_succeeds() -> None:
    time = FakeTime()
    failures = [RetryableError("Throttling", status=429), RetryableError("InternalError")]

    async def operation() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    result = await call_with_retries(
        operation, POLICY, what="t", sleep=time.sleep, clock=time.clock, rng=lambda: 1.0
    )
    assert result == "done"
    assert time.sleeps == [0.5, 1.0]


async def test_does_not_retry_other_errors() -> None:
    time = FakeTime()
    calls = 0

    async def operation() -> None:
        nonlocal calls
        calls += 1
        raise AccountError("Throttling.AllocationQuota", status=429)

    with pytest.raises(AccountError):
        await call_with_retries(operation, POLICY, what="t", sleep=time.sleep, clock=time.clock)
    assert calls == 1 and time.sleeps == []


async def test_attempt_budget_ends_in_service_busy() -> None:
    time = FakeTime()
    calls = 0

    async def operation() -> None:
        nonlocal calls
        calls += 1
        raise RetryableError("Throttling.RateQuota", "busy", status=429, request_id="r")

    with pytest.raises(ServiceBusyError) as info:
        await call_with_retries(
            operation, POLICY, what="t", sleep=time.sleep, clock=time.clock, rng=lambda: 1.0
        )
    assert calls == 5 and len(time.sleeps) == 4
    assert (info.value.code, info.value.status, info.value.request_id) == (
        "Throttling.RateQuota",
        429,
        "r",
    )
    assert isinstance(info.value.__cause__, RetryableError)


async def test_time_budget_ends_in_service_busy_before_a_sleep_that_would_overrun() -> None:
    time = FakeTime()
    policy = RetryPolicy(max_attempts=100, initial_delay=1.0, max_delay=4.0, total_budget=10.0)

    async def operation() -> None:
        raise RetryableError("InternalError", status=500)

    with pytest.raises(ServiceBusyError):
        await call_with_retries(
            operation, policy, what="t", sleep=time.sleep, clock=time.clock, rng=lambda: 1.0
        )
    # 1 + 2 + 4 = 7 s slept; the next 4 s would end at 11 s > 10 s, so it gives up instead.
    assert time.sleeps == [1.0, 2.0, 4.0]
    assert time.now <= policy.total_budget


async def test_retry_after_beyond_the_time_budget_gives_up_at_once() -> None:
    time = FakeTime()
    policy = RetryPolicy(total_budget=5.0)

    async def operation() -> None:
        raise RetryableError("Throttling", status=429, retry_after=30.0)

    with pytest.raises(ServiceBusyError):
        await call_with_retries(operation, policy, what="t", sleep=time.sleep, clock=time.clock)
    assert time.sleeps == []
