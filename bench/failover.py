"""Three instances on one PostgreSQL (issue #15): how long without a leader, what a leader costs.

Run from the repo root: ``.venv/bin/python -m bench.failover`` (about 3 minutes on a 2-core
machine; ``--trials N``, ``--jobs N``, ``--failover-jobs N``). The instances are
``python -m bot`` processes in webhook mode behind the fake Bot API's round-robin balancer
(tests/cluster.py), on a fresh database on TEST_POSTGRES_URL's server (dropped at the end); the
fakes serve in this process over loopback.

- failover: a batch of ``/upscale 2`` photos in flight (tasks of 1.5-3 s); once the emulator has
  a task in progress, the leader is SIGKILLed at a random moment within the followers' retry
  interval. Measured: the seconds from the kill until a survivor says it leads (its "elected
  leader" line or /readyz, whichever is seen first) and until the first DashScope request after
  the kill (the new leader at work: the dead one sends none). Over ``--trials`` runs, each on
  emptied tables: median and max; whether every photo got exactly one result; DashScope tasks
  per job (above one when the kill fell between a submit and its record: the dead leader's task
  cannot be found again, see tests/test_instances.py).
- what the leader adds over one process: the same batch through one instance on SQLite and
  through three on PostgreSQL, tasks of 1 s, no server cap, so the emulator's peak of tasks in
  progress shows what the instances keep to together (DASHSCOPE_MAX_TASKS=2 each): wall time
  from the first photo sent to the last result, against the ideal jobs / 2 x 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.leader import RETRY_INTERVAL
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from tests.cluster import results_for, running_cluster, send_photos
from tests.harness import API_KEY
from tests.stores import DEFAULT_POSTGRES_URL, create_database, drop_database, empty_database

FAILOVER_LATENCY = (1.5, 3.0)
BATCH_LATENCY = 1.0
MAX_TASKS = 2  # DASHSCOPE_MAX_TASKS of every instance (tests/cluster.py)
# How long a run waits for a leader, a request or the results before it counts as missing.
LEADER_TIMEOUT = 15.0
RESULTS_TIMEOUT = 180.0


@dataclass(frozen=True)
class Trial:
    elected: float | None  # seconds from the kill to a survivor leading; None: none in time
    first_request: float | None  # seconds from the kill to the next DashScope request
    # Seconds from the kill to the first poll of a task the dead leader had submitted (its
    # jobs taken over once their leases ended); None: no such task, or none polled in time.
    taken_over: float | None
    jobs: int
    served_once: int  # photos of the batch with exactly one result
    tasks: int  # DashScope tasks created (one per job when none was submitted twice)


@dataclass(frozen=True)
class Batch:
    setup: str
    jobs: int
    seconds: float | None  # None: not every photo had a result within RESULTS_TIMEOUT
    peak_in_progress: int
    throttled: int  # submits the emulator refused (429); none without a server cap
    served_once: int


async def _until(condition: Callable[[], bool | Awaitable[bool]], timeout: float) -> bool:
    """Poll ``condition`` until true; False when ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


async def failover_trial(number: int, database_url: str, folder: Path, jobs: int) -> Trial:
    await empty_database(database_url)
    async with (
        FakeTelegram() as telegram,
        DashScopeEmulator(api_key=API_KEY, latency=FAILOVER_LATENCY, seed=number) as emulator,
        running_cluster(telegram, emulator, database_url, folder) as cluster,
    ):
        leader = await cluster.leader(timeout=LEADER_TIMEOUT)
        requests = send_photos(telegram, 1000 * (number + 1), jobs)
        await _until(lambda: emulator.tasks_in_progress() >= 1, LEADER_TIMEOUT)
        # At a random point of the followers' retry cycle, or every trial would measure
        # the same phase of it.
        await asyncio.sleep(random.Random(number).uniform(0, RETRY_INTERVAL))
        elections = cluster.elections()
        leader.kill()
        killed_at = leader.killed_at
        assert killed_at is not None
        try:
            _, elected = await cluster.next_election(killed_at, elections,
                                                     timeout=LEADER_TIMEOUT)
        except AssertionError:
            elected = None
        first_request: float | None = None
        if await _until(lambda: any(r.received_at > killed_at
                                    for r in emulator.requests), LEADER_TIMEOUT):
            first_request = min(r.received_at for r in emulator.requests
                                if r.received_at > killed_at) - killed_at
        await _until(lambda: all(results_for(telegram, r) for r in requests),
                     RESULTS_TIMEOUT)
        await asyncio.sleep(1.0)  # a second result, if one were coming
        dead_leaders = {task_id for task_id, task in emulator.tasks.items()
                        if task.submitted_at < killed_at}
        polls = [r.received_at - killed_at for r in emulator.requests_to("query")
                 if r.task_id in dead_leaders and r.received_at > killed_at]
        taken_over = min(polls, default=None)
        served_once = sum(results_for(telegram, r) == 1 for r in requests)
    return Trial(elected=elected, first_request=first_request, taken_over=taken_over, jobs=jobs,
                 served_once=served_once, tasks=len(emulator.tasks))


