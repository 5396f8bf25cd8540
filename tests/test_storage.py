"""The store, operation by operation, on SQLite files and on PostgreSQL (tests/stores.py).

The legacy migrations, the connection's pragmas and the factory's file handling are SQLite's
own and run on SQLite only."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import IntegrityError

from bot.errors import (
    IllegalTransitionError,
    JobNotFoundError,
    QuotaExceededError,
    StoreUnavailableError,
    UnknownUserError,
    UnsupportedDatabaseError,
)
from storage import JobState, NewJob, SqliteStore, open_store
from storage.factory import engine_url, masked_url
from storage.migrations import LATEST_VERSION, V1_STATEMENTS
from storage.models import ALLOWED_TRANSITIONS
from tests.stores import Stores

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FakeClock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


def new_job(
    user_id: int,
    n: int = 1,
    *,
    unlimited: bool = False,
    model: str = "qwen-image-edit",
    function: str | None = None,
) -> NewJob:
    return NewJob(
        user_id=user_id,
        chat_id=user_id,
        request_message_id=7,
        command="edit",
        model=model,
        function=function,
        spec_json='{"prompt": "x"}',
        input_file_id="file-in",
        images_requested=n,
        unlimited=unlimited,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
async def store(stores: Stores, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    async with await stores.open(default_limit=5, tz=SHANGHAI, clock=clock) as opened:
        for user_id in (1, 2, 3):
            await opened.touch_user(user_id, f"user{user_id}", f"User {user_id}", "en")
        yield opened


# --- users -------------------------------------------------------------------------------------


async def test_touch_user_creates_then_refreshes(store: SqliteStore, clock: FakeClock) -> None:
    created = await store.touch_user(10, "Alice", "Alice A", "zh-hans")
    assert (created.username, created.display_name, created.telegram_language) == (
        "Alice",
        "Alice A",
        "zh-hans",
    )
    assert created.language is None and not created.banned and created.monthly_limit is None
    assert created.created_at == created.last_seen_at == clock.now
    clock.advance(60)
    seen = await store.touch_user(10, "alice2", "Alice B", "en")
    assert (seen.username, seen.display_name, seen.telegram_language) == (
        "alice2",
        "Alice B",
        "en",
    )
    assert seen.created_at == created.created_at
    assert seen.last_seen_at == clock.now
    assert await store.get_user(10) == seen
    assert await store.get_user(999) is None


async def test_find_user_by_username_ignores_case_and_at(store: SqliteStore) -> None:
    await store.touch_user(10, "Alice_Bot", "Alice", None)
    for query in ("alice_bot", "@ALICE_BOT", " @Alice_Bot "):
        found = await store.find_user_by_username(query)
        assert found is not None and found.user_id == 10
    assert await store.find_user_by_username("@nobody") is None
    assert await store.find_user_by_username("@") is None


async def test_username_moves_to_its_new_owner(store: SqliteStore) -> None:
    await store.touch_user(10, "shared", "Old owner", None)
    await store.touch_user(11, "SHARED", "New owner", None)
    found = await store.find_user_by_username("shared")
    assert found is not None and found.user_id == 11
    old = await store.get_user(10)
    assert old is not None and old.username is None


async def test_set_language(store: SqliteStore) -> None:
    await store.set_language(1, "zh")
    user = await store.get_user(1)
    assert user is not None and user.language == "zh"
    await store.set_language(1, None)
    user = await store.get_user(1)
    assert user is not None and user.language is None
    with pytest.raises(UnknownUserError):
        await store.set_language(999, "en")


# --- quotas and admin --------------------------------------------------------------------------


async def test_create_job_reserves_and_refuses_beyond_the_limit(store: SqliteStore) -> None:
    job = await store.create_job(new_job(1, 3))
    assert job.state is JobState.QUEUED and job.reservation_open
    assert job.quota_month == "2026-11" and job.images_requested == 3
    status = await store.quota_status(1)
    assert (status.limit, status.used, status.reserved, status.remaining) == (5, 0, 3, 2)
    with pytest.raises(QuotaExceededError) as info:
        await store.create_job(new_job(1, 3))
    assert (info.value.remaining, info.value.requested) == (2, 3)
    assert len(await store.resumable_jobs()) == 1  # nothing inserted
    assert (await store.quota_status(1)).reserved == 3
    await store.create_job(new_job(1, 2))  # exactly fills the limit
    assert (await store.quota_status(1)).remaining == 0


async def test_create_job_needs_a_known_user_and_a_positive_count(store: SqliteStore) -> None:
    with pytest.raises(UnknownUserError):
        await store.create_job(new_job(999))
    unknown = await store.quota_status(999)  # a newcomer sees the default before first use
    assert (unknown.limit, unknown.used, unknown.reserved, unknown.remaining) == (5, 0, 0, 5)
    with pytest.raises(ValueError, match="at least 1"):
        await store.create_job(new_job(1, 0))


async def test_unlimited_skips_the_check_but_records_usage(store: SqliteStore) -> None:
    job = await store.create_job(new_job(1, 4, unlimited=True))
    await store.create_job(new_job(1, 4, unlimited=True))
    status = await store.quota_status(1)
    assert (status.reserved, status.remaining) == (8, 0)
    assert await store.settle(job.id, 4)
    assert (await store.quota_status(1)).used == 4
    assert (await store.usage_report()).total_images == 4


async def test_personal_limit_grant_and_ban_are_audited(
    store: SqliteStore, clock: FakeClock
) -> None:
    await store.set_monthly_limit(100, 1, 8)
    user = await store.get_user(1)
    assert user is not None and user.monthly_limit == 8
    assert (await store.quota_status(1)).limit == 8
    clock.advance()
    status = await store.grant_extra(100, 1, 4)
    assert (status.limit, status.granted, status.remaining) == (8, 4, 12)
    clock.advance()
    assert (await store.grant_extra(100, 1, -1)).granted == 3
    clock.advance()
    await store.set_banned(100, 1, True)
    user = await store.get_user(1)
    assert user is not None and user.banned
    clock.advance()
    await store.set_banned(101, 1, False)
    clock.advance()
    await store.set_monthly_limit(101, 1, None)
    assert (await store.quota_status(1)).limit == 5
    log = await store.audit_log()
    assert [(e.admin_id, e.target_user_id, e.action, e.value) for e in log] == [
        (101, 1, "set_limit", None),
        (101, 1, "unban", None),
        (100, 1, "ban", None),
        (100, 1, "grant", "-1"),
        (100, 1, "grant", "4"),
        (100, 1, "set_limit", "8"),
    ]
    assert log[0].created_at == clock.now and log[0].created_at > log[1].created_at
    assert len(await store.audit_log(limit=2)) == 2


async def test_admin_ops_on_unknown_users_fail_without_audit(store: SqliteStore) -> None:
    with pytest.raises(UnknownUserError):
        await store.set_monthly_limit(100, 999, 3)
    with pytest.raises(UnknownUserError):
        await store.grant_extra(100, 999, 3)
    with pytest.raises(UnknownUserError):
        await store.set_banned(100, 999, True)
    with pytest.raises(ValueError, match="negative"):
        await store.set_monthly_limit(100, 1, -1)
    assert await store.audit_log() == []


async def test_grant_lets_a_full_user_continue(store: SqliteStore) -> None:
    await store.create_job(new_job(1, 5))
    with pytest.raises(QuotaExceededError):
        await store.create_job(new_job(1, 1))
    await store.grant_extra(100, 1, 1)
    await store.create_job(new_job(1, 1))


# --- job lifecycle -----------------------------------------------------------------------------


async def test_happy_path_settles_the_delivered_images(store: SqliteStore) -> None:
    job = await store.create_job(new_job(1, 4))
    await store.set_status_message(job.id, 555)
    submitted = await store.mark_submitted(job.id, "task-1")
    assert (submitted.state, submitted.task_id) == (JobState.SUBMITTED, "task-1")
    assert [j.id for j in await store.active_jobs()] == [job.id]
    succeeded = await store.mark_succeeded(job.id, ("https://a/1.png", "https://a/2.png"))
    assert succeeded.result_urls == ("https://a/1.png", "https://a/2.png")
    delivered = await store.mark_delivered(job.id, 3)  # one of four failed: charge three
    assert delivered.state is JobState.DELIVERED
    assert (delivered.images_delivered, delivered.reservation_open) == (3, False)
    assert delivered.status_message_id == 555
    status = await store.quota_status(1)
    assert (status.used, status.reserved, status.remaining) == (3, 0, 2)
    assert await store.active_jobs() == [] and await store.resumable_jobs() == []
    assert await store.get_job(job.id) == delivered


async def test_failure_and_cancel_refund(store: SqliteStore) -> None:
    failed = await store.create_job(new_job(1, 2))
    canceled = await store.create_job(new_job(1, 2))
    await store.mark_submitted(failed.id, "t")
    result = await store.mark_failed(failed.id, "InvalidParameter", "bad size")
    assert (result.state, result.error_code, result.error_message) == (
        JobState.FAILED,
        "InvalidParameter",
        "bad size",
    )
    assert not result.reservation_open and result.images_delivered == 0
    assert (await store.mark_canceled(canceled.id)).state is JobState.CANCELED
    status = await store.quota_status(1)
    assert (status.used, status.reserved) == (0, 0)


async def test_settle_and_refund_are_idempotent(store: SqliteStore) -> None:
    job = await store.create_job(new_job(1, 3))
    assert await store.settle(job.id, 2) is True
    assert await store.settle(job.id, 3) is False
    assert await store.refund(job.id) is False
    status = await store.quota_status(1)
    assert (status.used, status.reserved) == (2, 0)
    # The job can still be delivered: the earlier settlement stands.
    await store.mark_succeeded(job.id, ("u",))
    assert (await store.mark_delivered(job.id, 3)).images_delivered == 2
    assert (await store.quota_status(1)).used == 2

    other = await store.create_job(new_job(1, 2))
    assert await store.refund(other.id) is True
    assert await store.settle(other.id, 2) is False
    assert (await store.mark_failed(other.id, "x", "y")).images_delivered == 0
    assert (await store.quota_status(1)).used == 2


async def test_settle_never_charges_more_than_reserved(store: SqliteStore) -> None:
    job = await store.create_job(new_job(1, 2))
    assert await store.settle(job.id, 5)
    assert (await store.get_job(job.id)).images_delivered == 2
    assert (await store.quota_status(1)).used == 2
    other = await store.create_job(new_job(1, 1))
    with pytest.raises(ValueError, match="negative"):
        await store.settle(other.id, -1)
    assert (await store.get_job(other.id)).reservation_open


@pytest.mark.parametrize("state", list(JobState))
async def test_illegal_transitions_raise_and_change_nothing(
    store: SqliteStore, state: JobState
) -> None:
    job = await store.create_job(new_job(1, 2))
    # Walk the job into ``state`` along allowed edges.
    path = {
        JobState.QUEUED: [],
        JobState.SUBMITTED: [JobState.SUBMITTED],
        JobState.SUCCEEDED: [JobState.SUBMITTED, JobState.SUCCEEDED],
        JobState.DELIVERED: [JobState.SUBMITTED, JobState.SUCCEEDED, JobState.DELIVERED],
        JobState.FAILED: [JobState.FAILED],
        JobState.CANCELED: [JobState.CANCELED],
    }[state]
    for step in path:
        await move(store, job.id, step)
    before = await store.get_job(job.id)
    assert before.state is state
    for target in JobState:
        if target in ALLOWED_TRANSITIONS[state] or target is JobState.QUEUED:
            continue
        with pytest.raises(IllegalTransitionError) as info:
            await move(store, job.id, target)
        assert (info.value.current, info.value.target) == (state.value, target.value)
        assert await store.get_job(job.id) == before
    assert (await store.quota_status(1)).reserved == (2 if before.reservation_open else 0)


async def move(store: SqliteStore, job_id: int, target: JobState) -> None:
    if target is JobState.SUBMITTED:
        await store.mark_submitted(job_id, "task")
    elif target is JobState.SUCCEEDED:
        await store.mark_succeeded(job_id, ("u1", "u2"))
    elif target is JobState.DELIVERED:
        await store.mark_delivered(job_id, 2)
    elif target is JobState.FAILED:
        await store.mark_failed(job_id, "code", "message")
    elif target is JobState.CANCELED:
        await store.mark_canceled(job_id)


async def test_unknown_job_ids(store: SqliteStore) -> None:
    for call in (
        store.get_job(404),
        store.set_status_message(404, 1),
        store.mark_submitted(404, "t"),
        store.mark_delivered(404, 1),
        store.mark_failed(404, "c", "m"),
        store.settle(404, 1),
        store.refund(404),
        store.note_attempt(404),
        store.mark_canceled(404),
    ):
        with pytest.raises(JobNotFoundError):
            await call


async def test_note_attempt_counts(store: SqliteStore) -> None:
    job = await store.create_job(new_job(1))
    assert job.attempts == 0
    await store.note_attempt(job.id)
    assert (await store.note_attempt(job.id)).attempts == 2


async def test_resumable_jobs_oldest_first(store: SqliteStore, clock: FakeClock) -> None:
    ids = []
    for user_id in (2, 1, 3, 1):
        ids.append((await store.create_job(new_job(user_id))).id)
        clock.advance()
    await store.mark_submitted(ids[1], "t")
    await store.mark_succeeded(ids[2], ("u",))
    await store.mark_canceled(ids[3])
    done = await store.create_job(new_job(2))
    await store.mark_failed(done.id, "c", "m")
    assert [job.id for job in await store.resumable_jobs()] == ids[:3]
    assert [job.id for job in await store.active_jobs()] == ids[1:3]


async def test_fair_order_and_positions(tmp_path: Path, clock: FakeClock) -> None:
    async with await SqliteStore.open(
        tmp_path / "fair.sqlite3", default_limit=50, tz=UTC, clock=clock
    ) as store:
        for user_id in (1, 2, 3):
            await store.touch_user(user_id, None, f"U{user_id}", None)
        created: list[tuple[int, int]] = []  # (user, job id), in creation order
        for user_id in (1, 1, 1, 2, 3, 2, 1):
            job = await store.create_job(new_job(user_id))
            created.append((user_id, job.id))
            clock.advance()
        a1, a2, a3, b1, c1, b2, a4 = (job_id for _, job_id in created)
        expected = [a1, b1, c1, a2, b2, a3, a4]
        assert [job.id for job in await store.queued_jobs_fair()] == expected
        for position, job_id in enumerate(expected, start=1):
            assert await store.queue_position(job_id) == position
        # Users are ordered by their oldest *queued* job: a2 is still older than b1.
        await store.mark_submitted(a1, "t")
        assert [job.id for job in await store.queued_jobs_fair()] == [a2, b1, c1, a3, b2, a4]
        await store.mark_canceled(a2)
        await store.mark_canceled(a3)  # user 1's oldest queued job is now the newest of all
        assert [job.id for job in await store.queued_jobs_fair()] == [b1, c1, a4, b2]
        assert await store.queue_position(b2) == 4
        assert await store.queue_position(a1) is None
        assert await store.queue_position(12345) is None


# --- months ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "last_second", "month_before", "month_after"),
    [
        # Asia/Shanghai is UTC+8: November ends at 2026-11-30 15:59:59 UTC.
        ("Asia/Shanghai", datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), "2026-11", "2026-12"),
        ("UTC", datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), "2026-11", "2026-12"),
        ("Asia/Shanghai", datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC), "2026-12", "2027-01"),
    ],
)
async def test_month_boundaries(
    tmp_path: Path, zone: str, last_second: datetime, month_before: str, month_after: str
) -> None:
    clock = FakeClock(last_second)
    async with await SqliteStore.open(
        tmp_path / "m.sqlite3", default_limit=2, tz=ZoneInfo(zone), clock=clock
    ) as store:
        first_second = last_second + timedelta(seconds=1)
        assert store.current_month(last_second) == month_before
        assert store.current_month(first_second) == month_after
        assert store.current_month() == month_before
        await store.touch_user(1, None, "U", None)
        old = await store.create_job(new_job(1, 2))
        assert old.quota_month == month_before
        with pytest.raises(QuotaExceededError):
            await store.create_job(new_job(1, 1))

        clock.now = first_second  # a new month starts from zero, no cron needed
        assert (await store.quota_status(1)).remaining == 2
        new = await store.create_job(new_job(1, 2))
        assert new.quota_month == month_after
        # The old job's reservation is settled in the month it was made in.
        await store.mark_succeeded(old.id, ("u",))
        await store.mark_delivered(old.id, 1)
        before = await store.quota_status(1, month_before)
        after = await store.quota_status(1, month_after)
        assert (before.used, before.reserved) == (1, 0)
        assert (after.used, after.reserved) == (0, 2)
        assert (await store.usage_report(month_before)).total_images == 1
        assert (await store.usage_report()).total_images == 0


async def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    async with await SqliteStore.open(
        tmp_path / "n.sqlite3", default_limit=1, tz=UTC, clock=lambda: datetime(2026, 1, 1)
    ) as store:
        with pytest.raises(ValueError, match="timezone-aware"):
            store.current_month(datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.touch_user(1, None, "U", None)


# --- report and settings -----------------------------------------------------------------------


async def test_usage_report(store: SqliteStore, clock: FakeClock) -> None:
    await store.set_monthly_limit(100, 1, 100)
    await store.set_monthly_limit(100, 2, 100)

    async def deliver(
        user_id: int, n: int, delivered: int, model: str, function: str | None = None
    ) -> None:
        job = await store.create_job(new_job(user_id, n, model=model, function=function))
        await store.mark_succeeded(job.id, ("u",))
        await store.mark_delivered(job.id, delivered)

    await deliver(1, 4, 4, "qwen-image-edit")
    await deliver(1, 2, 1, "qwen-image-edit")
    await deliver(2, 3, 3, "wanx2.1-imageedit", "expand")
    await deliver(2, 4, 4, "wanx2.1-imageedit", "colorization")
    await deliver(3, 1, 1, "wanx2.1-imageedit", "expand")
    failed = await store.create_job(new_job(3, 1))
    await store.mark_failed(failed.id, "c", "m")
    await store.create_job(new_job(3, 1))  # still reserved: not usage yet
    clock.now = datetime(2026, 12, 5, tzinfo=UTC)
    await deliver(1, 1, 1, "qwen-image-edit")  # next month

    report = await store.usage_report("2026-11", top=2)
    assert report.month == "2026-11"
    assert [(line.model, line.function, line.images) for line in report.lines] == [
        ("qwen-image-edit", None, 5),
        ("wanx2.1-imageedit", "colorization", 4),
        ("wanx2.1-imageedit", "expand", 4),
    ]
    assert [line.cost_yuan for line in report.lines] == [1.5, 0.56, 0.56]
    assert report.total_images == 13
    assert report.total_cost_yuan == 2.62
    assert report.free_allowance == {"qwen-image-edit": (5, 50), "wanx2.1-imageedit": (8, 500)}
    assert [(u.user_id, u.username, u.display_name, u.images) for u in report.top_users] == [
        (2, "user2", "User 2", 7),
        (1, "user1", "User 1", 5),
    ]

    current = await store.usage_report()
    assert (current.month, current.total_images, current.total_cost_yuan) == ("2026-12", 1, 0.3)
    empty = await store.usage_report("2025-01")
    assert (empty.lines, empty.total_images, empty.top_users) == ((), 0, ())
    assert empty.free_allowance == {"qwen-image-edit": (0, 50), "wanx2.1-imageedit": (0, 500)}


async def test_settings_round_trip(store: SqliteStore) -> None:
    assert await store.get_setting("alert") is None
    await store.set_setting("alert", "one")
    await store.set_setting("alert", "two")
    assert await store.get_setting("alert") == "two"


async def test_connection_settings(tmp_path: Path) -> None:
    path = tmp_path / "pragmas.sqlite3"
    async with await SqliteStore.open(path, default_limit=1, tz=UTC,
                                      busy_timeout_ms=1234) as store:
        db = store._connection  # white box: the pragmas are per connection
        assert db is not None
        for pragma, expected in (("journal_mode", "wal"), ("foreign_keys", 1),
                                 ("busy_timeout", 1234)):
            row = (await db.exec_driver_sql(f"PRAGMA {pragma}")).first()
            assert row is not None and row[0] == expected
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            await db.exec_driver_sql("INSERT INTO usage (user_id, month) VALUES (404, '2026-01')")
        await db.rollback()


async def test_data_survives_reopening(stores: Stores, clock: FakeClock) -> None:
    async with await stores.open(default_limit=5, tz=UTC, clock=clock) as store:
        await store.touch_user(1, "u", "U", None)
        job = await store.create_job(new_job(1, 2))
        await store.set_setting("k", "v")
    async with await stores.open(default_limit=5, tz=UTC, clock=clock) as store:
        assert (await store.get_job(job.id)).reservation_open
        assert (await store.quota_status(1)).reserved == 2
        assert await store.get_setting("k") == "v"


# --- migrations and the factory ----------------------------------------------------------------


def write_v1_database(path: Path) -> None:
    """A database as the first release left it, built from the v1 statements themselves."""
    with sqlite3.connect(path) as db:
        for statement in V1_STATEMENTS:
            db.execute(statement)
        db.execute(
            "INSERT INTO users VALUES (1, 'old', 'Old user', 'en', 'zh', 0, 9,"
            " '2026-10-01T00:00:00.000000+00:00', '2026-10-02T00:00:00.000000+00:00')"
        )
        db.execute("INSERT INTO usage VALUES (1, '2026-11', 2, 1, 3)")
        db.execute(
            "INSERT INTO jobs (user_id, chat_id, request_message_id, command, model, spec_json,"
            " input_file_id, state, quota_month, images_requested, reservation_open,"
            " created_at, updated_at) VALUES (1, 1, 1, 'edit', 'qwen-image-edit', '{}', 'f',"
            " 'queued', '2026-11', 1, 1, '2026-11-01T00:00:00.000000+00:00',"
            " '2026-11-01T00:00:00.000000+00:00')"
        )
        db.execute("PRAGMA user_version = 1")
    db.close()


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    db.close()
    return version


async def test_opening_a_v1_database_migrates_it(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "v1.sqlite3"
    write_v1_database(path)
    assert user_version(path) == 1
    async with await SqliteStore.open(path, default_limit=5, tz=UTC, clock=clock) as store:
        user = await store.get_user(1)
        assert user is not None
        assert (user.username, user.language, user.monthly_limit) == ("old", "zh", 9)
        status = await store.quota_status(1, "2026-11")
        assert (status.used, status.reserved, status.granted, status.remaining) == (2, 1, 3, 9)
        assert [job.id for job in await store.queued_jobs_fair()] == [1]
        await store.set_setting("migrated", "yes")  # the v2 table exists
        assert await store.get_setting("migrated") == "yes"
    assert user_version(path) == LATEST_VERSION == 8
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    indexes = {row[0] for row in rows}
    db.close()
    assert "jobs_quota_month" in indexes


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(UnsupportedDatabaseError, match=rf"version 99.*up to {LATEST_VERSION}"):
        await SqliteStore.open(path, default_limit=5, tz=UTC)
    assert user_version(path) == 99


async def test_factory_opens_relative_and_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///data/sub/bot.sqlite3", default_limit=3, tz=SHANGHAI)
    try:
        assert isinstance(store, SqliteStore) and store.default_limit == 3
        await store.touch_user(1, None, "U", None)
    finally:
        await store.close()
    assert (tmp_path / "data" / "sub" / "bot.sqlite3").is_file()
    absolute = tmp_path / "abs" / "bot.sqlite3"
    store = await open_store(f"sqlite:///{absolute}", default_limit=3, tz=UTC)
    await store.close()
    assert str(absolute).startswith("/") and absolute.is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user:secret@db/bot", r"'mysql' is not supported \(mysql://user:\*\*\*@db/bot\)"),
        ("postgresql://user:secret@db", r"'postgresql://user:\*\*\*@db' names no database"),
        ("postgresql://user:secret@db:port/bot", "is not a valid URL"),
        ("sqlite://:memory:", "names no file"),
        ("sqlite:///", "names no file"),
        ("data/bot.sqlite3", "no scheme"),
    ],
)
async def test_factory_refuses_unknown_urls(url: str, message: str) -> None:
    with pytest.raises(UnsupportedDatabaseError, match=message) as info:
        await open_store(url, default_limit=3, tz=UTC)
    assert "secret" not in str(info.value)


def test_every_model_has_a_price_and_an_allowance() -> None:
    from bot.bailian.models import Model
    from storage.pricing import FREE_IMAGES_PER_MONTH, PRICE_YUAN_PER_IMAGE

    assert set(PRICE_YUAN_PER_IMAGE) == set(FREE_IMAGES_PER_MONTH) == {m.value for m in Model}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://bot:pw@db.example:5433/bot", "postgresql+asyncpg://bot:pw@db.example:5433/bot"),
        ("postgresql://bot@localhost/bot", "postgresql+asyncpg://bot@localhost/bot"),
        ("POSTGRESQL://bot@localhost/bot?ssl=require",
         "postgresql+asyncpg://bot@localhost/bot?ssl=require"),
        ("sqlite:///data/bot.sqlite3", "sqlite+aiosqlite:///data/bot.sqlite3"),
        ("sqlite:////abs/bot.sqlite3", "sqlite+aiosqlite:////abs/bot.sqlite3"),
    ],
)
def test_factory_normalises_urls_to_their_async_driver(url: str, expected: str) -> None:
    assert engine_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgres://bot:s3cr@t@db/bot", "postgres://bot:***@db/bot"),
        ("postgresql://bot:pw@db:5432/bot?x=1", "postgresql://bot:***@db:5432/bot?x=1"),
        ("postgresql://bot@db/bot", "postgresql://bot@db/bot"),
        ("sqlite:///data/bot.sqlite3", "sqlite:///data/bot.sqlite3"),
    ],
)
def test_masked_url_hides_only_the_password(url: str, masked: str) -> None:
    assert masked_url(url) == masked


async def test_an_unreachable_postgresql_is_unavailable_without_its_password() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreUnavailableError) as info:
        await open_store(f"postgres://bot:hunter2@127.0.0.1:{port}/bot", default_limit=1, tz=UTC)
    assert f"postgresql+asyncpg://bot:***@127.0.0.1:{port}/bot" in str(info.value)
    assert "hunter2" not in str(info.value)
