"""Fault matrix: every DashScope and Telegram fault, end to end over the loopback fakes.

For each fault the test checks four promises: the user gets the image or a clear message; only
delivered images are charged; every job is final within ``BOUND`` seconds; and the bot goes on
serving another user afterwards. docs/reliability.md lists the rows and what happened.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.errors import JobNotFoundError
from bot.offline.bot_api import ApiCall, FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from storage.models import Job, JobState
from tests.harness import (
    ADMIN_ID,
    API_KEY,
    TEST_RETRY_POLICY,
    Harness,
    bot_settings,
    make_image,
    replied_to,
    running,
    wait_until,
)

pytestmark = pytest.mark.slow

# Every job must reach a final state within this many seconds of the request.
BOUND = 10.0
# The DashScope client's answer timeout in the "slow answer" rows, and how late the answer is.
SHORT_TIMEOUT = 0.8
LATE_BY = SHORT_TIMEOUT + 0.4
WANX = "/colorize"
QWEN = "/edit make the sky red"
NOT_CHARGED = "Nothing was charged"
BLOCKED = "Forbidden: bot was blocked by the user"
REPLY_GONE = "Bad Request: message to be replied not found"


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[DashScopeEmulator]:
    """The emulator with tasks of 0-30 ms, so that faults, not latency, set the pace."""
    emu = DashScopeEmulator(api_key=API_KEY, latency=(0.0, 0.03), seed=11)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()


@pytest.fixture
async def short_timeout(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The harness with a DashScope answer timeout of SHORT_TIMEOUT seconds."""
    settings = bot_settings(telegram, emulator, tmp_path / "bot.sqlite3")
    async with running(settings, request_timeout=SHORT_TIMEOUT) as application:
        yield Harness(telegram, emulator, settings, application)


async def quota(harness: Harness, user_id: int) -> tuple[int, int]:
    """(used, reserved) this month."""
    status = await harness.services.store.quota_status(user_id)
    return status.used, status.reserved


async def all_jobs(harness: Harness) -> list[Job]:
    """Every job in the store (ids are numbered from 1)."""
    jobs: list[Job] = []
    while True:
        try:
            jobs.append(await harness.services.store.get_job(len(jobs) + 1))
        except JobNotFoundError:
            return jobs


async def final_jobs(harness: Harness, count: int = 1) -> list[Job]:
    """The ``count`` jobs made so far, once every one is final (else fails after BOUND s)."""
    jobs: list[Job] = []

    async def all_final() -> bool:
        jobs[:] = await all_jobs(harness)
        return len(jobs) >= count and all(job.state.is_final for job in jobs)

    await wait_until(all_final, BOUND)
    assert len(jobs) == count, jobs
    assert not any(job.reservation_open for job in jobs), jobs
    return jobs


def texts_to(telegram: FakeTelegram, chat_id: int) -> list[str]:
    """Every text the bot successfully sent or edited into a chat."""
    return [
        str(call.params.get("text", ""))
        for call in telegram.calls
        if call.method in ("sendMessage", "editMessageText")
        and str(call.params.get("chat_id")) == str(chat_id)
        and call.response.get("ok")
    ]


async def told(telegram: FakeTelegram, chat_id: int, *fragments: str) -> str:
    """The first text to ``chat_id`` holding every fragment (waits up to BOUND seconds)."""
    found: list[str] = []

    def seen() -> bool:
        found[:] = [t for t in texts_to(telegram, chat_id) if all(f in t for f in fragments)]
        return bool(found)

    await wait_until(seen, BOUND)
    return found[0]


def deliveries(telegram: FakeTelegram, request: dict[str, Any]) -> list[ApiCall]:
    """Successful result sends (photo, document or album) into the request's chat."""
    chat_id = str(request["chat"]["id"])
    return [
        call
        for call in telegram.calls
        if call.method in ("sendPhoto", "sendDocument", "sendMediaGroup")
        and str(call.params.get("chat_id")) == chat_id
        and call.response.get("ok")
    ]


def ask(harness: Harness, user_id: int, caption: str, name: str = "Alice") -> dict[str, Any]:
    """A user sends a photo with a command caption in their private chat."""
    tg = harness.telegram
    user = harness.user(user_id, name)
    return tg.send_photo(user, tg.private_chat(user), make_image(), caption)


