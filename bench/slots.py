"""Slot efficiency, ours vs the official SDK, detection lag and its curve (issue 6, items 1-3, 7).

Run from the repo root: ``.venv/bin/python -m bench.slots`` (about 2 minutes: 40 tasks of
5-15 s on 4 slots). Every client runs at the same time, side by side, each against its own
emulator with the same seed (so the same 40 durations in the same order):

- ours: ``BailianClient`` (rate limiter, slot queue, poller) with its default poll policy, and
  the same client at other ``lag_per_poll`` settings (the lag-vs-polls curve);
- the SDK: ``dashscope.ImageSynthesis.call`` (submit + its own wait loop) in MAX_TASKS threads.

Slot efficiency = ideal makespan (the same durations list-scheduled on MAX_TASKS slots with
zero lag) / achieved makespan (first submit -> last end seen), both on the emulator's clock.
Lag = the emulator's time of the first answer that showed the end - the task's due end.
``--quick`` scales every duration and the poll policy down 25 times (a smoke run of seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from http import HTTPStatus

import aiohttp

from bench.common import API_KEY, TaskRun, caps_line, small_png_uri, task_run
from bot.bailian import BailianClient, EditRequest, Function, Model, PollPolicy, Priority
from bot.offline.dashscope import DashScopeEmulator

QUICK_SCALE = 0.04


@dataclass(frozen=True)
class SlotsConfig:
    jobs: int = 40
    users: int = 10
    slots: int = 4
    qps: float = 10.0
    latency: tuple[float, float] = (5.0, 15.0)
    seed: int = 1
    lag_settings: tuple[float, ...] = (0.005, 0.02, 0.08)  # lag_per_poll values for the curve
    sdk: bool = True
    without_contention_rule: bool = True  # also run the default with contended_lag_factor=1
    scale: float = 1.0  # durations and poll intervals are multiplied by this


@dataclass(frozen=True)
class SlotsResult:
    config: SlotsConfig
    ours: TaskRun  # the default policy
    curve: dict[float, TaskRun]  # lag_per_poll -> run (the default included)
    submit_wait: dict[float, float]  # lag_per_poll -> longest a submit waited for the QPS budget
    sdk: TaskRun | None
    # The default policy without the denser schedule while a job waits for a slot.
    without_rule: TaskRun | None = None

    @property
    def ratio_vs_sdk(self) -> float | None:
        return None if self.sdk is None else self.ours.achieved / self.sdk.achieved


def scaled_policy(
    scale: float, lag_per_poll: float | None = None, contended_lag_factor: float | None = None
) -> PollPolicy:
    """The default policy with every duration multiplied by ``scale``."""
    base = PollPolicy()
    if contended_lag_factor is not None:
        base = replace(base, contended_lag_factor=contended_lag_factor)
    low, high = base.prior_latency
    return replace(
        base,
        first_delay=base.first_delay * scale,
        lag_per_poll=(base.lag_per_poll if lag_per_poll is None else lag_per_poll) * scale,
        min_interval=base.min_interval * scale,
        max_dense_interval=base.max_dense_interval * scale,
        max_interval=base.max_interval * scale,
        prior_latency=(low * scale, high * scale),
        margin=base.margin * scale,
    )


def _emulator(config: SlotsConfig) -> DashScopeEmulator:
    low, high = config.latency
    return DashScopeEmulator(
        api_key=API_KEY, latency=(low * config.scale, high * config.scale), seed=config.seed
    )


async def run_ours(config: SlotsConfig, policy: PollPolicy) -> tuple[TaskRun, float]:
    """Every job submitted at once through one client: the slot queue and the poller pace them."""
    emulator = _emulator(config)
    await emulator.start()
    image = small_png_uri()
    try:
        async with aiohttp.ClientSession() as session:
            client = BailianClient(
                session,
                api_root=emulator.base_url + "/api/v1",
                api_key=API_KEY,
                qps=config.qps,
                max_tasks=config.slots,
                poll_policy=policy,
            )
            try:

                async def job(number: int) -> None:
                    request = EditRequest(
                        model=Model.WANX_IMAGE_EDIT,
                        prompt=f"user {number % config.users}: add a red hat",
                        base_image=image,
                        function=Function.DESCRIPTION_EDIT,
                    )
                    await client.wait(await client.submit(request))

                await asyncio.gather(*(job(i) for i in range(config.jobs)))
            finally:
                await client.close()
        return task_run(emulator, config.slots), client.limiter.max_wait[Priority.SUBMIT]
    finally:
        await emulator.close()


def _sdk_jobs(config: SlotsConfig, root: str) -> None:
    """MAX_TASKS threads, each taking the next job and running ImageSynthesis.call on it."""
    import dashscope
    from dashscope import ImageSynthesis

    dashscope.base_http_api_url = root
    image = small_png_uri()
    lock = threading.Lock()
    remaining = [config.jobs]

    def worker() -> None:
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            response = ImageSynthesis.call(
                model="wanx2.1-imageedit",
                prompt="add a red hat",
                function="description_edit",
                base_image_url=image,
                api_key=API_KEY,
            )
            if response.status_code != HTTPStatus.OK:
                raise RuntimeError(f"SDK call failed: {response}")

    try:
        with ThreadPoolExecutor(config.slots) as pool:
            for future in [pool.submit(worker) for _ in range(config.slots)]:
                future.result()
    finally:
        dashscope.close_shared_sync_session()


async def run_sdk(config: SlotsConfig) -> TaskRun:
    emulator = _emulator(config)
    await emulator.start()
    try:
        await asyncio.to_thread(_sdk_jobs, config, emulator.base_url + "/api/v1")
        return task_run(emulator, config.slots)
    finally:
        await emulator.close()


async def run(config: SlotsConfig) -> SlotsResult:
    default = PollPolicy().lag_per_poll
    settings = sorted({*config.lag_settings, default})
    policies = [scaled_policy(config.scale, lag) for lag in settings]
    if config.without_contention_rule:
        policies.append(scaled_policy(config.scale, default, contended_lag_factor=1.0))
    ours = asyncio.gather(*(run_ours(config, policy) for policy in policies))
    if config.sdk:
        pairs, sdk = await asyncio.gather(ours, run_sdk(config))
    else:
        pairs, sdk = await ours, None
    curve = {lag: pair[0] for lag, pair in zip(settings, pairs, strict=False)}
    waits = {lag: pair[1] for lag, pair in zip(settings, pairs, strict=False)}
    without_rule = pairs[-1][0] if config.without_contention_rule else None
    return SlotsResult(config, curve[default], curve, waits, sdk, without_rule)


def report(result: SlotsResult) -> str:
    config = result.config
    unit = "s" if config.scale == 1 else f"s x{config.scale:g}"
    lines = [
        f"## Slots: {config.jobs} wanx jobs, latency {config.latency[0]:g}-{config.latency[1]:g} "
        f"{unit} (seed {config.seed}), MAX_TASKS={config.slots}, QPS={config.qps:g}",
        "",
        "| client | ideal makespan | achieved | slot efficiency | lag median | lag p95 "
        "| lag mean | handover | polls/task |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [("ours (default policy)", result.ours)]
    if result.without_rule is not None:
        rows.append(("ours without the contention rule", result.without_rule))
    if result.sdk is not None:
        rows.append(("official SDK (ImageSynthesis.call)", result.sdk))
    for name, run_ in rows:
        lines.append(
            f"| {name} | {run_.ideal:.1f} s | {run_.achieved:.1f} s | {run_.efficiency:.3f} "
            f"| {run_.lag_median:.3f} s | {run_.lag_p95:.3f} s | {run_.lag_mean:.3f} s "
            f"| {run_.handover_mean * 1000:.0f} ms | {run_.polls_mean:.1f} |"
        )
    if result.ratio_vs_sdk is not None:
        lines += ["", f"completion time ours / SDK: {result.ratio_vs_sdk:.3f}"]
    lines += [
        "",
        "Lag vs polls (ours, `lag_per_poll` = the price of one poll in seconds of lag):",
        "",
        "| lag_per_poll | polls/task | lag median | lag p95 | slot efficiency "
        "| max req in 1 s | longest submit wait for QPS |",
        "|---|---|---|---|---|---|---|",
    ]
    for lag, run_ in result.curve.items():
        lines.append(
            f"| {lag:g} | {run_.polls_mean:.1f} | {run_.lag_median:.3f} s | {run_.lag_p95:.3f} s "
            f"| {run_.efficiency:.3f} | {run_.max_requests_1s} "
            f"| {result.submit_wait[lag] * 1000:.0f} ms |"
        )
    lines += [
        "",
        "| caps: run | max requests in 1 s | max tasks in progress | |",
        "|---|---|---|---|",
    ]
    for lag, run_ in result.curve.items():
        lines.append(caps_line(f"ours lag_per_poll={lag:g}", run_, config.qps, config.slots))
    if result.without_rule is not None:
        lines.append(
            caps_line("ours without the contention rule", result.without_rule, config.qps,
                      config.slots)
        )
    if result.sdk is not None:
        lines.append(caps_line("SDK", result.sdk, config.qps, config.slots))
    return "\n".join(lines)


def parse_config(argv: Sequence[str] | None = None) -> SlotsConfig:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 jobs, everything 25x faster")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-sdk", action="store_true")
    args = parser.parse_args(argv)
    config = SlotsConfig(seed=args.seed, sdk=not args.no_sdk)
    if args.quick:
        # The request budget scales with time too, or it alone would set the lag.
        config = replace(
            config, jobs=6, slots=2, scale=QUICK_SCALE, qps=config.qps / QUICK_SCALE,
            lag_settings=(0.02,), without_contention_rule=False,
        )
    if args.jobs is not None:
        config = replace(config, jobs=args.jobs)
    return config


def main(argv: Sequence[str] | None = None) -> SlotsResult:
    result = asyncio.run(run(parse_config(argv)))
    print(report(result), flush=True)
    return result


if __name__ == "__main__":
    main()
