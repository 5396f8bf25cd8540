"""Operations: an online SQLite backup while the store writes, and retention of old jobs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.errors import UnsupportedDatabaseError
from storage import SqliteStore
from storage.backup import BackupError, backup_database
from storage.models import JobState, NewJob
from tests.harness import REPO
from tests.stores import Stores

TZ = ZoneInfo("Asia/Shanghai")


async def test_backup_while_the_store_writes_is_consistent_and_restores(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    store = await SqliteStore.open(database, default_limit=5, tz=TZ)
    written = 0
    stop = asyncio.Event()

    async def write() -> None:
        nonlocal written
        while not stop.is_set():
            await store.touch_user(written + 1, f"user{written}", "U", "en")
            written += 1
            await asyncio.sleep(0)

    writer = asyncio.create_task(write())
    try:
        await asyncio.sleep(0.2)
        backups = []
        for number in range(3):  # each taken while the writer goes on
            destination = tmp_path / "backups" / f"copy{number}.sqlite3"
            destination.parent.mkdir(exist_ok=True)
            backups.append(await asyncio.to_thread(
                backup_database, f"sqlite:///{database}", destination
            ))
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await writer
        await store.close()
    assert written > 50
    counts = []
    for result in backups:
        assert result.schema_version > 0 and result.size > 0
        with contextlib.closing(sqlite3.connect(result.path)) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            counts.append(copy.execute("SELECT COUNT(*) FROM users").fetchone()[0])
    assert 0 < counts[0] <= counts[1] <= counts[2] <= written
    assert not list((tmp_path / "backups").glob(".*partial"))

    # Restore as documented: the bot stopped, the copy over the file, -wal and -shm removed.
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backups[0].path, database)
    restored = await SqliteStore.open(database, default_limit=5, tz=TZ)
    try:
        assert await restored.get_user(counts[0]) is not None
        assert await restored.get_user(counts[0] + 1) is None
    finally:
        await restored.close()


def test_backup_refuses_postgresql_a_missing_file_and_the_database_itself(
    tmp_path: Path,
) -> None:
    with pytest.raises(UnsupportedDatabaseError, match="pg_dump"):
        backup_database("postgresql://bot:pw@db/bot", tmp_path / "x")
    with pytest.raises(BackupError, match="no database"):
        backup_database(f"sqlite:///{tmp_path / 'none.sqlite3'}", tmp_path / "x")
    database = tmp_path / "bot.sqlite3"
    sqlite3.connect(database).close()
    with pytest.raises(BackupError, match="the database itself"):
        backup_database(f"sqlite:///{database}", database)


@pytest.mark.slow
def test_backup_command_needs_only_database_url(tmp_path: Path) -> None:
    import subprocess

    database = tmp_path / "bot.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
        db.commit()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "DASHSCOPE_", "DATABASE_"))}
    run = lambda url, path: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "bot", "backup", str(path)], cwd=tmp_path,
        env=env | {"DATABASE_URL": url, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=60,
    )
    done = run(f"sqlite:///{database}", tmp_path / "copy.sqlite3")
    assert done.returncode == 0, done.stderr
    assert "Restore: stop the bot" in done.stdout
    with contextlib.closing(sqlite3.connect(tmp_path / "copy.sqlite3")) as copy:
        assert copy.execute("SELECT x FROM t").fetchall() == [(1,)]
    refused = run("postgresql://bot:hunter2@db/bot", tmp_path / "pg.copy")
    assert refused.returncode == 2
    assert "pg_dump" in refused.stderr and "hunter2" not in refused.stderr


def _new_job(user_id: int, mask: bytes | None) -> NewJob:
    return NewJob(
        user_id=user_id, chat_id=user_id, request_message_id=1, command="erase",
        model="wanx2.1-imageedit", function="remove_watermark", spec_json="{}",
        input_file_id="file-1", images_requested=1, mask_png=mask,
    )


async def test_retention_clears_heavy_fields_of_old_finished_jobs_only(stores: Stores) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = await stores.open(default_limit=5, tz=TZ, clock=lambda: now[0])
    try:
        await store.touch_user(1, "a", "A", "en")
        old = await store.create_job(_new_job(1, b"\x89PNG-old"))
        await store.mark_submitted(old.id, "task-1")
        await store.mark_succeeded(old.id, ("https://oss.example/result.png",))
        await store.mark_delivered(old.id, 1, ("tg-file-1",))
        running = await store.create_job(_new_job(1, b"\x89PNG-running"))
        now[0] += timedelta(days=40)
        recent = await store.create_job(_new_job(1, b"\x89PNG-recent"))
        await store.mark_canceled(recent.id)
        usage_before = await store.usage_report()
        quota_before = await store.quota_status(1, "2026-01")
        assert await store.job_counts() == {
            JobState.DELIVERED: 1, JobState.QUEUED: 1, JobState.CANCELED: 1,
        }

        cleared = await store.prune_old_jobs(now[0] - timedelta(days=30))
        assert cleared == 1
        assert await store.prune_old_jobs(now[0] - timedelta(days=30)) == 0  # nothing left
        pruned = await store.get_job(old.id)
        assert pruned.mask_png is None and pruned.result_urls == ()
        assert pruned.state is JobState.DELIVERED and pruned.images_delivered == 1
        assert pruned.input_file_id == "file-1" and pruned.spec_json == "{}"
        assert pruned.result_file_ids == ("tg-file-1",)  # upscaling a result still works
        assert (await store.get_job(running.id)).mask_png == b"\x89PNG-running"  # not finished
        assert (await store.get_job(recent.id)).mask_png == b"\x89PNG-recent"  # too recent
        assert await store.usage_report() == usage_before
        assert await store.quota_status(1, "2026-01") == quota_before
    finally:
        await store.close()