async def serves_another_user(harness: Harness, command: str = WANX) -> None:
    """After the fault, another user's request (same model) goes through and costs one image."""
    before = len(await all_jobs(harness))
    request = ask(harness, 77, QWEN if command.startswith("/edit") else WANX, "Bob")
    await harness.reply_to(request, "sendPhoto", timeout=BOUND)
    jobs = await final_jobs(harness, count=before + 1)
    assert jobs[-1].user_id == 77 and jobs[-1].state is JobState.DELIVERED
    assert await quota(harness, 77) == (1, 0)


# --- DashScope: faults the bot rides out ------------------------------------------------------


@dataclass(frozen=True)
class Transient:
    """A fault retried away: the image is delivered and charged once."""

    command: str
    endpoint: str
    inject: Callable[[DashScopeEmulator], None]
    faults: int  # requests the fault spoils

    @property
    def exact(self) -> bool:
        # Polls are counted loosely: a task may still be running at the first one.
        return self.endpoint != "query"


def _fail(endpoint: str, status: int, code: str, times: int = 1) -> Callable[..., None]:
    return lambda emu: emu.fail_next(endpoint, status, code, "injected", times=times)


def _throttle_each_code(emulator: DashScopeEmulator) -> None:
    for code in ("Throttling", "Throttling.RateQuota", "Throttling.BurstRate"):
        emulator.fail_next("submit", 429, code, "Requests rate limit exceeded")


def _gateway_errors(endpoint: str) -> Callable[[DashScopeEmulator], None]:
    def inject(emulator: DashScopeEmulator) -> None:
        emulator.fail_next(endpoint, 503, "ServiceUnavailable", "injected")
        emulator.fail_next(endpoint, 504, "GatewayTimeout", "injected")

    return inject


TRANSIENT = {
    # Throttling or errors that outlast one retry budget: a job not yet submitted waits the
    # outage out (DASHSCOPE_OUTAGE_WAIT), a submitted task is polled on (it was billed).
    "submit-429-persistent": Transient(
        WANX, "submit",
        _fail("submit", 429, "Throttling.RateQuota", TEST_RETRY_POLICY.max_attempts),
        TEST_RETRY_POLICY.max_attempts,
    ),
    "query-500-persistent": Transient(
        WANX, "query", _fail("query", 500, "InternalError", TEST_RETRY_POLICY.max_attempts),
        TEST_RETRY_POLICY.max_attempts,
    ),
    "result-503-persistent": Transient(
        WANX, "result",
        _fail("result", 503, "ServiceUnavailable", 2 * TEST_RETRY_POLICY.max_attempts),
        2 * TEST_RETRY_POLICY.max_attempts,
    ),
    "qwen-503-persistent": Transient(
        QWEN, "qwen", _fail("qwen", 503, "ServiceUnavailable", TEST_RETRY_POLICY.max_attempts),
        TEST_RETRY_POLICY.max_attempts,
    ),
    # 429 with each retryable Throttling code, one after the other.
    "submit-429-each-Throttling-code": Transient(WANX, "submit", _throttle_each_code, 3),
    "qwen-429-RateQuota": Transient(QWEN, "qwen", _fail("qwen", 429, "Throttling.RateQuota"), 1),
    "query-429-Throttling": Transient(WANX, "query", _fail("query", 429, "Throttling"), 1),
    # 500, and the gateway's 503/504.
    "submit-500": Transient(WANX, "submit", _fail("submit", 500, "InternalError"), 1),
    "qwen-500": Transient(QWEN, "qwen", _fail("qwen", 500, "InternalError.Algo"), 1),
    "submit-503-then-504": Transient(WANX, "submit", _gateway_errors("submit"), 2),
    "query-503-then-504": Transient(WANX, "query", _gateway_errors("query"), 2),
    "qwen-503-then-504": Transient(QWEN, "qwen", _gateway_errors("qwen"), 2),
    "result-503-then-504": Transient(WANX, "result", _gateway_errors("result"), 2),
    # A gateway's HTML page instead of JSON.
    "submit-502-html": Transient(WANX, "submit", lambda e: e.non_json_next("submit"), 1),
    "query-502-html": Transient(WANX, "query", lambda e: e.non_json_next("query"), 1),
    "qwen-503-html": Transient(QWEN, "qwen", lambda e: e.non_json_next("qwen", status=503), 1),
    # The connection reset before the answer, or in the middle of its body: only reads repeat.
    "query-reset": Transient(WANX, "query", lambda e: e.drop_next("query"), 1),
    "query-reset-mid-body": Transient(
        WANX, "query", lambda e: e.drop_next("query", after_headers=True), 1
    ),
    "result-reset": Transient(WANX, "result", lambda e: e.drop_next("result"), 1),
    "result-reset-mid-body": Transient(
        WANX, "result", lambda e: e.drop_next("result", after_headers=True), 1
    ),
}


