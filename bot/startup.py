"""Start-up and the run loop of ``python -m bot``: one line and one exit code per failure.

With WEBHOOK_URL set, ``setWebhook`` replaces polling: updates arrive on the bot's own web
server (bot/web/webhook.py), so there is no polling task to watch; a revoked token then shows
as failing sends, and the process stops only on a signal.

Why not ``Application.run_polling``: a rejected token escaped it as a long traceback carrying the
token; a Telegram briefly unreachable at start made it exit at once; and a token revoked while
running killed its polling task but left the process up, serving nothing. This loop does what
``run_polling`` does (initialize, post_init, start_polling, start; then stop, post_stop, shutdown,
post_shutdown on SIGTERM/SIGINT) and adds, in this order: the instance lock (one worker per
SQLite file, :mod:`storage.instance_lock`; none on PostgreSQL) before anything talks to Telegram
or DashScope; getMe retried through transient failures within ``TELEGRAM_STARTUP_TIMEOUT``; a
watch on the polling task, so a revoked token stops the process with
:attr:`ExitCode.TOKEN_REJECTED`.

Failures are logged through the masking handler (:mod:`bot.logging_setup`) as one CRITICAL line;
details (tracebacks) only at DEBUG.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
import signal
import sqlite3
from collections.abc import Awaitable, Callable
from enum import IntEnum

from telegram import Update
from telegram.error import (
    BadRequest,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.bailian.retry import RetryPolicy, retry_delay
from bot.config import Settings
from bot.errors import StartupError, StoreError, UnsupportedDatabaseError
from bot.services import SERVICES_KEY, BotApplication, Services
from storage.factory import engine_url, is_sqlite, sqlite_path
from storage.instance_lock import InstanceLock, lock_path_for

logger = logging.getLogger(__name__)


class ExitCode(IntEnum):
    """The exit status of ``python -m bot``, one per cause (README, docs/reliability.md)."""

    OK = 0  # stopped by SIGTERM/SIGINT (also while standing by)
    FAILURE = 1  # anything else: a bug, an unexpected refusal
    CONFIG = 2  # a setting is missing or malformed
    TOKEN_REJECTED = 3  # Telegram answered 401/404: the token is wrong or was revoked
    TELEGRAM_UNREACHABLE = 4  # still no answer from Telegram after TELEGRAM_STARTUP_TIMEOUT
    DATABASE = 5  # DATABASE_URL unusable, the database or its lock file cannot be opened


# getMe at start: full-jitter backoff from 1 s, doubling, capped at 30 s, for at most
# TELEGRAM_STARTUP_TIMEOUT seconds in all.
STARTUP_RETRY_INITIAL_DELAY = 1.0
STARTUP_RETRY_MAX_DELAY = 30.0
# A standby tries the instance lock this often.
LOCK_POLL_INTERVAL = 1.0
# getUpdates long-poll timeout (PTB's default) and deleteWebhook retries when polling starts.
POLL_TIMEOUT = 10
BOOTSTRAP_RETRIES = 3
# PTB names its polling task; watching it is how a dead poll (a revoked token) is noticed.
POLLING_TASK_NAME = "Updater:start_polling:polling_task"
# The update kinds asked for, polled or pushed: every kind, since the access gate, the flood
# limit and the handled-update record run on any update (bot/app.py's routes).
ALLOWED_UPDATES = Update.ALL_TYPES


def run(settings: Settings, build: Callable[[Settings], BotApplication]) -> int:
    """Run the bot until SIGTERM/SIGINT or a fatal failure; returns the exit code."""
    # PTB's retry loop logs a traceback when it gives up; we report that failure in one line.
    logging.getLogger("telegram.ext").addFilter(_drop_retry_loop_aborts)
    try:
        return int(asyncio.run(_main(settings, build)))
    except KeyboardInterrupt:  # before the loop's own handlers were installed
        return ExitCode.OK


async def _main(settings: Settings, build: Callable[[Settings], BotApplication]) -> ExitCode:
    return await run_until_stopped(settings, build, stop_on_signals())


async def run_until_stopped(
    settings: Settings,
    build: Callable[[Settings], BotApplication],
    stop: asyncio.Event,
    *,
    on_ready: Callable[[], None] | None = None,
) -> ExitCode:
    """The body of :func:`run` in a running loop (the playground runs its offline world beside
    it); ``on_ready`` is called once the bot polls and its web server listens."""
    lock: InstanceLock | None = None
    try:
        lock = _instance_lock(settings)
        if lock is not None and not await stand_by_for(lock, stop):
            logger.info("stopped while standing by")
            return ExitCode.OK
        return await serve(build(settings), settings, stop, on_ready=on_ready)
    except Exception as exc:
        failure = as_startup_error(exc)
        logger.critical("%s", failure)
        logger.debug("the failure in detail", exc_info=exc)
        return ExitCode(failure.exit_code)
    finally:
        if lock is not None:
            lock.release()


def as_startup_error(exc: BaseException) -> StartupError:
    """Any failure that ends start-up as an exit code and one line (foreign errors mapped here)."""
    if isinstance(exc, StartupError):
        return exc
    if isinstance(exc, InvalidToken):
        return StartupError(ExitCode.TOKEN_REJECTED, token_rejected_line(exc))
    if isinstance(exc, NetworkError | RetryAfter) and not isinstance(exc, BadRequest):
        return StartupError(
            ExitCode.TELEGRAM_UNREACHABLE, f"Telegram is unreachable: {describe(exc)}"
        )
    if isinstance(exc, StoreError | sqlite3.Error):
        return StartupError(ExitCode.DATABASE, f"Database unusable: {describe(exc)}")
    return StartupError(ExitCode.FAILURE, f"Start-up failed: {describe(exc)}")


def describe(exc: BaseException) -> str:
    """``Type: message``; the logging filter masks any secret in it."""
    message = exc.message if isinstance(exc, TelegramError) else str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def token_rejected_line(exc: InvalidToken) -> str:
    # Bot.initialize's message quotes the whole token: the server's answer is its cause.
    answer = exc.__cause__ if isinstance(exc.__cause__, InvalidToken) else exc
    return (
        f"Telegram rejected the bot token ({answer.message}): TELEGRAM_BOT_TOKEN is mistyped or "
        "was revoked; get the current token from @BotFather"
    )


def _instance_lock(settings: Settings) -> InstanceLock | None:
    """The lock beside an SQLite file: one process serves it, a second stands by. None on
    PostgreSQL, where several instances may run (which one polls is decided elsewhere)."""
    try:
        engine_url(settings.database_url)  # refuses an unknown scheme before anything starts
        if not is_sqlite(settings.database_url):
            return None
        return InstanceLock(lock_path_for(sqlite_path(settings.database_url)))
    except UnsupportedDatabaseError as exc:
        raise StartupError(ExitCode.DATABASE, f"Database unusable: {exc}") from exc


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (call in the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def stand_by_for(
    lock: InstanceLock, stop: asyncio.Event, *, interval: float = LOCK_POLL_INTERVAL
) -> bool:
    """Take the instance lock, standing by while another process holds it; False if stopped."""
    waiting = False
    while not _try_lock(lock):
        if not waiting:
            logger.warning(
                "another instance (pid %s) holds %s: standing by until it stops",
                lock.holder(), lock.path,
            )
            waiting = True
        if await _stopped_within(stop, interval):
            return False
    if waiting:
        logger.info("took over %s", lock.path)
    return True


def _try_lock(lock: InstanceLock) -> bool:
    try:
        return lock.try_acquire()
    except OSError as exc:
        raise StartupError(
            ExitCode.DATABASE, f"Database unusable: cannot lock {lock.path}: {exc}"
        ) from exc


async def serve(
    application: BotApplication,
    settings: Settings,
    stop: asyncio.Event,
    *,
    on_ready: Callable[[], None] | None = None,
) -> ExitCode:
    """Connect (getMe, retried), open the services, poll; until a stop signal or a dead poll."""
    policy = RetryPolicy(
        initial_delay=STARTUP_RETRY_INITIAL_DELAY,
        max_delay=STARTUP_RETRY_MAX_DELAY,
        total_budget=settings.telegram_startup_timeout,
    )
    try:
        if not await connect(application, policy, stop):
            return ExitCode.OK
        if application.post_init is not None:
            await application.post_init(application)
        if stop.is_set():
            return ExitCode.OK
        if settings.webhook_url is not None:
            await set_webhook(application, settings.webhook_url, settings.webhook_secret)
        else:
            assert application.updater is not None  # built with one
            await application.updater.start_polling(
                timeout=POLL_TIMEOUT,
                bootstrap_retries=BOOTSTRAP_RETRIES,
                allowed_updates=ALLOWED_UPDATES,
                error_callback=_on_polling_error,
            )
        await application.start()
        if on_ready is not None:
            on_ready()
        return await _until_stopped(stop, polled=settings.webhook_url is None)
    finally:
        await _shut_down(application)


async def set_webhook(application: BotApplication, url: str, secret: str) -> None:
    """Webhook mode: Telegram pushes updates to ``url`` (served by bot/web/webhook.py).

    Pending updates are kept, and the webhook stays set when the bot stops: updates that
    arrive meanwhile wait at Telegram (it retries) for the next start instead of being lost.
    """
    try:
        await application.bot.set_webhook(
            url, secret_token=secret, allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
    except BadRequest as exc:
        raise StartupError(
            ExitCode.CONFIG, f"Telegram refused WEBHOOK_URL {url}: {exc.message} (it must be an "
            "https URL on port 443, 80, 88 or 8443 that reaches WEB_HOST:WEB_PORT)"
        ) from exc
    logger.info("webhook set: Telegram sends updates to %s", url)


async def connect(application: BotApplication, policy: RetryPolicy, stop: asyncio.Event) -> bool:
    """``application.initialize()`` (getMe), retried through 5xx, timeouts and network errors.

    Returns False when a stop signal came first. A rejected token (InvalidToken) or another
    refusal propagates at once; StartupError when Telegram has not answered within
    ``policy.total_budget`` (plus the last attempt's own timeout, 5 s at most).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    attempts = 0
    while True:
        attempts += 1
        try:
            return await _unless_stopped(application.initialize(), stop)
        except (NetworkError, RetryAfter) as exc:
            if isinstance(exc, BadRequest):  # a refusal: asking again changes nothing
                raise
            elapsed = loop.time() - started
            if elapsed >= policy.total_budget:
                raise StartupError(
                    ExitCode.TELEGRAM_UNREACHABLE,
                    f"Telegram is unreachable: getMe failed {attempts} times in {elapsed:.1f} s "
                    f"(TELEGRAM_STARTUP_TIMEOUT={policy.total_budget:g}); last error: "
                    f"{describe(exc)}",
                ) from exc
            # The last attempt is made when the budget runs out, not skipped.
            delay = min(
                retry_delay(policy, attempts - 1, _retry_after(exc)),
                policy.total_budget - elapsed,
            )
            logger.warning("getMe failed (%s); trying again in %.1f s", describe(exc), delay)
            if await _stopped_within(stop, delay):
                return False


def _retry_after(exc: TelegramError) -> float | None:
    if not isinstance(exc, RetryAfter):
        return None
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def _on_polling_error(exc: TelegramError) -> None:
    """PTB polls again after these (5xx, dropped connections, 409); say so in one line."""
    if isinstance(exc, Conflict):
        logger.warning(
            "getUpdates conflict: another process polls with this token (%s)", exc.message
        )
    else:
        logger.warning("getUpdates failed (%s); polling again", describe(exc))


async def _until_stopped(stop: asyncio.Event, *, polled: bool = True) -> ExitCode:
    """Wait for a stop signal, or for the polling task to end on its own (a revoked token)."""
    polling = next(
        (t for t in asyncio.all_tasks() if t.get_name() == POLLING_TASK_NAME and not t.done()),
        None,
    )
    if polling is None and polled:  # a PTB that names its task otherwise: only signals stop
        logger.debug("polling task %r not found; not watched", POLLING_TASK_NAME)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait(
            {stopping} if polling is None else {stopping, polling},
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        stopping.cancel()
    if stop.is_set() or polling is None:
        logger.info("stop signal received: stopping; unfinished jobs resume at the next start")
        return ExitCode.OK
    error = None if polling.cancelled() else polling.exception()
    if isinstance(error, InvalidToken):
        logger.critical(
            "Telegram rejected the bot token while running (getUpdates: %s): it was revoked or "
            "changed. Stopping; unfinished jobs resume at the next start with a valid token",
            error.message,
        )
        return ExitCode.TOKEN_REJECTED
    logger.critical(
        "polling Telegram stopped unexpectedly (%s); stopping",
        describe(error) if error is not None else "cancelled",
    )
    return ExitCode.FAILURE


async def _shut_down(application: BotApplication) -> None:
    """What ``run_polling`` does on the way out, for whatever part of start-up was reached.

    Every step runs even if one before failed: post_shutdown closes the database, whose thread
    would otherwise keep the process alive.
    """
    services = application.bot_data.get(SERVICES_KEY)
    if isinstance(services, Services) and services.web is not None:
        # First: an update accepted (answered 200) after the Application stops taking updates
        # from its queue would be lost; refused, Telegram keeps it for the next start.
        try:
            await services.web.stop()
        except Exception as exc:
            _log_shutdown_failure("stopping the web server", exc)
    updater = application.updater
    if updater is not None and updater.running:
        try:
            await updater.stop()
        except TelegramError as exc:  # the polling task's own end, reported already
            logger.debug("polling had ended with %s", describe(exc))
        except Exception as exc:
            _log_shutdown_failure("stopping the updater", exc)
    if application.running:
        try:
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
        except Exception as exc:
            _log_shutdown_failure("stopping the application", exc)
    try:
        await application.shutdown()
    except Exception as exc:
        _log_shutdown_failure("shutting the application down", exc)
    try:
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
        # shutdown() skips the bot when initialize() never finished: close its HTTP client.
        await application.bot.shutdown()
    except Exception as exc:
        _log_shutdown_failure("closing the services", exc)


def _log_shutdown_failure(what: str, exc: Exception) -> None:
    logger.error("%s failed: %s", what, describe(exc))
    logger.debug("the failure in detail", exc_info=exc)


async def _unless_stopped(work: Awaitable[object], stop: asyncio.Event) -> bool:
    """Await ``work`` unless ``stop`` is set first (then cancel it); True if it finished."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return False
    task.result()  # raises what the work raised
    return True


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True (at once) if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


def _drop_retry_loop_aborts(record: logging.LogRecord) -> bool:
    """Drop PTB's "Network Retry Loop ... Aborting" tracebacks (a rejected token, a failed
    bootstrap): start-up and the polling watch report those failures in one line."""
    return "Aborting" not in str(record.msg)
