"""While a job waits for an in-progress slot, tasks are polled more densely (issue 6)."""

from __future__ import annotations

import asyncio
import base64
import io
import math

import aiohttp
import pytest
from PIL import Image

from bot.bailian import (
    BailianClient,
    EditRequest,
    Function,
    Model,
    PollPolicy,
    Priority,
    next_poll_delay,
)
from bot.bailian.poller import contended_policy
from bot.offline.dashscope import DashScopeEmulator

# Real-time windows and subprocesses: in the full run (`pytest`), not in the fast lane.
pytestmark = pytest.mark.slow

API_KEY = "contention-key"


def test_contended_policy_lowers_the_poll_price_and_the_dense_bound() -> None:
    policy = PollPolicy(lag_per_poll=0.02, max_dense_interval=0.8, contended_lag_factor=0.25)
    contended = contended_policy(policy)
    assert contended.lag_per_poll == pytest.approx(0.005)
    assert contended.max_dense_interval == pytest.approx(0.4)
    region, hazard = (4.5, 15.5), 0.2
    calm = next_poll_delay(policy, region, 10.0, hazard)
    busy = next_poll_delay(contended, region, 10.0, hazard)
    assert calm == pytest.approx(math.sqrt(2 * 0.02 / hazard))
    assert busy == pytest.approx(calm / 2)
    # Before the region nothing changes: polls there cannot catch an end.
    assert next_poll_delay(contended, region, 2.0, hazard) == next_poll_delay(
        policy, region, 2.0, hazard
    )


@pytest.mark.parametrize("factor", [1.0, 5.0])
def test_a_factor_of_one_or_more_changes_nothing(factor: float) -> None:
    policy = PollPolicy(contended_lag_factor=factor)
    contended = contended_policy(policy)
    assert contended.lag_per_poll == policy.lag_per_poll
    assert contended.max_dense_interval == policy.max_dense_interval


def test_the_dense_bound_never_drops_below_the_minimum_interval() -> None:
    policy = PollPolicy(min_interval=0.3, max_dense_interval=0.8, contended_lag_factor=0.01)
    assert contended_policy(policy).max_dense_interval == 0.3


def _png_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (512, 512), "grey").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def _first_task_polls(
    max_tasks: int,
    *,
    latency: float = 0.6,
    prior: tuple[float, float] = (0.1, 1.0),
    first_delay: float = 0.05,
) -> tuple[int, int]:
    """Two tasks of ``latency`` s; (polls of the first task, polls chosen under contention)."""
    emulator = DashScopeEmulator(api_key=API_KEY, latency=(latency, latency), seed=1)
    await emulator.start()
    policy = PollPolicy(
        first_delay=first_delay, prior_latency=prior, lag_per_poll=0.01, min_interval=0.01,
        max_dense_interval=0.2, max_interval=0.5, margin=0.05,
    )
    request = EditRequest(
        model=Model.WANX_IMAGE_EDIT, prompt="add a hat", base_image=_png_uri(),
        function=Function.DESCRIPTION_EDIT,
    )
    try:
        async with aiohttp.ClientSession() as session:
            client = BailianClient(
                session, api_root=emulator.base_url + "/api/v1", api_key=API_KEY, qps=200,
                max_tasks=max_tasks, poll_policy=policy,
            )
            try:

                async def job() -> None:
                    await client.wait(await client.submit(request))

                await asyncio.gather(job(), job())
            finally:
                await client.close()
            assert client.slots.max_in_use <= max_tasks
            assert client.limiter.grants_by_priority[Priority.SUBMIT] == 2
    finally:
        await emulator.close()
    first = min(emulator.tasks.values(), key=lambda task: task.submitted_at)
    return first.polls, client.poller.stats.contended_polls


async def test_a_job_waiting_for_a_slot_makes_the_running_task_polled_more_often() -> None:
    free_polls, free_contended = await _first_task_polls(max_tasks=2)
    busy_polls, busy_contended = await _first_task_polls(max_tasks=1)
    assert free_contended == 0  # nobody ever waited for a slot
    assert busy_contended > 0
    assert busy_polls > free_polls


async def test_a_task_older_than_any_seen_gets_no_denser_schedule() -> None:
    # Tasks are expected to end within 0.15 s; this one takes 1 s while the next job waits,
    # and its first poll already comes later than any task is expected to last.
    polls, contended = await _first_task_polls(
        max_tasks=1, latency=1.0, prior=(0.05, 0.1), first_delay=0.3
    )
    assert polls >= 3
    assert contended == 0