async def batch_run(setup: str, database_url: str, folder: Path, size: int, jobs: int) -> Batch:
    async with (
        FakeTelegram() as telegram,
        DashScopeEmulator(api_key=API_KEY, latency=(BATCH_LATENCY, BATCH_LATENCY)) as emulator,
        running_cluster(telegram, emulator, database_url, folder, size=size) as cluster,
    ):
        if size > 1:
            await cluster.leader(timeout=LEADER_TIMEOUT)
        started = time.monotonic()
        requests = send_photos(telegram, 5000, jobs)
        done = await _until(lambda: all(results_for(telegram, r) for r in requests),
                            RESULTS_TIMEOUT)
        seconds = time.monotonic() - started if done else None
        await asyncio.sleep(1.0)
        served_once = sum(results_for(telegram, r) == 1 for r in requests)
    throttled = sum(r.status == 429 for r in emulator.requests_to("submit"))
    return Batch(setup=setup, jobs=jobs, seconds=seconds,
                 peak_in_progress=emulator.max_tasks_in_progress(), throttled=throttled,
                 served_once=served_once)


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f} s"


def _summary(values: Sequence[float | None]) -> str:
    seen = [value for value in values if value is not None]
    if not seen:
        return "none | none"
    missing = len(values) - len(seen)
    tail = f" ({missing} of {len(values)} none)" if missing else ""
    return f"{statistics.median(seen):.2f} s | {max(seen):.2f} s{tail}"


def report_failover(trials: Sequence[Trial]) -> str:
    lines = [
        f"## Failover: three instances, the leader killed with {trials[0].jobs} jobs in flight "
        f"({len(trials)} trials)",
        "",
        "| from the kill to | median | max |",
        "|---|---|---|",
        f"| a survivor leading | {_summary([t.elected for t in trials])} |",
        f"| the next DashScope request | {_summary([t.first_request for t in trials])} |",
        f"| the dead leader's tasks polled again | {_summary([t.taken_over for t in trials])} |",
        "",
        "| trial | leading after | next request after | its tasks polled after | served once "
        "| tasks / jobs |",
        "|---|---|---|---|---|---|",
    ]
    for number, t in enumerate(trials, 1):
        lines.append(f"| {number} | {_seconds(t.elected)} | {_seconds(t.first_request)} | "
                     f"{_seconds(t.taken_over)} | {t.served_once}/{t.jobs} | "
                     f"{t.tasks}/{t.jobs} |")
    return "\n".join(lines)


def report_batches(batches: Sequence[Batch]) -> str:
    jobs = batches[0].jobs
    ideal = jobs / MAX_TASKS * BATCH_LATENCY
    lines = [
        f"## What the leader adds: {jobs} jobs, tasks of {BATCH_LATENCY:g} s, "
        f"DASHSCOPE_MAX_TASKS={MAX_TASKS} per instance (ideal {ideal:.1f} s)",
        "",
        "| setup | wall time | over ideal | peak tasks in progress | submits refused "
        "| served once |",
        "|---|---|---|---|---|---|",
    ]
    for b in batches:
        over = "n/a" if b.seconds is None else f"{b.seconds / ideal:.2f}x"
        lines.append(f"| {b.setup} | {_seconds(b.seconds)} | {over} | {b.peak_in_progress} "
                     f"(cap {MAX_TASKS}) | {b.throttled} | {b.served_once}/{b.jobs} |")
    return "\n".join(lines)


async def run(trials: int, failover_jobs: int, batch_jobs: int, server: str) -> list[str]:
    database_url = await create_database(server)
    try:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            results = []
            for number in range(trials):
                trial_folder = folder / f"trial{number}"
                trial_folder.mkdir()
                results.append(
                    await failover_trial(number, database_url, trial_folder, failover_jobs))
            one, three = folder / "one", folder / "three"
            one.mkdir()
            three.mkdir()
            await empty_database(database_url)
            batches = [
                await batch_run("one instance, SQLite", f"sqlite:///{one / 'bot.sqlite3'}",
                                one, 1, batch_jobs),
                await batch_run("three instances, PostgreSQL", database_url, three, 3,
                                batch_jobs),
            ]
    finally:
        await drop_database(server, database_url)
    return [report_failover(results), report_batches(batches)]


def main(argv: Sequence[str] | None = None) -> list[str]:
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 trial, batches of 4 jobs")
    parser.add_argument("--trials", type=int, default=5, help="failover trials")
    parser.add_argument("--jobs", type=int, default=20, help="jobs per batch")
    parser.add_argument("--failover-jobs", type=int, default=8, help="jobs in flight per trial")
    args = parser.parse_args(argv)
    trials, failover_jobs, batch_jobs = ((1, 4, 4) if args.quick
                                         else (args.trials, args.failover_jobs, args.jobs))
    server = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    sections = asyncio.run(run(trials, failover_jobs, batch_jobs, server))
    print("\n\n".join(sections), flush=True)
    return sections


if __name__ == "__main__":
    main()
