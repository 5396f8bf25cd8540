"""Start-up and stop of ``python -m bot``: one line and one exit code per cause, no secret shown.

Real subprocesses against the fake Bot API and the DashScope emulator (tests/harness.py); the
faults are injected in the fakes (``FakeTelegram.fail_next``), never with hooks in the bot.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut

from bot.errors import StartupError, UnsupportedDatabaseError
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from bot.startup import ExitCode, as_startup_error, stand_by_for
from storage.instance_lock import InstanceLock, lock_path_for
from tests.harness import API_KEY, bot_process, make_image, replied_to, subprocess_env, wait_until

# Shaped like a real token (bot id, colon, 35 characters), so that a leak of any part shows.
TOKEN = "7012345678:AAHk3Zq-Sx9vTbLwPq2rNmC8dYeFgUiOpJs"
OTHER_TOKEN = "7012345678:AAGx0Wq-Lz7uRbKvNp5sTmB1cXeHfYjIoQw"
# Time allowed for a bot process to start, or to exit once it should.
START_TIMEOUT = 20.0
EXIT_TIMEOUT = 20.0


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, DashScopeEmulator]]:
    emulator = DashScopeEmulator(api_key=API_KEY, latency=(0.05, 0.1), seed=5)
    await emulator.start()
    try:
        async with FakeTelegram(token=TOKEN) as telegram:
            yield telegram, emulator
    finally:
        await emulator.close()


def assert_no_secret(text: str, *secrets: str) -> None:
    """Neither secret, nor any 10-character piece of one, appears in ``text``."""
    for secret in (TOKEN, API_KEY, *secrets):
        for start in range(len(secret) - 9):
            piece = secret[start : start + 10]
            assert piece not in text, f"{piece!r} of a secret leaked:\n{text}"


def critical_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " CRITICAL " in line]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def exit_code_of(env: dict[str, str], log: Path, timeout: float = EXIT_TIMEOUT) -> int:
    """Run ``python -m bot`` until it exits on its own; its exit code."""
    async with bot_process(env, log) as process:
        return await asyncio.wait_for(process.wait(), timeout)


async def started(
    telegram: FakeTelegram, process: asyncio.subprocess.Process, log: Path
) -> None:
    """Wait until the bot says it started and polls; fail at once (with its log) if it exits."""
    await wait_until(
        lambda: process.returncode is not None
        or ("bot @" in log.read_text() and telegram.calls_to("getUpdates")),
        timeout=START_TIMEOUT,
    )
    assert process.returncode is None, log.read_text()


# --- secrets and exit codes at start-up --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("answer", ["401-mistyped-token", "404", "401-on-setMyCommands"])
async def test_rejected_token_exits_3_with_one_line_and_no_secret(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator], answer: str
) -> None:
    telegram, emulator = fakes
    env = subprocess_env(telegram, emulator, tmp_path / "bot.sqlite3")
    if answer == "404":
        telegram.fail_next("getMe", error_code=404, description="Not Found")
    elif answer == "401-on-setMyCommands":  # after the database and the services were opened
        telegram.fail_next("setMyCommands", error_code=401, description="Unauthorized")
    else:
        env["TELEGRAM_BOT_TOKEN"] = OTHER_TOKEN  # the fake answers 401 to any other token
    log = tmp_path / "bot.log"
    assert await exit_code_of(env, log) == ExitCode.TOKEN_REJECTED
    text = log.read_text()
    assert_no_secret(text, OTHER_TOKEN)
    assert "Traceback" not in text
    [line] = critical_lines(text)
    assert "rejected the bot token" in line and "TELEGRAM_BOT_TOKEN" in line
    assert len(telegram.calls_to("getMe")) == 1  # a rejection is not retried
    assert not telegram.calls_to("getUpdates")


@pytest.mark.slow
async def test_getme_502_twice_then_ok_is_retried_and_the_bot_serves(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    telegram.fail_next("getMe", error_code=502, description="Bad Gateway", times=2)
    env = subprocess_env(
        telegram, emulator, tmp_path / "bot.sqlite3", TELEGRAM_STARTUP_TIMEOUT="30"
    )
    log = tmp_path / "bot.log"
    async with bot_process(env, log) as process:
        await started(telegram, process, log)
        assert len(telegram.calls_to("getMe")) == 3
        alice = telegram.user(1, "Alice")
        request = telegram.send_text(alice, telegram.private_chat(alice), "/quota")
        await telegram.wait_for_call(
            "sendMessage", lambda c: replied_to(c) == request["message_id"]
        )
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), EXIT_TIMEOUT) == ExitCode.OK
    text = log.read_text()
    assert text.count("getMe failed") == 2, text
    assert "Traceback" not in text and not critical_lines(text)
    assert_no_secret(text)


@pytest.mark.slow
async def test_telegram_unreachable_exits_4_after_the_retry_budget(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    env = subprocess_env(
        telegram, emulator, tmp_path / "bot.sqlite3",
        TELEGRAM_API_URL=f"http://127.0.0.1:{closed_port()}", TELEGRAM_STARTUP_TIMEOUT="2",
    )
    log = tmp_path / "bot.log"
    assert await exit_code_of(env, log) == ExitCode.TELEGRAM_UNREACHABLE
    text = log.read_text()
    assert_no_secret(text)
    assert "Traceback" not in text
    [line] = critical_lines(text)
    assert "Telegram is unreachable" in line and "TELEGRAM_STARTUP_TIMEOUT=2" in line
    assert "getMe failed" in text  # retried before giving up


@pytest.mark.slow
async def test_sigterm_while_retrying_getme_exits_0_at_once(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    env = subprocess_env(
        telegram, emulator, tmp_path / "bot.sqlite3",
        TELEGRAM_API_URL=f"http://127.0.0.1:{closed_port()}", TELEGRAM_STARTUP_TIMEOUT="600",
    )
    log = tmp_path / "bot.log"
    async with bot_process(env, log) as process:
        await wait_until(lambda: "getMe failed" in log.read_text(), START_TIMEOUT)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 3) == ExitCode.OK
    text = log.read_text()
    assert "Traceback" not in text and not critical_lines(text)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault", ["unsupported-scheme", "postgresql-unreachable", "not-a-database"]
)
async def test_bad_database_exits_5_with_one_line(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator], fault: str
) -> None:
    telegram, emulator = fakes
    database = tmp_path / "bot.sqlite3"
    env = subprocess_env(telegram, emulator, database)
    if fault == "unsupported-scheme":
        env["DATABASE_URL"] = "mysql://bot:hunter2-db-password@db.internal/bot"
    elif fault == "postgresql-unreachable":
        env["DATABASE_URL"] = (
            f"postgres://bot:hunter2-db-password@127.0.0.1:{closed_port()}/bot"
        )
    else:
        database.write_bytes(b"this is not an SQLite database, just some text" * 100)
    log = tmp_path / "bot.log"
    assert await exit_code_of(env, log) == ExitCode.DATABASE
    text = log.read_text()
    assert_no_secret(text, "hunter2-db-password")
    assert "Traceback" not in text
    [line] = critical_lines(text)
    assert "Database unusable" in line
    assert {
        "unsupported-scheme": "'mysql'",
        "postgresql-unreachable": "postgres://bot:***@127.0.0.1",
        "not-a-database": "not a database",
    }[fault] in line
    assert not telegram.calls_to("getUpdates")


@pytest.mark.slow
async def test_any_other_refusal_exits_1_with_one_line(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    telegram.fail_next("getMe", error_code=400, description="Bad Request: something new")
    env = subprocess_env(telegram, emulator, tmp_path / "bot.sqlite3")
    log = tmp_path / "bot.log"
    assert await exit_code_of(env, log) == ExitCode.FAILURE
    text = log.read_text()
    assert_no_secret(text)
    assert "Traceback" not in text
    [line] = critical_lines(text)
    assert "Start-up failed: BadRequest: Something new" in line
    assert len(telegram.calls_to("getMe")) == 1  # a refusal is not retried


@pytest.mark.slow
async def test_config_error_exits_2_and_masks_a_secret_in_the_wrong_variable(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    env = subprocess_env(telegram, emulator, tmp_path / "bot.sqlite3", DASHSCOPE_BASE_URL=TOKEN)
    log = tmp_path / "bot.log"
    assert await exit_code_of(env, log) == ExitCode.CONFIG
    text = log.read_text()
    assert_no_secret(text)
    assert text.strip().splitlines() == [
        "Configuration error: DASHSCOPE_BASE_URL: invalid value '***': must start with "
        "http:// or https://"
    ]


# --- a token revoked while running ---------------------------------------------------------------


@pytest.mark.slow
async def test_token_revoked_while_running_stops_with_3_and_the_job_resumes(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    emulator.latency = (2.0, 2.0)  # the task is still running when the token goes
    database = tmp_path / "bot.sqlite3"
    env = subprocess_env(telegram, emulator, database)
    log = tmp_path / "bot.log"
    alice = telegram.user(1, "Alice")
    chat = telegram.private_chat(alice)
    request = telegram.send_photo(alice, chat, make_image(), "/colorize")
    async with bot_process(env, log) as process:
        await wait_until(lambda: emulator.requests_to("query"), timeout=START_TIMEOUT)
        telegram.fail_next("getUpdates", error_code=401, description="Unauthorized")
        telegram.send_text(alice, chat, "/help")  # ends the long poll under way
        assert await asyncio.wait_for(process.wait(), 10) == ExitCode.TOKEN_REJECTED
    text = log.read_text()
    assert_no_secret(text)
    assert "Traceback" not in text
    [line] = critical_lines(text)
    assert "rejected the bot token while running" in line
    with sqlite3.connect(database) as db:
        assert [row[0] for row in db.execute("SELECT state FROM jobs")] == ["submitted"]
    async with bot_process(env, log, graceful=True):  # with a valid token again
        await telegram.wait_for_call(
            "sendPhoto", lambda c: replied_to(c) == request["message_id"], timeout=30
        )
    assert len(emulator.requests_to("submit")) == 1  # resumed by its task id, not resubmitted


# --- one worker per database ---------------------------------------------------------------------


@pytest.mark.slow
async def test_second_process_stands_by_and_takes_over_after_sigkill(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    env = subprocess_env(telegram, emulator, tmp_path / "bot.sqlite3")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with bot_process(env, first_log) as first:
        await started(telegram, first, first_log)
        async with bot_process(env, second_log, graceful=True) as second:
            await wait_until(lambda: "standing by" in second_log.read_text(), START_TIMEOUT)
            await asyncio.sleep(2.5)  # a few of the standby's lock polls
            standby_text = second_log.read_text()
            assert standby_text.count("standing by") == 1  # logged once, not per poll
            assert " WARNING " in standby_text and "bot.sqlite3.lock" in standby_text
            assert "bot @" not in standby_text
            # The standby never talked to Telegram: no second getMe, no 409 between two polls.
            assert len(telegram.calls_to("getMe")) == 1
            assert not [c for c in telegram.calls_to("getUpdates") if c.response.get("error_code")]
            assert not emulator.requests

            first.send_signal(signal.SIGKILL)
            await first.wait()
            await started(telegram, second, second_log)
            alice = telegram.user(1, "Alice")
            request = telegram.send_photo(
                alice, telegram.private_chat(alice), make_image(), "/colorize"
            )
            await telegram.wait_for_call(
                "sendPhoto", lambda c: replied_to(c) == request["message_id"], timeout=30
            )
            assert "took over" in second_log.read_text()
            assert len(telegram.calls_to("getMe")) == 2
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), EXIT_TIMEOUT) == ExitCode.OK
    for log in (first_log, second_log):
        assert "Traceback" not in log.read_text()
        assert_no_secret(log.read_text())


@pytest.mark.slow
async def test_sigterm_while_standing_by_exits_0_at_once(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator]
) -> None:
    telegram, emulator = fakes
    env = subprocess_env(telegram, emulator, tmp_path / "bot.sqlite3")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with bot_process(env, first_log, graceful=True) as first:
        await started(telegram, first, first_log)
        async with bot_process(env, second_log) as second:
            await wait_until(lambda: "standing by" in second_log.read_text(), START_TIMEOUT)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 3) == ExitCode.OK
        assert first.returncode is None  # the worker was not disturbed
    assert "Traceback" not in second_log.read_text()


# --- the pieces, in-process ----------------------------------------------------------------------


def test_instance_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    path = lock_path_for(tmp_path / "data" / "bot.sqlite3")
    assert path == tmp_path / "data" / "bot.sqlite3.lock"
    first, second = InstanceLock(path), InstanceLock(path)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert not second.held
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


async def test_standby_waits_for_the_lock_and_stops_on_a_signal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bot.sqlite3.lock"
    holder, standby = InstanceLock(path), InstanceLock(path)
    stop = asyncio.Event()
    assert holder.try_acquire()
    try:
        with caplog.at_level(logging.INFO, logger="bot.startup"):
            waiting = asyncio.create_task(stand_by_for(standby, stop, interval=0.02))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            holder.release()
            assert await asyncio.wait_for(waiting, 2) is True
            assert standby.held
            standby.release()

            assert holder.try_acquire()
            stopped = asyncio.create_task(stand_by_for(standby, stop, interval=10))
            await asyncio.sleep(0.05)
            stop.set()
            assert await asyncio.wait_for(stopped, 1) is False
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2  # once per wait, however many polls
        assert str(path) in warnings[0].getMessage()
    finally:
        holder.release()
        standby.release()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidToken("The token `x` was rejected by the server."), ExitCode.TOKEN_REJECTED),
        (NetworkError("Bad Gateway"), ExitCode.TELEGRAM_UNREACHABLE),
        (TimedOut(), ExitCode.TELEGRAM_UNREACHABLE),
        (RetryAfter(5), ExitCode.TELEGRAM_UNREACHABLE),
        (BadRequest("Bad Request: wrong method"), ExitCode.FAILURE),
        (Conflict("Conflict: terminated by other getUpdates request"), ExitCode.FAILURE),
        (StartupError(ExitCode.DATABASE, "Database unusable: x"), ExitCode.DATABASE),
        (UnsupportedDatabaseError("schema 9 is newer than this code"), ExitCode.DATABASE),
        (sqlite3.OperationalError("disk I/O error"), ExitCode.DATABASE),
        (RuntimeError("a bug"), ExitCode.FAILURE),
    ],
)
def test_every_failure_maps_to_one_exit_code(error: Exception, code: ExitCode) -> None:
    failure = as_startup_error(error)
    assert failure.exit_code == code
    assert "\n" not in str(failure)


def test_a_rejected_token_line_never_quotes_ptbs_message() -> None:
    try:
        try:
            raise InvalidToken("Unauthorized")
        except InvalidToken as cause:
            raise InvalidToken(f"The token `{TOKEN}` was rejected by the server.") from cause
    except InvalidToken as exc:
        line = str(as_startup_error(exc))
    assert "(Unauthorized)" in line
    assert_no_secret(line)


@pytest.mark.parametrize(
    ("url", "locked"),
    [
        ("sqlite:///data/bot.sqlite3", "data/bot.sqlite3.lock"),
        ("postgres://bot:pw@db/bot", None),  # several instances may share PostgreSQL
        ("postgresql://bot@db/bot", None),
    ],
)
def test_only_an_sqlite_file_takes_the_instance_lock(url: str, locked: str | None) -> None:
    from types import SimpleNamespace

    from bot.startup import _instance_lock

    lock = _instance_lock(SimpleNamespace(database_url=url))  # type: ignore[arg-type]
    assert (None if lock is None else str(lock.path)) == locked