@pytest.mark.parametrize("case", TRANSIENT.values(), ids=TRANSIENT.keys())
async def test_dashscope_transient_fault_is_retried_and_delivered_once(
    harness: Harness, case: Transient
) -> None:
    emulator = harness.emulator
    case.inject(emulator)
    request = ask(harness, 1, case.command)
    await harness.reply_to(request, "sendPhoto", timeout=BOUND)
    [job] = await final_jobs(harness)
    assert job.state is JobState.DELIVERED
    assert len(deliveries(harness.telegram, request)) == 1
    assert await quota(harness, 1) == (1, 0)
    seen = len(emulator.requests_to(case.endpoint))
    assert seen == case.faults + 1 if case.exact else seen >= case.faults + 1
    if case.command == WANX:
        assert len(emulator.tasks) == 1  # never submitted twice
    await serves_another_user(harness, case.command)


async def test_retry_after_of_a_429_is_obeyed(harness: Harness) -> None:
    harness.emulator.fail_next("submit", 429, "Throttling.RateQuota", "slow down", retry_after=0.4)
    request = ask(harness, 1, WANX)
    await harness.reply_to(request, "sendPhoto", timeout=BOUND)
    first, second = harness.emulator.requests_to("submit")
    assert second.received_at - first.received_at >= 0.4
    await final_jobs(harness)
    assert await quota(harness, 1) == (1, 0)


@pytest.mark.parametrize("endpoint", ["query", "result"])
async def test_answer_slower_than_the_timeout_is_retried_for_reads(
    short_timeout: Harness, endpoint: str
) -> None:
    harness = short_timeout
    harness.emulator.slow_next(endpoint, LATE_BY)
    started = time.monotonic()
    request = ask(harness, 1, WANX)
    await harness.reply_to(request, "sendPhoto", timeout=BOUND)
    [job] = await final_jobs(harness)
    assert job.state is JobState.DELIVERED
    assert time.monotonic() - started < LATE_BY + BOUND / 2
    assert len(deliveries(harness.telegram, request)) == 1
    assert len(harness.emulator.tasks) == 1
    assert await quota(harness, 1) == (1, 0)


# --- DashScope: outages ------------------------------------------------------------------------

SERVICE_DOWN = "not answering"
SERVICE_SLOW = "slow to answer"


async def test_outage_while_the_task_runs_is_polled_through_and_delivered(
    harness: Harness,
) -> None:
    """Every endpoint down for longer than the retry budget after the submit: the task the
    service ran is fetched afterwards, delivered and charged once; the user is told once."""
    emulator = harness.emulator
    emulator.latency = (0.3, 0.3)
    request = ask(harness, 1, WANX)
    await wait_until(lambda: bool(emulator.tasks), BOUND)
    emulator.outage(TEST_RETRY_POLICY.total_budget + 1.5)
    await harness.reply_to(request, "sendPhoto", timeout=BOUND)
    [job] = await final_jobs(harness)
    assert job.state is JobState.DELIVERED
    assert len(emulator.tasks) == 1
    assert await quota(harness, 1) == (1, 0)
    slow = [t for t in texts_to(harness.telegram, 1) if SERVICE_SLOW in t]
    assert len(slow) == 1, slow


async def test_outage_before_the_submit_is_waited_out(harness: Harness) -> None:
    emulator = harness.emulator
    emulator.outage(1.5)  # past one retry budget, within DASHSCOPE_OUTAGE_WAIT
    request = ask(harness, 1, WANX)
    await told(harness.telegram, 1, SERVICE_DOWN)
    await harness.reply_to(request, "sendPhoto", timeout=BOUND)
    [job] = await final_jobs(harness)
    assert job.state is JobState.DELIVERED
    assert len(emulator.tasks) == 1
    assert await quota(harness, 1) == (1, 0)


