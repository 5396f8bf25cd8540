"""Polling benchmark: polls per task and end-detection lag against the emulator.

Run from the repo root: ``.venv/bin/python -m bench.polling [--tasks 20] [--qps 50] [--seed 1]``.
Lag = the emulator's time of the first query that saw the task's final status minus its due_at.

The default ``--qps 50`` keeps the request budget out of the way so the policy is measured;
with ``--qps 10`` and 20 tasks in flight at once the budget binds (20 tasks ending together
need about 20 polls/s for 1 s lags) and the figures measure the budget, not the policy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import statistics
import time
from collections.abc import Sequence

import aiohttp
from PIL import Image

from bot.bailian import BailianClient, EditRequest, Function, Model, PollPolicy
from bot.offline.dashscope import DashScopeEmulator

API_KEY = "bench-key"


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (no interpolation: with 20 values, p95 is the 19th)."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def image_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (512, 512), "grey").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def run(
    tasks: int,
    qps: float,
    seed: int,
    latency: tuple[float, float],
    policy: PollPolicy,
    max_tasks: int | None = None,
) -> None:
    emulator = DashScopeEmulator(api_key=API_KEY, latency=latency, seed=seed)
    await emulator.start()
    request = EditRequest(
        model=Model.WANX_IMAGE_EDIT,
        prompt="add a red hat",
        base_image=image_uri(),
        function=Function.DESCRIPTION_EDIT,
    )
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession() as session:
            client = BailianClient(
                session,
                api_root=emulator.base_url + "/api/v1",
                api_key=API_KEY,
                qps=qps,
                max_tasks=max_tasks or tasks,
                poll_policy=policy,
            )
            try:

                async def job() -> None:
                    await client.wait(await client.submit(request))

                await asyncio.gather(*(job() for _ in range(tasks)))
            finally:
                await client.close()
    finally:
        await emulator.close()
    elapsed = time.monotonic() - started
    records = list(emulator.tasks.values())
    polls = [float(t.polls) for t in records]
    lags = [t.final_seen_at - t.due_at for t in records if t.final_seen_at is not None]
    durations = [t.due_at - t.submitted_at for t in records]
    print(
        f"tasks={tasks} max_tasks={max_tasks or tasks} "
        f"latency={latency[0]:g}-{latency[1]:g}s seed={seed} qps={qps:g} "
        f"poll_interval={policy.first_delay:g} lag_per_poll={policy.lag_per_poll:g}"
    )
    print(f"task durations: min {min(durations):.2f} s, max {max(durations):.2f} s")
    print(
        f"polls per task: mean {statistics.mean(polls):.2f}, median "
        f"{statistics.median(polls):.1f}, max {max(polls):.0f}, total {sum(polls):.0f}"
    )
    print(
        f"detection lag: median {statistics.median(lags):.3f} s, "
        f"p95 {percentile(lags, 0.95):.3f} s, max {max(lags):.3f} s"
    )
    print(f"max API requests in any 1 s window: {emulator.max_requests_in_window(1.0)}")
    print(f"wall time {elapsed:.1f} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--qps", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, nargs=2, default=(5.0, 15.0))
    parser.add_argument("--max-tasks", type=int, default=None, help="default: --tasks")
    parser.add_argument("--lag-per-poll", type=float, default=PollPolicy().lag_per_poll)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 4 tasks, everything 25x faster"
    )
    args = parser.parse_args(argv)
    policy = PollPolicy(lag_per_poll=args.lag_per_poll)
    latency = (args.latency[0], args.latency[1])
    tasks, qps = args.tasks, args.qps
    if args.quick:
        from bench.slots import QUICK_SCALE, scaled_policy

        policy = scaled_policy(QUICK_SCALE, args.lag_per_poll)
        latency = (latency[0] * QUICK_SCALE, latency[1] * QUICK_SCALE)
        tasks, qps = 4, qps / QUICK_SCALE
    asyncio.run(run(tasks, qps, args.seed, latency, policy, args.max_tasks))


if __name__ == "__main__":
    main()
