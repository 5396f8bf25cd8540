"""The store under pressure: concurrent reservations and random histories (SQLite and
PostgreSQL), and a killed writer (SQLite)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import IllegalTransitionError, QuotaExceededError
from storage import ALLOWED_TRANSITIONS, Job, JobState, NewJob, SqliteStore
from storage.factory import engine_url
from storage.sql import SqlStore
from tests.stores import Stores, empty_database

SHANGHAI = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parents[1]


def new_job(user_id: int, n: int = 1, *, unlimited: bool = False) -> NewJob:
    return NewJob(
        user_id=user_id,
        chat_id=user_id,
        request_message_id=1,
        command="edit",
        model="qwen-image-edit",
        function=None,
        spec_json="{}",
        input_file_id="f",
        images_requested=n,
        unlimited=unlimited,
    )


async def try_create(store: SqliteStore, job: NewJob) -> bool:
    try:
        await store.create_job(job)
    except QuotaExceededError:
        return False
    return True


async def test_200_concurrent_reservations_against_50(stores: Stores) -> None:
    async with await stores.open(default_limit=50, tz=SHANGHAI) as store:
        await store.touch_user(1, None, "U", None)
        results = await asyncio.gather(*(try_create(store, new_job(1)) for _ in range(200)))
        assert sum(results) == 50
        status = await store.quota_status(1)
        assert (status.reserved, status.remaining) == (50, 0)
        assert len(await store.resumable_jobs()) == 50


async def test_two_stores_on_one_database_still_reserve_exactly_50(stores: Stores) -> None:
    # Two processes, as far as the database can tell: two connections (on PostgreSQL, two
    # pools), each store with its own asyncio lock.
    first = await stores.open(default_limit=50, tz=SHANGHAI)
    second = await stores.open(default_limit=50, tz=SHANGHAI)
    try:
        await first.touch_user(1, None, "U", None)
        results = await asyncio.gather(
            *(try_create(store, new_job(1)) for _ in range(100) for store in (first, second))
        )
        assert sum(results) == 50
        for store in (first, second):
            assert (await store.quota_status(1)).reserved == 50
            assert len(await store.resumable_jobs()) == 50
    finally:
        await first.close()
        await second.close()


async def test_cancelled_coroutines_leave_no_transaction_open(stores: Stores) -> None:
    async with await stores.open(default_limit=1000, tz=SHANGHAI) as store:
        await store.touch_user(1, None, "U", None)
        for delay in (0, 0.0005, 0.001, 0.002, 0.005):
            tasks = [asyncio.create_task(store.create_job(new_job(1, 2))) for _ in range(20)]
            await asyncio.sleep(delay)
            for task in tasks[::2]:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, (Job, asyncio.CancelledError)) for r in results), results
            assert any(isinstance(r, Job) for r in results)
            # The connection is usable and every committed job carries its reservation.
            job = await store.create_job(new_job(1, 1))
            await store.refund(job.id)
            jobs = await store.resumable_jobs()
            assert (await store.quota_status(1)).reserved == sum(
                j.images_requested for j in jobs if j.reservation_open
            )


# --- random histories (property-based) ---------------------------------------------------------

LIMIT = 6
ADMIN = 2  # creates with unlimited=True

job_index = st.integers(min_value=0, max_value=15)
operation = st.one_of(
    st.tuples(st.just("create"), st.sampled_from([1, ADMIN]), st.integers(1, 4)),
    st.tuples(st.just("settle"), job_index, st.integers(0, 5)),
    st.tuples(st.just("refund"), job_index),
    st.tuples(st.just("succeed"), job_index),
    st.tuples(st.just("deliver"), job_index, st.integers(0, 5)),
    st.tuples(st.just("fail"), job_index),
    st.tuples(st.just("cancel"), job_index),
    st.tuples(st.just("next_month")),
)


@dataclass
class Expected:
    """What the test believes about one job."""

    job_id: int
    user_id: int
    month: str
    requested: int
    state: JobState = JobState.QUEUED
    open: bool = True
    charged: int = 0


async def replay(database: Path | str, operations: list[tuple[Any, ...]]) -> None:
    """Run ``operations`` on a new store on ``database`` (an SQLite file or a PostgreSQL URL)."""
    clock_now = [datetime(2026, 11, 30, 15, 59, 58, tzinfo=UTC)]  # 2 s before December
    if isinstance(database, Path):
        store = await SqliteStore.open(
            database, default_limit=LIMIT, tz=SHANGHAI, clock=lambda: clock_now[0]
        )
    else:
        await empty_database(database)
        store = await SqlStore.connect(engine_url(database), default_limit=LIMIT, tz=SHANGHAI,
                                       clock=lambda: clock_now[0])
    try:
        for user_id in (1, ADMIN):
            await store.touch_user(user_id, None, "U", None)
        jobs: list[Expected] = []
        for op in operations:
            kind = op[0]
            if kind == "next_month":
                clock_now[0] += timedelta(days=31)
                continue
            if kind == "create":
                user_id, n = int(op[1]), int(op[2])
                month = store.current_month()
                status = await store.quota_status(user_id)
                fits = user_id == ADMIN or status.used + status.reserved + n <= LIMIT
                try:
                    job = await store.create_job(new_job(user_id, n, unlimited=user_id == ADMIN))
                except QuotaExceededError as exc:
                    assert not fits and exc.remaining == status.remaining
                else:
                    assert fits and job.quota_month == month
                    jobs.append(Expected(job.id, user_id, month, n))
                continue
            if not jobs:
                continue
            target = jobs[int(op[1]) % len(jobs)]
            if kind == "settle":
                charge = min(int(op[2]), target.requested)
                assert await store.settle(target.job_id, int(op[2])) is target.open
                if target.open:
                    target.open, target.charged = False, charge
            elif kind == "refund":
                assert await store.refund(target.job_id) is target.open
                target.open = False
            else:
                await transition(store, target, kind, op)
            await check(store, jobs)
        await check(store, jobs)
    finally:
        await store.close()


async def transition(store: SqliteStore, target: Expected, kind: str, op: tuple[Any, ...]) -> None:
    goal = {
        "succeed": JobState.SUCCEEDED,
        "deliver": JobState.DELIVERED,
        "fail": JobState.FAILED,
        "cancel": JobState.CANCELED,
    }[kind]
    legal = goal in ALLOWED_TRANSITIONS[target.state]
    try:
        if goal is JobState.SUCCEEDED:
            await store.mark_succeeded(target.job_id, ("u",))
        elif goal is JobState.DELIVERED:
            delivered = int(op[2])
            await store.mark_delivered(target.job_id, delivered)
            if target.open:
                target.open, target.charged = False, min(delivered, target.requested)
        elif goal is JobState.FAILED:
            await store.mark_failed(target.job_id, "c", "m")
            target.open = False
        else:
            await store.mark_canceled(target.job_id)
            target.open = False
    except IllegalTransitionError:
        assert not legal
    else:
        assert legal
        target.state = goal


async def check(store: SqliteStore, jobs: list[Expected]) -> None:
    """used + reserved equal what the jobs account for, per user and month."""
    keys = {(job.user_id, job.month) for job in jobs}
    for user_id, month in keys:
        mine = [job for job in jobs if (job.user_id, job.month) == (user_id, month)]
        status = await store.quota_status(user_id, month)
        assert status.reserved == sum(job.requested for job in mine if job.open)
        assert status.used == sum(job.charged for job in mine if not job.open)
        stored = [await store.get_job(job.job_id) for job in mine]
        assert status.used + status.reserved == sum(
            job.images_requested if job.reservation_open else job.images_delivered
            for job in stored
        )
        assert [(job.state, job.reservation_open) for job in stored] == [
            (job.state, job.open) for job in mine
        ]
        if user_id != ADMIN:
            assert status.used + status.reserved <= status.limit + status.granted


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.lists(operation, max_size=25))
def test_random_histories_keep_the_books_balanced(operations: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(replay(Path(folder) / "p.sqlite3", operations))


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(operations=st.lists(operation, max_size=25))
def test_random_histories_keep_the_books_balanced_on_postgresql(
    postgres_url: str, operations: list[tuple[Any, ...]]
) -> None:
    asyncio.run(replay(postgres_url, operations))


# --- a writer killed mid-burst -----------------------------------------------------------------

WORKER = """
import asyncio, random, sys
from zoneinfo import ZoneInfo
from storage import NewJob, open_store

