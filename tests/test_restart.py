"""A bot process killed with SIGKILL mid-job and started again delivers once and charges once."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from storage import SqliteStore
from tests.harness import (
    API_KEY,
    bot_process,
    make_image,
    replied_to,
    subprocess_env,
    wait_until,
)

pytestmark = pytest.mark.slow


def job_states(database: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(database) as db:
        return list(db.execute("SELECT state, images_requested, images_delivered FROM jobs"))


async def quota_of(database: Path, user_id: int) -> tuple[int, int]:
    """(used, reserved) this month, read through a second store on the same file."""
    store = await SqliteStore.open(database, default_limit=5, tz=ZoneInfo("Asia/Shanghai"))
    try:
        status = await store.quota_status(user_id)
    finally:
        await store.close()
    return status.used, status.reserved


@pytest.mark.parametrize("kill_when", ["task_running", "queued_before_submit"])
async def test_sigkill_mid_job_then_restart_delivers_once_and_charges_once(
    tmp_path: Path, kill_when: str
) -> None:
    database = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    async with FakeTelegram() as telegram:
        latency = (2.0, 2.0) if kill_when == "task_running" else (0.2, 0.2)
        emulator = DashScopeEmulator(api_key=API_KEY, latency=latency, seed=3)
        await emulator.start()
        try:
            env = subprocess_env(telegram, emulator, database)
            if kill_when == "queued_before_submit":
                # The service answers slowly, so the kill lands before any task id exists.
                emulator.slow_next("submit", 3.0)
            alice = telegram.user(1, "Alice")
            request = telegram.send_photo(
                alice, telegram.private_chat(alice), make_image(), "/colorize"
            )
            async with bot_process(env, log) as first:
                if kill_when == "task_running":
                    await wait_until(lambda: emulator.requests_to("query"), timeout=20)
                    assert job_states(database)[0][0] == "submitted"
                else:
                    await wait_until(lambda: emulator.requests_to("submit"), timeout=20)
                    assert job_states(database)[0][0] == "queued"
                first.send_signal(signal.SIGKILL)
                await first.wait()
            async with bot_process(env, log):
                await telegram.wait_for_call(
                    "sendPhoto", lambda c: replied_to(c) == request["message_id"], timeout=30
                )
                await wait_until(lambda: job_states(database)[0][0] == "delivered", timeout=10)
                await asyncio.sleep(0.5)  # anything sent twice would show up by now
            deliveries = [
                c for c in telegram.calls_to("sendPhoto") if replied_to(c) == request["message_id"]
            ]
            assert len(deliveries) == 1, log.read_text()
            assert await quota_of(database, 1) == (1, 0)
            submits = emulator.requests_to("submit")
            if kill_when == "task_running":
                assert len(submits) == 1  # resumed by polling the stored task id
            log_text = log.read_text()
            assert telegram.token not in log_text and API_KEY not in log_text
        finally:
            await emulator.close()


async def test_sigterm_stops_cleanly_and_the_job_resumes(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    async with FakeTelegram() as telegram:
        emulator = DashScopeEmulator(api_key=API_KEY, latency=(2.0, 2.0), seed=4)
        await emulator.start()
        try:
            env = subprocess_env(telegram, emulator, database)
            alice = telegram.user(1, "Alice")
            request = telegram.send_photo(
                alice, telegram.private_chat(alice), make_image(), "/colorize"
            )
            async with bot_process(env, log) as first:
                await wait_until(lambda: emulator.requests_to("query"), timeout=20)
                first.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(first.wait(), timeout=15) == 0, log.read_text()
            assert job_states(database)[0][0] == "submitted"
            async with bot_process(env, log):
                await telegram.wait_for_call(
                    "sendPhoto", lambda c: replied_to(c) == request["message_id"], timeout=30
                )
                await wait_until(lambda: job_states(database)[0][0] == "delivered", timeout=10)
            assert len(emulator.requests_to("submit")) == 1
            assert await quota_of(database, 1) == (1, 0)
            assert "Traceback" not in log.read_text()
        finally:
            await emulator.close()
