"""The rate limiter's window property and priorities; the FIFO slot queue; the poll schedule."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time

import pytest

from bot.bailian.limits import Priority, RateLimiter, SlotQueue
from bot.bailian.poller import LatencyModel, PollPolicy, next_poll_delay


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = first = 0
    for last, instant in enumerate(times):
        while instant - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


@pytest.mark.slow
@pytest.mark.parametrize("qps", [5.0, 7.5, 20.0])
async def test_never_more_than_qps_in_any_one_second_window(qps: float) -> None:
    limiter = RateLimiter(qps, margin=0.01)
    grants: list[float] = []

    async def one(priority: Priority) -> None:
        await limiter.acquire(priority)
        grants.append(time.monotonic())

    started = time.monotonic()
    count = int(qps) * 2 + 1
    await asyncio.gather(*(one(Priority(i % 3)) for i in range(count)))
    limiter.close()
    assert max_in_window(grants, 1.0) <= int(qps)
    # Not an average: the first second's burst goes out at once, then the window slides.
    assert time.monotonic() - started == pytest.approx(2.02, abs=0.15)


async def test_below_one_qps_spaces_requests() -> None:
    limiter = RateLimiter(2.0 / 3.0, margin=0.0)  # one per 1.5 s
    assert (limiter.capacity, limiter.window) == (1, 1.5)


@pytest.mark.slow
async def test_submits_go_before_polls_that_waited_longer() -> None:
    # No reserve: six polls fill the window, so everything below waits for it to slide.
    limiter = RateLimiter(6, margin=0.0, poll_reserve=0)
    order: list[str] = []
    for _ in range(6):
        await limiter.acquire(Priority.POLL)  # the window is now full

    async def one(name: str, priority: Priority) -> None:
        await limiter.acquire(priority)
        order.append(name)

    polls = [asyncio.create_task(one(f"poll{i}", Priority.POLL)) for i in range(3)]
    await asyncio.sleep(0.05)
    submits = [asyncio.create_task(one(f"submit{i}", Priority.SUBMIT)) for i in range(2)]
    query = asyncio.create_task(one("query", Priority.QUERY))
    await asyncio.gather(*polls, *submits, query)
    limiter.close()
    assert order == ["submit0", "submit1", "query", "poll0", "poll1", "poll2"]
    assert limiter.grants_by_priority[Priority.POLL] == 9


@pytest.mark.slow
async def test_polls_leave_a_grant_free_for_a_submit() -> None:
    limiter = RateLimiter(6, margin=0.0, poll_reserve=1)
    assert limiter.poll_capacity == 5
    for _ in range(5):
        await limiter.acquire(Priority.POLL)
    sixth_poll = asyncio.create_task(limiter.acquire(Priority.POLL))
    await asyncio.sleep(0.05)
    assert not sixth_poll.done()  # the window holds 5 polls: their share is used up
    started = time.monotonic()
    await limiter.acquire(Priority.SUBMIT)
    assert time.monotonic() - started < 0.05  # the reserved grant, at once
    await sixth_poll  # after the window slides
    limiter.close()
    assert limiter.max_wait[Priority.SUBMIT] < 0.05
    assert 0.9 < limiter.max_wait[Priority.POLL] < 1.2


@pytest.mark.slow
async def test_a_submit_arriving_behind_a_waiting_poll_is_served_when_the_window_allows() -> None:
    limiter = RateLimiter(6, margin=0.0, poll_reserve=1)
    started = time.monotonic()
    await limiter.acquire(Priority.POLL)  # t=0
    await asyncio.sleep(0.3)
    for _ in range(4):
        await limiter.acquire(Priority.POLL)  # t=0.3
    await limiter.acquire(Priority.SUBMIT)  # t=0.3: the window is full
    poll = asyncio.create_task(limiter.acquire(Priority.POLL))  # may go at 1.3 (polls' share)
    await asyncio.sleep(0.05)
    await limiter.acquire(Priority.SUBMIT)  # may go at 1.0, when the first grant leaves
    submitted_after = time.monotonic() - started
    await poll
    limiter.close()
    assert submitted_after == pytest.approx(1.0, abs=0.1)
    assert time.monotonic() - started == pytest.approx(1.3, abs=0.1)


@pytest.mark.parametrize("qps", [1.0, 0.5])
async def test_polls_still_run_when_the_window_holds_one_grant(qps: float) -> None:
    limiter = RateLimiter(qps, margin=0.0, poll_reserve=1)
    assert limiter.poll_capacity == 1
    started = time.monotonic()
    await limiter.acquire(Priority.POLL)
    limiter.close()
    assert time.monotonic() - started < 0.05


@pytest.mark.slow
async def test_a_cancelled_waiter_does_not_use_a_grant() -> None:
    limiter = RateLimiter(1, margin=0.0)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    started = time.monotonic()
    await limiter.acquire()
    limiter.close()
    assert time.monotonic() - started < 1.1  # got the slot of the cancelled one, not a later one


async def test_slot_queue_is_fifo_and_bounded() -> None:
    slots = SlotQueue(2)
    order: list[int] = []
    holding = 0
    peak = 0

    async def job(number: int) -> None:
        nonlocal holding, peak
        await slots.acquire()
        order.append(number)
        holding += 1
        peak = max(peak, holding)
        await asyncio.sleep(0.01)
        holding -= 1
        slots.release()

    tasks = []
    for number in range(10):
        tasks.append(asyncio.create_task(job(number)))
        await asyncio.sleep(0)  # arrival order = number
    await asyncio.gather(*tasks)
    assert order == list(range(10))
    assert peak == 2 and slots.max_in_use == 2 and slots.in_use == 0


async def test_slot_handed_to_a_cancelled_waiter_passes_on() -> None:
    slots = SlotQueue(1)
    await slots.acquire()
    first = asyncio.create_task(slots.acquire())
    second = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    first.cancel()
    slots.release()
    await asyncio.wait_for(second, 1.0)
    assert slots.in_use == 1
    slots.release()
    assert slots.in_use == 0
    with pytest.raises(RuntimeError):
        slots.release()


POLICY = PollPolicy(
    first_delay=2.0,
    lag_per_poll=0.04,
    min_interval=0.15,
    max_dense_interval=1.0,
    max_interval=5.0,
    margin=0.5,
    prior_latency=(5.0, 15.0),
    prior_weight=10.0,
)


@pytest.mark.parametrize(
    ("elapsed", "hazard", "expected"),
    [
        (0.0, 0.0, 4.5),  # before the region: straight to its start (4.5 s)
        (2.0, 0.0, 2.5),
        (4.4, 0.0, 0.15),  # almost there: the floor
        (5.0, 0.1, math.sqrt(0.8)),  # sqrt(2 * 0.04 / 0.1)
        (10.0, 0.2, math.sqrt(0.4)),
        (14.0, 1.0, math.sqrt(0.08)),
        (14.9, 10.0, 0.15),  # the floor
        (6.0, 0.01, 1.0),  # rare ends: bounded by max_dense_interval
        (6.0, 0.0, 1.0),
        (16.5, 0.0, 1.0),  # 1 s past the region: back off from max_dense_interval
        (19.5, 0.0, 2.0),  # 4 s past: half the overshoot
        (60.0, 0.0, 5.0),  # capped
    ],
)
def test_poll_schedule(elapsed: float, hazard: float, expected: float) -> None:
    region = LatencyModel(POLICY).region()
    assert region == (4.5, 15.5)
    assert next_poll_delay(POLICY, region, elapsed, hazard) == pytest.approx(expected)


def test_prior_hazard_is_that_of_a_uniform_distribution() -> None:
    model = LatencyModel(POLICY)
    for elapsed in (6.0, 10.0, 13.0):
        assert model.hazard(elapsed) == pytest.approx(1 / (15.0 - elapsed))
    assert model.hazard(14.8) == pytest.approx(0.07 / 0.0245)  # steep near the end
    assert model.hazard(2.0) == 0.0
    assert model.hazard(20.0) == 0.0


def test_hazard_learns_from_finished_and_running_tasks() -> None:
    model = LatencyModel(dataclasses.replace(POLICY, prior_weight=0.0))
    for duration in (3.0, 3.1, 3.2, 3.3):
        model.observe(duration)
    # Four ends in [2.6, 3.6] over 0.4 + 0.5 + 0.6 + 0.7 s spent at risk there.
    assert model.hazard(3.1) == pytest.approx(4 / 2.2)
    # Eight tasks still running at 3.1 s add 0.5 s of exposure each and no end (yet).
    assert model.hazard(3.1, running=[3.1] * 8) == pytest.approx(4 / 6.2)


def test_latency_model_learns_the_region_and_resists_survivorship() -> None:
    model = LatencyModel(POLICY)
    for duration in (2.0, 2.5, 3.0):
        model.observe(duration)
    assert model.region() == (1.5, 3.5)
    # Another task is 9 s old and still running: durations that long exist.
    assert model.region(running_elapsed=9.0) == (1.5, 9.5)


@pytest.mark.slow
async def test_an_exchange_counts_until_it_ends_and_then_from_its_end() -> None:
    limiter = RateLimiter(1, margin=0.0)
    started = time.monotonic()
    async with limiter.request(Priority.SUBMIT):
        await asyncio.sleep(0.4)  # sent late, or answered slowly: the service saw it by now
    await limiter.acquire(Priority.SUBMIT)
    limiter.close()
    # Stamped at its end (0.4 s), so the next grant comes a window after that, not after 1.0 s.
    assert time.monotonic() - started == pytest.approx(1.4, abs=0.1)


@pytest.mark.slow
async def test_exchanges_under_way_never_expire_from_the_window() -> None:
    limiter = RateLimiter(2, margin=0.0)
    release = asyncio.Event()

    async def slow_exchange() -> None:
        async with limiter.request(Priority.QUERY):
            await release.wait()

    exchanges = [asyncio.create_task(slow_exchange()) for _ in range(2)]
    await asyncio.sleep(0.01)
    third = asyncio.create_task(limiter.acquire(Priority.SUBMIT))
    await asyncio.sleep(1.2)  # longer than the window: still two exchanges under way
    assert not third.done()
    release.set()
    await asyncio.gather(*exchanges)
    await asyncio.wait_for(third, 2.0)  # not at once: the two just ended count from their end
    limiter.close()


@pytest.mark.slow
async def test_an_exchange_cancelled_while_waiting_for_its_grant_holds_nothing() -> None:
    limiter = RateLimiter(1, margin=0.0)
    await limiter.acquire(Priority.SUBMIT)

    async def exchange() -> None:
        async with limiter.request(Priority.SUBMIT):
            pass

    waiting = asyncio.create_task(exchange())
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    started = time.monotonic()
    await limiter.acquire(Priority.SUBMIT)  # after the first grant leaves the window
    limiter.close()
    assert time.monotonic() - started < 1.1
    assert limiter._in_flight == 0