async def main(url):
    store = await open_store(url, default_limit=10**9, tz=ZoneInfo("Asia/Shanghai"))
    for user_id in range(1, 5):
        await store.touch_user(user_id, None, "U", None)
    done = 0
    while True:
        user_id = random.randint(1, 4)
        n = random.randint(1, 4)
        job = await store.create_job(NewJob(user_id, user_id, 1, "edit", "qwen-image-edit",
                                            None, "{}", "f", n))
        fate = random.random()
        if fate < 0.5:
            await store.mark_submitted(job.id, "t")
            await store.mark_succeeded(job.id, ("u",))
            await store.mark_delivered(job.id, random.randint(0, n))
        elif fate < 0.8:
            await store.mark_failed(job.id, "c", "m")
        done += 1
        if done == 20:
            print("started", flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def kill_a_worker_mid_burst(database_url: str) -> None:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        database_url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
        assert line.strip() == b"started"
        await asyncio.sleep(random.uniform(0.05, 0.3))
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
async def test_killed_writer_leaves_consistent_books(stores: Stores) -> None:
    for _ in range(3):
        await kill_a_worker_mid_burst(stores.database_url("crash.sqlite3"))
        async with await stores.open("crash.sqlite3", default_limit=1, tz=SHANGHAI) as store:
            assert await store.get_setting("nothing") is None  # opens and reads fine
        if stores.sqlite:
            assert await stores.scalar("PRAGMA integrity_check", "crash.sqlite3") == "ok"
        books = await stores.rows("SELECT user_id, month, used, reserved FROM usage",
                                  "crash.sqlite3")
        jobs = await stores.rows(
            "SELECT user_id, quota_month, state, images_requested, images_delivered,"
            " reservation_open FROM jobs", "crash.sqlite3"
        )
        assert jobs, "the worker wrote nothing before it was killed"
        for user_id, month, used, reserved in books:
            mine = [job for job in jobs if job[:2] == (user_id, month)]
            assert used == sum(job[4] for job in mine if job[2] == "delivered")
            assert reserved == sum(job[3] for job in mine if job[5])
            # A reservation is open exactly while the job is not final.
            assert all(
                bool(job[5]) == (job[2] in ("queued", "submitted", "succeeded")) for job in mine
            )