async def test_outage_longer_than_the_wait_refunds_a_job_never_submitted(
    harness: Harness,
) -> None:
    emulator = harness.emulator
    emulator.outage(3600)
    ask(harness, 1, WANX)
    started = time.monotonic()
    await told(harness.telegram, 1, "busy", NOT_CHARGED)
    waited = time.monotonic() - started
    outage_wait = harness.settings.dashscope_outage_wait
    assert outage_wait <= waited < outage_wait + BOUND / 2
    [job] = await final_jobs(harness)
    assert job.state is JobState.FAILED
    assert not emulator.tasks
    assert await quota(harness, 1) == (0, 0)
    emulator.outage(0)
    await serves_another_user(harness)


# --- DashScope: faults that end the job -------------------------------------------------------


@dataclass(frozen=True)
class Fatal:
    """A fault that fails the job: the user is told in plain words and nothing is charged."""

    command: str
    inject: Callable[[DashScopeEmulator], None]
    says: str  # a fragment of the explanation
    tasks: int = 0  # wanx tasks the service created (and bills) though the user is not charged
    admins_told: bool = False


def _script(outcome: str, **options: Any) -> Callable[[DashScopeEmulator], None]:
    return lambda emu: emu.script_next_task(outcome, **options)


def _expire_results(emulator: DashScopeEmulator) -> None:
    emulator.result_ttl = -60.0  # every result URL handed out is already past its Expires


UNCONFIRMED = "could not be confirmed"
FATAL = {
    # A submit (or a qwen call) may have run when its answer is lost: it is never repeated.
    "submit-reset": Fatal(WANX, lambda e: e.drop_next("submit"), UNCONFIRMED, tasks=1),
    "submit-reset-mid-body": Fatal(
        WANX, lambda e: e.drop_next("submit", after_headers=True), UNCONFIRMED, tasks=1
    ),
    "submit-200-not-json": Fatal(
        WANX, lambda e: e.non_json_next("submit", status=200), UNCONFIRMED
    ),
    "qwen-reset": Fatal(QWEN, lambda e: e.drop_next("qwen"), UNCONFIRMED),
    # The task ran and failed, or produced nothing usable.
    "task-FAILED": Fatal(WANX, _script("failed"), "The edit failed", tasks=1),
    "task-CANCELED": Fatal(WANX, _script("canceled"), "The edit failed", tasks=1),
    "task-every-image-failed": Fatal(
        WANX, _script("partial", failed_images=1), "The edit failed", tasks=1
    ),
    "task-UNKNOWN-expired": Fatal(WANX, _script("unknown"), "expired", tasks=1),
    # The result URL answers 403/404, or its signature has expired.
    "result-403": Fatal(WANX, _fail("result", 403, "AccessDenied"), "expired", tasks=1),
    "result-404": Fatal(WANX, _fail("result", 404, "NoSuchKey"), "expired", tasks=1),
    "result-url-expired": Fatal(WANX, _expire_results, "expired", tasks=1),
    # Account errors: only an admin can fix them; admins are alerted.
    "submit-401-InvalidApiKey": Fatal(
        WANX, _fail("submit", 401, "InvalidApiKey"), "admins have been told", admins_told=True
    ),
    "submit-400-Arrearage": Fatal(
        WANX, _fail("submit", 400, "Arrearage"), "admins have been told", admins_told=True
    ),
    "submit-429-AllocationQuota": Fatal(
        WANX,
        _fail("submit", 429, "Throttling.AllocationQuota"),
        "admins have been told",
        admins_told=True,
    ),
    "qwen-403-AccessDenied": Fatal(
        QWEN, _fail("qwen", 403, "AccessDenied.Unpurchased"), "admins have been told",
        admins_told=True,
    ),
}


