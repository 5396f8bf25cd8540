"""The bot as its own process: memory at depth and end-to-end overhead (issue 6, items 5-7).

Run from the repo root: ``.venv/bin/python -m bench.bot_process`` (both), or with
``--only depth`` / ``--only overhead``. ``python -m bot`` runs as a subprocess against the fake
Bot API and the DashScope emulator served by this process over loopback, so the figures (read
from ``/proc``: RSS, peak RSS, CPU time) are the bot's alone.

- depth: 1000 wanx jobs queued behind MAX_TASKS=4 (tasks of 10 minutes, so none ends): peak
  RSS growth while they are accepted and queued, over the idle bot just started ("cold") and
  over the bot idle again after a warm-up of 20 jobs ("warm": Pillow, the thread pool and the
  allocator have done their one-time growth). Every photo is a distinct Telegram file
  (1280x960 JPEG, 0.6 MB). ``--cache-mb`` reruns it with the prepared-image cache resized.
- overhead: the emulator at zero latency, caps far away (QPS 1000, 64 tasks): requests turned
  around per second (photo in -> result photo sent) and the bot's CPU seconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import bot.offline.bot_api as fake_telegram_module
from bench.common import (
    API_KEY,
    REPO,
    cpu_seconds,
    peak_rss_mb,
    photo_like,
    reset_peak_rss,
    rss_mb,
)
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator

START_TIMEOUT = 30.0


WARM_UP_JOBS = 20


@dataclass(frozen=True)
class DepthResult:
    jobs: int
    cache_mb: float | None  # the prepared-image cache's bound when not the bot's default
    idle_rss_mb: float  # just started
    warm_rss_mb: float  # after the warm-up jobs, settled
    peak_rss_mb: float
    final_rss_mb: float
    accept_seconds: float
    max_requests_1s: int
    max_in_progress: int
    qps: float
    max_tasks: int

    @property
    def growth_mb(self) -> float:
        return self.peak_rss_mb - self.idle_rss_mb

    @property
    def warm_growth_mb(self) -> float:
        return self.peak_rss_mb - self.warm_rss_mb


@dataclass(frozen=True)
class OverheadResult:
    requests: int
    seconds: float
    cpu_seconds: float
    telegram_calls: int
    call_mix: str  # Bot API methods called during the burst, most frequent first
    max_requests_1s: int
    max_in_progress: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_seconds / self.requests


def _bot_env(
    telegram: FakeTelegram, emulator: DashScopeEmulator, database: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DASHSCOPE_"))}
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": telegram.token,
            "DASHSCOPE_API_KEY": API_KEY,
            "TELEGRAM_API_URL": telegram.root_url,
            "DASHSCOPE_BASE_URL": emulator.base_url,
            "DATABASE_URL": f"sqlite:///{database}",
            "MONTHLY_QUOTA": "100000",
            "LOG_LEVEL": "WARNING",
        }
        | extra
    )
    return env


@asynccontextmanager
async def bot_process(
    env: dict[str, str], log: Path, module: str = "bot"
) -> AsyncIterator[int]:
    """``python -m bot`` until the block ends (SIGTERM, then SIGKILL); yields its pid."""
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, cwd=str(REPO), env=env, stdout=sink, stderr=sink
        )
    try:
        yield process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
        await process.wait()


async def _started(telegram: FakeTelegram) -> None:
    """The bot registered its commands: post_init is done but for starting the workers."""
    # Not getUpdates: a long poll only counts as a call once it ends (after its timeout).
    await telegram.wait_for_call("setMyCommands", timeout=START_TIMEOUT)
    await asyncio.sleep(0.5)


def _count_jobs(database: Path, states: tuple[str, ...] | None = None) -> int:
    with sqlite3.connect(database) as db:
        if states is None:
            return int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])
        marks = ",".join("?" * len(states))
        query = f"SELECT count(*) FROM jobs WHERE state IN ({marks})"
        return int(db.execute(query, states).fetchone()[0])


async def _until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    assert callable(condition)
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _fast_photos() -> None:
    """The fake derives thumbnails for every photo sent; for one image once is enough."""
    original = fake_telegram_module._prepare_photo
    if not isinstance(original, functools._lru_cache_wrapper):
        fake_telegram_module._prepare_photo = functools.lru_cache(maxsize=4)(original)


async def run_depth(
    jobs: int,
    folder: Path,
    *,
    users: int = 100,
    cache_mb: float | None = None,
    extra_env: dict[str, str] | None = None,
) -> DepthResult:
    qps, max_tasks = 10.0, 4
    _fast_photos()
    photo = photo_like(1280, 960, seed=5)
    database = folder / f"depth-{cache_mb}.sqlite3"
    module = "bot" if cache_mb is None else "bench.bot_launcher"
    async with FakeTelegram() as telegram:
        emulator = DashScopeEmulator(api_key=API_KEY, latency=(600.0, 600.0), seed=1)
        await emulator.start()
        try:
            env = _bot_env(
                telegram, emulator, database,
                DASHSCOPE_QPS=f"{qps:g}", DASHSCOPE_MAX_TASKS=str(max_tasks),
                BENCH_PREPARED_CACHE_MB=f"{cache_mb or 0:g}",
            ) | (extra_env or {})
            async with bot_process(env, folder / "depth.log", module) as pid:
                await _started(telegram)
                idle = rss_mb(pid)
                people = [telegram.user(1000 + i, f"user{i}") for i in range(users)]
                sent = 0

                async def send(count: int) -> None:
                    nonlocal sent
                    for _ in range(count):
                        person = people[sent % users]
                        chat = telegram.private_chat(person)
                        telegram.send_photo(person, chat, photo, "/colorize")
                        sent += 1
                    total = sent
                    await _until(lambda: _count_jobs(database) >= total, 600, f"{total} jobs")

                await send(min(WARM_UP_JOBS, jobs))
                await asyncio.sleep(1.0)
                warm = rss_mb(pid)
                if not reset_peak_rss(pid):
                    warm = peak_rss_mb(pid)
                started = time.monotonic()
                await send(jobs - sent)
                accepted = time.monotonic() - started
                await asyncio.sleep(1.0)
                peak, final = peak_rss_mb(pid), rss_mb(pid)
        finally:
            await emulator.close()
    return DepthResult(
        jobs=jobs, cache_mb=cache_mb, idle_rss_mb=idle, warm_rss_mb=warm, peak_rss_mb=peak,
        final_rss_mb=final,
        accept_seconds=accepted, max_requests_1s=emulator.max_requests_in_window(1.0),
        max_in_progress=emulator.max_tasks_in_progress(), qps=qps, max_tasks=max_tasks,
    )


async def run_overhead(requests: int, folder: Path, *, users: int = 50) -> OverheadResult:
    _fast_photos()
    photo = photo_like(640, 480, seed=6)
    database = folder / "overhead.sqlite3"
    async with FakeTelegram() as telegram:
        emulator = DashScopeEmulator(api_key=API_KEY, latency=(0.0, 0.0), seed=1)
        await emulator.start()
        try:
            env = _bot_env(
                telegram, emulator, database,
                DASHSCOPE_QPS="1000", DASHSCOPE_MAX_TASKS="64", DASHSCOPE_POLL_INTERVAL="0.05",
            )
            async with bot_process(env, folder / "overhead.log") as pid:
                await _started(telegram)
                calls_before = len(telegram.calls)
                cpu_before = cpu_seconds(pid)
                people = [telegram.user(2000 + i, f"user{i}") for i in range(users)]
                started = time.monotonic()
                for number in range(requests):
                    person = people[number % users]
                    telegram.send_photo(person, telegram.private_chat(person), photo, "/colorize")
                await _until(
                    lambda: _count_jobs(database, ("delivered",)) >= requests, 600,
                    f"{requests} deliveries",
                )
                elapsed = time.monotonic() - started
                cpu = cpu_seconds(pid) - cpu_before
                burst = telegram.calls[calls_before:]
                mix = Counter(call.method for call in burst if call.method != "getUpdates")
        finally:
            await emulator.close()
    return OverheadResult(
        requests=requests, seconds=elapsed, cpu_seconds=cpu, telegram_calls=mix.total(),
        call_mix=", ".join(f"{name} {count / requests:.1f}" for name, count in mix.most_common()),
        max_requests_1s=emulator.max_requests_in_window(1.0),
        max_in_progress=emulator.max_tasks_in_progress(),
    )


def report_depth(results: Sequence[DepthResult]) -> str:
    first = results[0]
    lines = [
        f"## Memory at depth: {first.jobs} wanx jobs queued behind MAX_TASKS={first.max_tasks}",
        "",
        "| prepared cache | idle RSS (cold) | after warm-up | peak RSS | growth over cold "
        "| growth over warm | RSS after | accepted in | max req in 1 s | max in progress |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ok = r.max_requests_1s <= r.qps and r.max_in_progress <= r.max_tasks
        cache = "bot default" if r.cache_mb is None else f"{r.cache_mb:g} MB"
        lines.append(
            f"| {cache} | {r.idle_rss_mb:.1f} MB | {r.warm_rss_mb:.1f} MB | "
            f"{r.peak_rss_mb:.1f} MB | {r.growth_mb:.1f} MB | {r.warm_growth_mb:.1f} MB | "
            f"{r.final_rss_mb:.1f} MB | {r.accept_seconds:.1f} s | "
            f"{r.max_requests_1s} (cap {r.qps:g}) | {r.max_in_progress} (cap {r.max_tasks}) "
            f"{'ok' if ok else 'OVER'} |"
        )
    return "\n".join(lines)


def report_overhead(result: OverheadResult) -> str:
    return "\n".join(
        [
            f"## Bot overhead end to end: {result.requests} /colorize requests, emulator at "
            "zero latency",
            "",
            "| requests/s | CPU s per request | CPU-bound ceiling | Bot API calls per request "
            "| max req in 1 s | max in progress |",
            "|---|---|---|---|---|---|",
            f"| {result.per_second:.1f} | {result.cpu_per_request * 1000:.1f} ms | "
            f"{1 / result.cpu_per_request:.0f} req/s | "
            f"{result.telegram_calls / result.requests:.1f} | {result.max_requests_1s} (cap 1000) "
            f"| {result.max_in_progress} (cap 64) |",
            "",
            f"Bot API calls per request (getUpdates left out): {result.call_mix}.",
        ]
    )


async def run(
    only: str | None,
    depth_jobs: int,
    overhead_requests: int,
    extra_env: dict[str, str],
    cache_sizes: Sequence[float],
) -> list[str]:
    sections: list[str] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if only in (None, "depth"):
            depth = [await run_depth(depth_jobs, folder, extra_env=extra_env)]
            for size in cache_sizes:
                depth.append(
                    await run_depth(depth_jobs, folder, cache_mb=size, extra_env=extra_env)
                )
            sections.append(report_depth(depth))
        if only in (None, "overhead"):
            sections.append(report_overhead(await run_overhead(overhead_requests, folder)))
    return sections


def main(argv: Sequence[str] | None = None) -> list[str]:
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("depth", "overhead"), default=None)
    parser.add_argument("--quick", action="store_true", help="20 jobs and 10 requests")
    parser.add_argument("--jobs", type=int, default=1000, help="queued jobs (depth)")
    parser.add_argument("--requests", type=int, default=200, help="requests (overhead)")
    parser.add_argument(
        "--bot-env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment for the bot at depth, e.g. MALLOC_ARENA_MAX=2",
    )
    parser.add_argument(
        "--cache-mb", type=float, action="append", default=[],
        help="also run the depth benchmark with the prepared-image cache bounded to this",
    )
    args = parser.parse_args(argv)
    jobs, requests = (30, 10) if args.quick else (args.jobs, args.requests)
    extra_env = dict(item.split("=", 1) for item in args.bot_env)
    sections = asyncio.run(run(args.only, jobs, requests, extra_env, args.cache_mb))
    print("\n\n".join(sections), flush=True)
    return sections


if __name__ == "__main__":
    main()
