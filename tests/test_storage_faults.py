"""Database faults under the pipeline: a locked or full database delays a job, never strands it,
never sends a result twice; the sweep picks up what nobody works on; a new database is noticed.

SQLite only: the faults are a file's (another process holding its write lock, a full disk, a
file that does not exist yet). PostgreSQL's counterpart, a server that cannot be reached, is
tests/test_storage.py's and tests/test_startup.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.bailian import BailianClient
from bot.errors import StoreUnavailableError
from bot.jobs import JobService, JobSpec
from storage import JobState, SqliteStore, open_store
from tests.fakes.messenger import FakeMessenger
from tests.harness import wait_until
from tests.test_jobs_stages import (
    ADMIN,
    LIMIT,
    PHOTO,
    SHANGHAI,
    STORE_TIME,
    USER,
    ManualClock,
    accept_job,
    client,  # noqa: F401  (a fixture)
    dashscope,  # noqa: F401  (a fixture)
    messenger,  # noqa: F401  (a fixture)
    new_job,
    quota,
)

# Short, so a held lock turns into StoreUnavailableError quickly.
BUSY_TIMEOUT_MS = 50
WAIT = 10.0


async def open_test_store(path: Path) -> SqliteStore:
    store = await SqliteStore.open(
        path, default_limit=LIMIT, tz=SHANGHAI, clock=lambda: STORE_TIME,
        busy_timeout_ms=BUSY_TIMEOUT_MS,
    )
    for user_id in (USER, ADMIN):
        await store.touch_user(user_id, f"user{user_id}", f"User {user_id}", "en")
    return store


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Another connection holding the database's write lock (as a stuck process would)."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


def service_on(
    store: SqliteStore, bailian: BailianClient, fake: FakeMessenger, *,
    sweep_interval: float = 60.0, wanx_workers: int = 2,
) -> JobService:
    return JobService(
        store=store, client=bailian, messenger=fake, admin_ids=(ADMIN,),
        wanx_workers=wanx_workers,
        qwen_workers=1, clock=ManualClock(), sweep_interval=sweep_interval,
    )


async def test_a_locked_database_is_unavailable_then_usable_again(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    store = await open_test_store(path)
    try:
        with write_lock(path), pytest.raises(StoreUnavailableError, match="locked"):
            await store.set_setting("k", "v")
        await store.set_setting("k", "v")
        assert await store.get_setting("k") == "v"
    finally:
        await store.close()


async def test_the_delivered_write_is_retried_and_the_result_sent_once(
    tmp_path: Path, client: BailianClient, messenger: FakeMessenger  # noqa: F811
) -> None:
    """The images reach Telegram while the database is locked: the job waits for the write
    instead of failing or sending again, and is charged once when the lock goes."""
    path = tmp_path / "jobs.sqlite3"
    store = await open_test_store(path)
    service = service_on(store, client, messenger)
    try:
        messenger.hold_images = asyncio.Event()
        job = await accept_job(service, store, "/colorize", 10)
        await service.start()
        await asyncio.wait_for(messenger.images_started.wait(), WAIT)
        with write_lock(path):
            messenger.hold_images.set()
            await asyncio.sleep(0.8)  # the settle write meets the lock several times
            assert len(messenger.deliveries) == 1
        await wait_until(
            lambda: _state(path, job.id) == JobState.DELIVERED.value, WAIT
        )
        assert len(messenger.deliveries) == 1
        assert await quota(store) == (1, 0)
    finally:
        await service.stop()
        await store.close()


async def test_the_sweep_resumes_a_job_nobody_works_on(
    tmp_path: Path, client: BailianClient, messenger: FakeMessenger  # noqa: F811
) -> None:
    """A task submitted (and billed) whose job was left behind is found and delivered."""
    store = await open_test_store(tmp_path / "sweep.sqlite3")
    # No wanx worker: only the sweep can pick the job up.
    service = service_on(store, client, messenger, sweep_interval=0.2, wanx_workers=0)
    try:
        await service.start()
        job = await store.create_job(new_job(USER))
        request = await service.inputs.request(JobSpec.of(job).parsed, PHOTO, None)
        task_id = await client.submit(request)
        await store.mark_submitted(job.id, task_id)  # and then the process forgot it
        await wait_until(
            lambda: _state(store.path, job.id) == JobState.DELIVERED.value, WAIT
        )
        assert len(messenger.deliveries) == 1
        assert await quota(store) == (1, 0)
    finally:
        await service.stop()
        await store.close()


async def test_a_new_database_file_is_logged_with_its_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    url = f"sqlite:///{path}"
    with caplog.at_level(logging.WARNING, logger="storage.factory"):
        store = await open_store(url, default_limit=LIMIT, tz=SHANGHAI)
        await store.close()
    created = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(created) == 1 and str(path) in created[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="storage.factory"):
        store = await open_store(url, default_limit=LIMIT, tz=SHANGHAI)
        await store.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- a full disk: a real filesystem that fills up --------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, where the machine lets us mount one (root on Linux)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True, check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``; returns the filler file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:  # unbuffered: no write left for close()
        size = 1 << 20
        while size:  # halve the chunk until not even one byte fits
            try:
                handle.write(b"\0" * size)
            except OSError:
                size //= 2
    return filler


@pytest.mark.slow
async def test_a_full_disk_delays_the_job_until_space_returns(
    small_disk: Path, client: BailianClient, messenger: FakeMessenger  # noqa: F811
) -> None:
    path = small_disk / "jobs.sqlite3"
    store = await open_test_store(path)
    service = service_on(store, client, messenger)
    try:
        job = await accept_job(service, store, "/colorize", 20)
        messenger.hold_images = asyncio.Event()
        await service.start()
        await asyncio.wait_for(messenger.images_started.wait(), WAIT)
        filler = fill(small_disk)
        with pytest.raises(StoreUnavailableError, match="full"):
            await store.set_setting("probe", "x" * 200_000)
        messenger.hold_images.set()
        await asyncio.sleep(0.8)
        assert _state(path, job.id) != JobState.DELIVERED.value
        filler.unlink()
        await wait_until(lambda: _state(path, job.id) == JobState.DELIVERED.value, WAIT)
        assert len(messenger.deliveries) == 1
        assert await quota(store) == (1, 0)
    finally:
        await service.stop()
        await store.close()


def _state(path: Path, job_id: int) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return str(row[0])