@pytest.mark.parametrize("case", FATAL.values(), ids=FATAL.keys())
async def test_dashscope_fatal_fault_is_explained_and_refunded(
    harness: Harness, case: Fatal
) -> None:
    tg = harness.telegram
    admin = harness.user(ADMIN_ID, "Admin")
    tg.private_chat(admin)
    case.inject(harness.emulator)
    request = ask(harness, 1, case.command)
    explanation = await told(tg, 1, case.says, NOT_CHARGED)
    assert "❌" in explanation
    [job] = await final_jobs(harness)
    assert job.state is JobState.FAILED
    assert not deliveries(tg, request)
    assert await quota(harness, 1) == (0, 0)
    assert len(harness.emulator.tasks) == case.tasks
    if case.admins_told:
        await told(tg, ADMIN_ID, "account problem")
    harness.emulator.result_ttl = 3600.0
    await serves_another_user(harness, case.command)
    alerts = [t for t in texts_to(tg, ADMIN_ID) if "account problem" in t]
    assert len(alerts) == (1 if case.admins_told else 0)


@pytest.mark.parametrize("endpoint", ["submit", "qwen"])
async def test_answer_slower_than_the_timeout_is_not_repeated_for_submits(
    short_timeout: Harness, endpoint: str
) -> None:
    harness = short_timeout
    harness.emulator.slow_next(endpoint, LATE_BY)
    ask(harness, 1, WANX if endpoint == "submit" else QWEN)
    await told(harness.telegram, 1, UNCONFIRMED, NOT_CHARGED)
    await final_jobs(harness)
    assert len(harness.emulator.requests_to(endpoint)) == 1
    assert await quota(harness, 1) == (0, 0)
    await serves_another_user(harness, WANX if endpoint == "submit" else QWEN)


@pytest.mark.parametrize("failed", [1, 2])
async def test_partial_failure_charges_only_what_arrived(harness: Harness, failed: int) -> None:
    harness.emulator.script_next_task("partial", failed_images=failed)
    request = ask(harness, 1, f"{WANX} n=3")
    sent = await harness.reply_to(request, "sendMediaGroup" if failed == 1 else "sendPhoto")
    caption = str(sent.params.get("caption") or sent.params.get("media"))
    assert f"{3 - failed} of 3" in caption
    await final_jobs(harness)
    assert await quota(harness, 1) == (3 - failed, 0)
    await serves_another_user(harness)


async def test_one_result_url_gone_of_two_charges_one(harness: Harness) -> None:
    harness.emulator.fail_next("result", 404, "NoSuchKey")
    request = ask(harness, 1, f"{WANX} n=2")
    sent = await harness.reply_to(request, "sendPhoto")
    assert "1 of 2" in sent.params["caption"]
    await final_jobs(harness)
    assert await quota(harness, 1) == (1, 0)


# --- Telegram ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("methods", "command"),
    [
        # the "queued" status line, the "working" edit and the result, one after the other
        (("sendMessage", "editMessageText", "sendPhoto"), WANX),
        (("sendMediaGroup",), f"{WANX} n=2"),
    ],
    ids=["status-edit-photo", "album"],
)
async def test_telegram_flood_wait_is_waited_out(
    harness: Harness, methods: tuple[str, ...], command: str
) -> None:
    tg = harness.telegram
    for method in methods:
        tg.fail_next(method, error_code=429, description="Too Many Requests: retry after 1",
                     retry_after=1)
    request = ask(harness, 1, command)
    [job] = await final_jobs(harness)
    assert job.state is JobState.DELIVERED
    assert len(deliveries(tg, request)) == 1
    for method in methods:
        calls = tg.calls_to(method)
        [refused] = [i for i, c in enumerate(calls) if c.response.get("error_code") == 429]
        # The same call came again once retry_after had passed, not before.
        assert calls[refused + 1].at - calls[refused].at >= 1.0
    assert await quota(harness, 1) == (job.images_requested, 0)
    await serves_another_user(harness, command)


async def test_telegram_500_on_a_send_is_retried_once_delivered(harness: Harness) -> None:
    tg = harness.telegram
    tg.fail_next("sendPhoto", error_code=500, description="Internal Server Error")
    request = ask(harness, 1, WANX)
    await harness.reply_to(request, "sendPhoto", timeout=BOUND)
    await final_jobs(harness)
    assert len(tg.calls_to("sendPhoto")) == 2
    assert len(deliveries(tg, request)) == 1
    assert await quota(harness, 1) == (1, 0)
    await serves_another_user(harness)


