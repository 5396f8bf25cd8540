"""The QPS and in-progress caps hold under load, measured by the emulator (real sockets)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.bailian import BailianClient, PollPolicy, RetryPolicy
from bot.offline.dashscope import DashScopeEmulator
from tests.test_bailian_client import API_KEY, wanx

# Real-time windows and subprocesses: in the full run (`pytest`), not in the fast lane.
pytestmark = pytest.mark.slow

JOBS = 50
QPS = 10
MAX_TASKS = 2


async def test_fifty_concurrent_jobs_stay_under_both_caps() -> None:
    # The emulator enforces the same caps: a breach would show up as a 429 in its records.
    emulator = DashScopeEmulator(
        api_key=API_KEY,
        latency=(0.1, 0.3),
        seed=7,
        server_max_tasks=MAX_TASKS,
        server_qps=QPS,
    )
    await emulator.start()
    policy = PollPolicy(
        first_delay=0.15,
        lag_per_poll=0.002,
        min_interval=0.03,
        max_dense_interval=0.1,
        max_interval=0.5,
        prior_latency=(0.1, 0.3),
        margin=0.05,
    )
    # No retries: a single 429 from the emulator's own enforcement fails the test.
    retry = RetryPolicy(max_attempts=1)
    try:
        async with aiohttp.ClientSession() as session:
            client = BailianClient(
                session,
                api_root=emulator.base_url + "/api/v1",
                api_key=API_KEY,
                qps=QPS,
                max_tasks=MAX_TASKS,
                retry=retry,
                poll_policy=policy,
            )
            try:

                async def job(number: int) -> int:
                    outcome = await client.wait(await client.submit(wanx(prompt=f"job {number}")))
                    return len(outcome.urls)

                results = await asyncio.gather(*(job(n) for n in range(JOBS)))
            finally:
                await client.close()
    finally:
        await emulator.close()
    assert results == [1] * JOBS
    assert len(emulator.tasks) == JOBS
    assert all(r.status == 200 for r in emulator.requests)
    assert emulator.max_requests_in_window(1.0) <= QPS
    assert emulator.max_tasks_in_progress() <= MAX_TASKS
    # The caps were actually reached, so the test measures something.
    assert emulator.max_tasks_in_progress() == MAX_TASKS
    assert client.slots.max_in_use == MAX_TASKS and client.slots.in_use == 0
