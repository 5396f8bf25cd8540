"""Crash matrix: ``python -m bot`` killed with SIGKILL at each stage of a job, then restarted.

Each window is opened from the outside, with the fakes holding an answer (never with hooks in the
bot): the bot is killed while it waits, and started again on the same database. Charges must be
exactly once in every case; delivery is exactly once except in the one window named in
docs/reliability.md (Telegram accepted the photo, the bot never heard back).
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from storage import SqliteStore
from tests.harness import API_KEY, bot_process, make_image, subprocess_env, wait_until

pytestmark = pytest.mark.slow
# How long a fake holds the answer that opens a window: far longer than the test needs to kill.
HOLD = 30.0
# A DashScope answer held for the "submit sent" and "result download" windows; the emulator
# lets a held handler finish before it closes, so this stays short.
HOLD_DASHSCOPE = 1.5
# Time allowed to a bot to start, or to finish a job after a restart.
START_TIMEOUT = 20.0
# After the job is final, anything sent twice would show up within this.
SETTLE_WATCH = 0.5
USER = 1


@dataclass(frozen=True)
class Window:
    """A stage of a job at which the bot is killed."""

    latency: float  # run time of the wanx task
    arm: Callable[[FakeTelegram, DashScopeEmulator], None]  # opens the window from outside
    reached: Callable[[FakeTelegram, DashScopeEmulator, Path], bool]  # the bot is inside it
    state: str | None  # the job's state in the store at the kill (None: no job yet)
    deliveries: int  # photos the user ends up with
    tasks: int  # wanx tasks DashScope ran (and bills) in all
    command: str = "/colorize"
    qwen_calls: int = 0  # qwen-image-edit calls DashScope answered (and bills) in all


def jobs(database: Path) -> list[tuple[str, int]]:
    """(state, images_delivered) of every job, read straight from the file."""
    if not database.exists():
        return []
    with sqlite3.connect(database) as db:
        try:
            return list(db.execute("SELECT state, images_delivered FROM jobs ORDER BY id"))
        except sqlite3.OperationalError:  # the schema is not created yet
            return []


def state_of(database: Path) -> str | None:
    rows = jobs(database)
    return rows[0][0] if rows else None


async def quota_of(database: Path, user_id: int) -> tuple[int, int]:
    """(used, reserved) this month, read through a second store on the same file."""
    store = await SqliteStore.open(database, default_limit=5, tz=ZoneInfo("Asia/Shanghai"))
    try:
        status = await store.quota_status(user_id)
    finally:
        await store.close()
    return status.used, status.reserved


def photos_seen(telegram: FakeTelegram) -> list[dict[str, Any]]:
    """The bot's photos in the user's chat: what the user actually has."""
    return [
        message
        for message in telegram.messages_in(USER)
        if "photo" in message and message.get("from", {}).get("id") == telegram.bot_id
    ]


# --- the windows -------------------------------------------------------------------------------


WINDOWS = {
    # The update was taken and confirmed, the input is being downloaded: no job exists yet.
    "accepting-before-the-job-is-stored": Window(
        latency=0.05,
        arm=lambda tg, emu: tg.slow_next("getFile", HOLD),
        reached=lambda tg, emu, db: bool(tg.calls_to("getFile")),
        state=None,
        deliveries=0,
        tasks=0,
    ),
    # The job is stored and waits for a worker; nothing was sent to DashScope.
    "queued": Window(
        latency=0.05,
        arm=lambda tg, emu: tg.slow_next("editMessageText", HOLD),  # the "working" status
        reached=lambda tg, emu, db: bool(tg.calls_to("editMessageText")),
        state="queued",
        deliveries=1,
        tasks=1,
    ),
    # DashScope created the task, but its answer (the task id) never reached the store.
    "submit-sent-task-id-not-stored": Window(
        latency=0.05,
        arm=lambda tg, emu: emu.slow_next("submit", HOLD_DASHSCOPE),
        reached=lambda tg, emu, db: len(emu.tasks) == 1,
        state="queued",
        deliveries=1,
        tasks=2,
    ),
    # The synchronous qwen call was sent; its answer (the image URL) never arrived.
    "qwen-call-sent-not-answered": Window(
        latency=0.05,
        arm=lambda tg, emu: emu.slow_next("qwen", HOLD_DASHSCOPE),
        reached=lambda tg, emu, db: bool(emu.requests_to("qwen")),
        state="queued",
        deliveries=1,
        tasks=0,
        command="/edit make the sky red",
        qwen_calls=2,
    ),
    # The task id is stored and the task is running.
    "task-running": Window(
        # Running at the first poll (0.1 s), whose answer is held; over before the restart
        # (which takes more than 0.7 s) polls again.
        latency=0.6,
        arm=lambda tg, emu: emu.slow_next("query", HOLD_DASHSCOPE),
        reached=lambda tg, emu, db: bool(emu.requests_to("query")) and state_of(db) == "submitted",
        state="submitted",
        deliveries=1,
        tasks=1,
    ),
    # The task succeeded and its result URLs are stored; the result is being downloaded.
    "task-succeeded-not-delivered": Window(
        latency=0.05,
        arm=lambda tg, emu: emu.slow_next("result", HOLD_DASHSCOPE),
        reached=lambda tg, emu, db: bool(emu.requests_to("result")),
        state="succeeded",
        deliveries=1,
        tasks=1,
    ),
    # Telegram posted the photo, but the answer never reached the bot: the named window.
    "delivered-not-settled": Window(
        latency=0.05,
        arm=lambda tg, emu: tg.slow_next("sendPhoto", HOLD),
        reached=lambda tg, emu, db: bool(photos_seen(tg)),
        state="succeeded",
        deliveries=2,
        tasks=1,
    ),
    # Settled; the status line ("Sending…") is being deleted.
    "settled-status-not-cleared": Window(
        latency=0.05,
        arm=lambda tg, emu: tg.slow_next("deleteMessage", HOLD),
        reached=lambda tg, emu, db: bool(tg.calls_to("deleteMessage")),
        state="delivered",
        deliveries=1,
        tasks=1,
    ),
}


@pytest.mark.parametrize("window", WINDOWS.values(), ids=WINDOWS.keys())
async def test_sigkill_then_restart_charges_once(tmp_path: Path, window: Window) -> None:
    database = tmp_path / "bot.sqlite3"
    log = tmp_path / "bot.log"
    async with FakeTelegram() as telegram:
        emulator = DashScopeEmulator(
            api_key=API_KEY, latency=(window.latency, window.latency), seed=5
        )
        await emulator.start()
        try:
            env = subprocess_env(telegram, emulator, database)
            window.arm(telegram, emulator)
            alice = telegram.user(USER, "Alice")
            chat = telegram.private_chat(alice)
            telegram.send_photo(alice, chat, make_image(), window.command)
            async with bot_process(env, log) as first:
                await wait_until(
                    lambda: window.reached(telegram, emulator, database), START_TIMEOUT
                )
                assert state_of(database) == window.state, log.read_text()
                first.send_signal(signal.SIGKILL)
                await first.wait()

            async with bot_process(env, log):
                if window.state is None:
                    # The request died with the process; the same user asks again and is served.
                    await wait_until(lambda: telegram.pending_update_count == 0, START_TIMEOUT)
                    await asyncio.sleep(SETTLE_WATCH)
                    assert jobs(database) == []
                    telegram.send_photo(alice, chat, make_image(), "/colorize")
                    await wait_until(lambda: len(photos_seen(telegram)) == 1, START_TIMEOUT)
                await wait_until(
                    lambda: [s for s, _ in jobs(database)] == ["delivered"], START_TIMEOUT
                )
                await asyncio.sleep(SETTLE_WATCH)

            log_text = log.read_text()
            assert len(photos_seen(telegram)) == max(window.deliveries, 1), log_text
            assert jobs(database) == [("delivered", 1)]
            # Exactly once, in every window (the retried request of the first row included).
            assert await quota_of(database, USER) == (1, 0)
            assert len(emulator.tasks) == window.tasks + (1 if window.state is None else 0)
            assert len(emulator.requests_to("qwen")) == window.qwen_calls
            assert not [m for m in telegram.messages_in(USER) if "❌" in m.get("text", "")]
            assert "Traceback" not in log_text
            assert telegram.token not in log_text and API_KEY not in log_text
        finally:
            await emulator.close()