async def test_telegram_500_that_persists_fails_the_job_without_charge(harness: Harness) -> None:
    tg = harness.telegram
    tg.fail_next("sendPhoto", error_code=500, description="Internal Server Error", times=3)
    request = ask(harness, 1, WANX)
    await told(tg, 1, "could not be sent", NOT_CHARGED)
    [job] = await final_jobs(harness)
    assert job.state is JobState.FAILED
    assert not deliveries(tg, request)
    assert await quota(harness, 1) == (0, 0)
    await serves_another_user(harness)


async def test_status_line_refused_does_not_stall_the_job(harness: Harness) -> None:
    tg = harness.telegram
    tg.fail_next("sendMessage", error_code=403, description=BLOCKED)
    request = ask(harness, 1, WANX)
    [job] = await final_jobs(harness)
    assert job.state is JobState.DELIVERED and job.status_message_id is None
    assert len(deliveries(tg, request)) == 1
    assert not [t for t in texts_to(tg, 1) if "went wrong" in t]
    assert await quota(harness, 1) == (1, 0)
    await serves_another_user(harness)


async def test_get_updates_dropping_the_connection_loses_no_update(harness: Harness) -> None:
    tg = harness.telegram
    tg.drop_next_get_updates()
    request = ask(harness, 1, WANX)
    await harness.reply_to(request, "sendPhoto", timeout=BOUND)
    await final_jobs(harness)
    assert len(deliveries(tg, request)) == 1
    assert await quota(harness, 1) == (1, 0)
    await serves_another_user(harness)


@pytest.mark.parametrize("when", ["before_the_status_line", "while_the_job_runs"])
async def test_user_who_blocked_the_bot_is_not_charged(harness: Harness, when: str) -> None:
    tg = harness.telegram
    if when == "before_the_status_line":
        tg.block_bot(1)
    else:
        harness.emulator.slow_next("submit", 0.3)
    request = ask(harness, 1, WANX)
    if when == "while_the_job_runs":
        await harness.reply_to(request)  # the "queued" status reached the user
        tg.block_bot(1)
    [job] = await final_jobs(harness)
    assert job.state is JobState.FAILED
    assert not deliveries(tg, request)
    assert await quota(harness, 1) == (0, 0)
    await serves_another_user(harness)


async def test_deleted_request_still_gets_its_result_without_the_reply(harness: Harness) -> None:
    tg = harness.telegram
    harness.emulator.slow_next("submit", 0.3)
    request = ask(harness, 1, WANX)
    await harness.reply_to(request)
    tg.delete_user_message(1, request["message_id"])
    sent = await tg.wait_for_call("sendPhoto", timeout=BOUND)
    assert sent.response["ok"] and "reply_to_message" not in sent.result
    await final_jobs(harness)
    assert await quota(harness, 1) == (1, 0)
    await serves_another_user(harness)


@pytest.mark.parametrize("method", ["sendPhoto", "sendMediaGroup"])
async def test_reply_target_not_found_still_delivers(harness: Harness, method: str) -> None:
    tg = harness.telegram
    tg.fail_next(method, error_code=400, description=REPLY_GONE)
    request = ask(harness, 1, WANX if method == "sendPhoto" else f"{WANX} n=2")
    [job] = await final_jobs(harness)
    assert job.state is JobState.DELIVERED
    [delivered] = deliveries(tg, request)
    assert delivered.method == method and replied_to(delivered) is None
    assert await quota(harness, 1) == (job.images_delivered, 0)
    await serves_another_user(harness)


@pytest.mark.parametrize(
    ("method", "error_code", "description"),
    [
        ("getFile", 400, "Bad Request: invalid file_id"),
        ("getFile", 400, "Bad Request: file is too big"),
        (FakeTelegram.DOWNLOAD, 404, "Not Found"),
        (FakeTelegram.DOWNLOAD, 500, "Internal Server Error"),
    ],
    ids=["getFile-invalid-file_id", "getFile-too-big", "download-404", "download-500"],
)
async def test_file_that_cannot_be_downloaded_is_refused_clearly(
    harness: Harness, method: str, error_code: int, description: str
) -> None:
    tg = harness.telegram
    tg.fail_next(method, error_code=error_code, description=description)
    request = ask(harness, 1, WANX)
    answer = await harness.reply_to(request, timeout=BOUND)
    assert "download" in answer.params["text"] or "too big" in answer.params["text"]
    assert await all_jobs(harness) == []
    assert not harness.emulator.requests
    assert await quota(harness, 1) == (0, 0)
    await serves_another_user(harness)
