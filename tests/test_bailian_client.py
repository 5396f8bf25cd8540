"""BailianClient over real sockets against the loopback DashScope emulator."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from PIL import Image

from bot.bailian import (
    BailianClient,
    EditParameters,
    EditRequest,
    Function,
    Model,
    PollPolicy,
    RetryPolicy,
    TaskStatus,
)
from bot.errors import (
    AccountError,
    ContentRefusedError,
    DashScopeError,
    InvalidRequestError,
    RequestValidationError,
    ResultExpiredError,
    RetryableError,
    ServiceBusyError,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskUnknownError,
)
from bot.offline.dashscope import DashScopeEmulator

API_KEY = "sk-test-0123456789abcdef-SECRET"
FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay=0.01, max_delay=0.05, total_budget=5.0)
# The default policy scaled down to tasks of 0.1-0.2 s.
FAST_POLL = PollPolicy(
    first_delay=0.05,
    lag_per_poll=0.001,
    min_interval=0.02,
    max_dense_interval=0.05,
    max_interval=0.3,
    prior_latency=(0.05, 0.3),
    margin=0.05,
)


def png_data_uri(size: tuple[int, int] = (512, 512), colour: str = "grey") -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


IMAGE = png_data_uri()


def wanx(prompt: str = "add a red hat", **parameters: object) -> EditRequest:
    return EditRequest(
        model=Model.WANX_IMAGE_EDIT,
        prompt=prompt,
        base_image=IMAGE,
        function=Function.DESCRIPTION_EDIT,
        parameters=EditParameters(**parameters),  # type: ignore[arg-type]
    )


@dataclass
class Harness:
    emulator: DashScopeEmulator
    session: aiohttp.ClientSession
    clients: list[BailianClient]

    def client(self, **kwargs: object) -> BailianClient:
        options: dict[str, object] = {
            "api_key": API_KEY,
            "qps": 50,
            "max_tasks": 4,
            "retry": FAST_RETRY,
            "request_timeout": 5.0,
            "poll_policy": FAST_POLL,
        }
        options.update(kwargs)
        client = BailianClient(
            self.session,
            api_root=self.emulator.base_url + "/api/v1",
            **options,  # type: ignore[arg-type]
        )
        self.clients.append(client)
        return client


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    emulator = DashScopeEmulator(api_key=API_KEY, latency=(0.1, 0.2), seed=1)
    await emulator.start()
    session = aiohttp.ClientSession()
    h = Harness(emulator, session, [])
    try:
        yield h
    finally:
        for client in h.clients:
            await client.close()
        await session.close()
        await emulator.close()


async def test_submit_wait_download_end_to_end(harness: Harness) -> None:
    client = harness.client()
    task_id = await client.submit(wanx(n=2))
    outcome = await client.wait(task_id)
    assert outcome.status is TaskStatus.SUCCEEDED
    assert len(outcome.urls) == 2 and outcome.image_count == 2
    submit = harness.emulator.requests_to("submit")[0]
    assert submit.headers["X-DashScope-Async"] == "enable"
    assert submit.headers["Authorization"] == f"Bearer {API_KEY}"
    assert submit.body == {
        "model": "wanx2.1-imageedit",
        "input": {
            "function": "description_edit",
            "prompt": "add a red hat",
            "base_image_url": IMAGE,
        },
        "parameters": {"n": 2},
    }
    data = await client.download(outcome.urls[0])
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
    # The signed query went through intact, and the key did not go to the storage host.
    result = harness.emulator.requests_to("result")[0]
    assert result.status == 200 and "Authorization" not in result.headers
    assert client.poller.stats.polls[task_id] >= 1
    task = harness.emulator.tasks[task_id]
    assert task.polls == client.poller.stats.polls[task_id]


async def test_download_keeps_the_signature_and_maps_403_to_expired(harness: Harness) -> None:
    client = harness.client()
    outcome = await client.wait(await client.submit(wanx()))
    url = outcome.urls[0]
    assert "Signature=" in url and "%" in url  # percent-escapes that re-encoding would alter
    assert await client.download(url)
    with pytest.raises(ResultExpiredError):
        await client.download(url.split("?")[0])
    with pytest.raises(ResultExpiredError):
        await client.download(url.replace("Signature=", "Signature=x"))
    # Downloads are not API calls: they never took a rate-limit grant.
    assert sum(client.limiter.grants_by_priority.values()) == sum(client.stats.requests.values())


async def test_invalid_request_is_refused_before_any_request(harness: Harness) -> None:
    client = harness.client()
    with pytest.raises(RequestValidationError):
        await client.submit(wanx(n=5))
    qwen = EditRequest(model=Model.QWEN_IMAGE_EDIT, prompt="p", base_image=IMAGE)
    with pytest.raises(RequestValidationError):
        await client.submit(qwen)
    with pytest.raises(RequestValidationError):
        await client.edit_sync(wanx())
    assert harness.emulator.requests == []
    assert client.slots.in_use == 0


@pytest.mark.parametrize("code", ["Throttling", "Throttling.RateQuota", "Throttling.BurstRate"])
async def test_throttling_is_retried_then_succeeds(harness: Harness, code: str) -> None:
    client = harness.client()
    harness.emulator.fail_next("submit", 429, code, "slow down", times=2)
    task_id = await client.submit(wanx())
    assert [r.status for r in harness.emulator.requests_to("submit")] == [429, 429, 200]
    assert (await client.wait(task_id)).urls


async def test_allocation_quota_is_an_account_error_without_retry(harness: Harness) -> None:
    client = harness.client()
    harness.emulator.fail_next("submit", 429, "Throttling.AllocationQuota", "quota spent")
    with pytest.raises(AccountError) as info:
        await client.submit(wanx())
    assert info.value.code == "Throttling.AllocationQuota"
    assert len(harness.emulator.requests_to("submit")) == 1
    assert client.slots.in_use == 0


@pytest.mark.parametrize("nested", [False, True])
async def test_server_error_is_retried(harness: Harness, nested: bool) -> None:
    client = harness.client()
    harness.emulator.fail_next("submit", 500, "InternalError", "oops", nested=nested)
    harness.emulator.fail_next("query", 503, "ServiceUnavailable", nested=nested)
    harness.emulator.non_json_next("query", status=502)
    outcome = await client.wait(await client.submit(wanx()))
    assert outcome.urls
    assert [r.status for r in harness.emulator.requests_to("submit")] == [500, 200]
    assert [r.status for r in harness.emulator.requests_to("query")][:2] == [503, 502]


@pytest.mark.parametrize("after_headers", [False, True])
async def test_submit_dropped_after_sending_is_not_repeated(
    harness: Harness, after_headers: bool
) -> None:
    client = harness.client()
    harness.emulator.drop_next("submit", after_headers=after_headers)
    with pytest.raises(SubmitOutcomeUnknownError):
        await client.submit(wanx())
    assert len(harness.emulator.requests_to("submit")) == 1
    assert client.slots.in_use == 0


async def test_submit_timeout_is_not_repeated_but_a_query_timeout_is(harness: Harness) -> None:
    client = harness.client(request_timeout=0.3)
    harness.emulator.slow_next("submit", 0.6)
    with pytest.raises(SubmitOutcomeUnknownError):
        await client.submit(wanx())
    assert len(harness.emulator.requests_to("submit")) == 1
    task_id = await client.submit(wanx())
    harness.emulator.slow_next("query", 0.6)
    outcome = await client.wait(task_id)
    assert outcome.urls
    assert len(harness.emulator.requests_to("query")) >= 2


async def test_retry_after_is_honoured(harness: Harness) -> None:
    client = harness.client()
    harness.emulator.fail_next("submit", 429, "Throttling", retry_after=0.4)
    await client.submit(wanx())
    first, second = harness.emulator.requests_to("submit")
    assert second.received_at - first.received_at >= 0.4


async def test_retry_budget_exhausted_is_service_busy(harness: Harness) -> None:
    client = harness.client()
    harness.emulator.fail_next("submit", 429, "Throttling.RateQuota", times=10)
    with pytest.raises(ServiceBusyError) as info:
        await client.submit(wanx())
    assert info.value.code == "Throttling.RateQuota"
    assert len(harness.emulator.requests_to("submit")) == FAST_RETRY.max_attempts
    assert client.slots.in_use == 0


async def test_connection_refused_before_sending_is_retried() -> None:
    with socket.socket() as probe:  # a port nobody listens on (yet)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emulator = DashScopeEmulator(api_key=API_KEY, latency=(0.05, 0.05))
    retry = RetryPolicy(max_attempts=50, initial_delay=0.05, max_delay=0.05, total_budget=5.0)
    async with aiohttp.ClientSession() as session:
        client = BailianClient(
            session,
            api_root=f"http://127.0.0.1:{port}/api/v1",
            api_key=API_KEY,
            retry=retry,
            poll_policy=FAST_POLL,
        )
        submit = asyncio.create_task(client.submit(wanx()))
        await asyncio.sleep(0.2)
        assert not submit.done()
        await emulator.start(port=port)
        try:
            task_id = await asyncio.wait_for(submit, 5.0)
            assert len(emulator.requests_to("submit")) == 1
            assert (await client.wait(task_id)).urls
        finally:
            await client.close()
            await emulator.close()


async def test_content_refused_on_submit_and_on_failed_task(harness: Harness) -> None:
    client = harness.client()
    with pytest.raises(ContentRefusedError):
        await client.submit(wanx(prompt=f"a {DashScopeEmulator.CONTENT_TRIGGER} picture"))
    assert len(harness.emulator.requests_to("submit")) == 1
    harness.emulator.script_next_task("failed", code="DataInspectionFailed", message="green")
    with pytest.raises(ContentRefusedError) as info:
        await client.wait(await client.submit(wanx()))
    assert info.value.code == "DataInspectionFailed"


async def test_failed_task_raises_task_failed(harness: Harness) -> None:
    client = harness.client()
    harness.emulator.script_next_task("failed")
    with pytest.raises(TaskFailedError) as info:
        await client.wait(await client.submit(wanx()))
    assert (info.value.code, info.value.message) == (
        "InternalError.Algo",
        "algorithm process error",
    )
    assert client.slots.in_use == 0


async def test_partial_failure(harness: Harness) -> None:
    client = harness.client()
    harness.emulator.script_next_task(
        "partial", code="InternalError.Timeout", message="late", failed_images=1
    )
    outcome = await client.wait(await client.submit(wanx(n=3)))
    assert len(outcome.urls) == 2 and outcome.image_count == 2
    assert [(f.code, f.message) for f in outcome.failures] == [("InternalError.Timeout", "late")]


async def test_unknown_task(harness: Harness) -> None:
    client = harness.client()
    harness.emulator.script_next_task("unknown")
    with pytest.raises(TaskUnknownError):
        await client.wait(await client.submit(wanx()))
    with pytest.raises(TaskUnknownError):
        await client.wait("no-such-task")
    assert client.slots.in_use == 0


async def test_cancel_a_pending_task(harness: Harness) -> None:
    emulator = DashScopeEmulator(api_key=API_KEY, latency=(5.0, 5.0))
    await emulator.start()
    try:
        client = BailianClient(
            harness.session,
            api_root=emulator.base_url + "/api/v1",
            api_key=API_KEY,
            retry=FAST_RETRY,
            poll_policy=FAST_POLL,
        )
        harness.clients.append(client)
        task_id = await client.submit(wanx())
        await client.cancel(task_id)
        assert (await client.query(task_id)).status is TaskStatus.CANCELED
        with pytest.raises(TaskFailedError):
            await client.wait(task_id)
        with pytest.raises(InvalidRequestError):  # only PENDING tasks can be canceled
            await client.cancel(task_id)
    finally:
        await emulator.close()


async def test_resuming_a_task_submitted_by_another_process(harness: Harness) -> None:
    first = harness.client()
    task_id = await first.submit(wanx())
    await first.close()  # the old process is gone; the task lives on at the service
    second = harness.client(max_tasks=1)
    outcome = await second.wait(task_id)
    assert outcome.urls and second.slots.in_use == 0
    assert second.slots.max_in_use == 1


async def test_slot_waiters_are_served_in_fifo_order(harness: Harness) -> None:
    client = harness.client(max_tasks=1)

    async def job(number: int) -> int:
        outcome = await client.wait(await client.submit(wanx(prompt=f"job {number}")))
        assert outcome.urls
        return number

    jobs = []
    for number in range(5):
        jobs.append(asyncio.create_task(job(number)))
        await asyncio.sleep(0)  # arrival order = number
    assert await asyncio.gather(*jobs) == list(range(5))
    prompts = [r.body["input"]["prompt"] for r in harness.emulator.requests_to("submit")]  # type: ignore[index]
    assert prompts == [f"job {n}" for n in range(5)]
    assert harness.emulator.max_tasks_in_progress() == 1


async def test_qwen_edit_sync(harness: Harness) -> None:
    client = harness.client()
    request = EditRequest(
        model=Model.QWEN_IMAGE_EDIT, prompt="make it blue", base_image=IMAGE, negative_prompt="x"
    )
    outcome = await client.edit_sync(request)
    assert len(outcome.urls) == 1 and outcome.image_count == 1
    assert await client.download(outcome.urls[0])
    call = harness.emulator.requests_to("qwen")[0]
    assert "X-DashScope-Async" not in call.headers
    harness.emulator.drop_next("qwen")
    with pytest.raises(SubmitOutcomeUnknownError):
        await client.edit_sync(request)
    assert len(harness.emulator.requests_to("qwen")) == 2
    harness.emulator.fail_next("qwen", 500, "InternalError")
    assert (await client.edit_sync(request)).urls


async def test_the_key_never_appears_in_exception_text_or_logs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = harness.client(request_timeout=0.2)
    raised: list[BaseException] = []

    async def collect(action: Callable[[], object]) -> None:
        try:
            await action()  # type: ignore[misc]
        except DashScopeError as exc:
            raised.append(exc)

    harness.emulator.drop_next("submit")
    await collect(lambda: client.submit(wanx()))
    harness.emulator.slow_next("submit", 0.5)
    await collect(lambda: client.submit(wanx()))
    harness.emulator.fail_next("query", 500, "InternalError", times=10)
    await collect(lambda: client.query("t"))
    harness.emulator.fail_next("submit", 400, "InvalidParameter", f"echo {API_KEY}")
    await collect(lambda: client.submit(wanx()))
    wrong = harness.client(api_key=API_KEY + "-wrong")
    await collect(lambda: wrong.submit(wanx()))
    assert len(raised) == 5
    for exc in raised:
        chain: BaseException | None = exc
        while chain is not None:
            assert API_KEY not in str(chain) and API_KEY not in repr(chain)
            chain = chain.__cause__ or chain.__context__
    assert caplog.records  # the retries and give-ups were logged...
    assert API_KEY not in caplog.text  # ...without the key
    assert isinstance(raised[3], InvalidRequestError)
    assert isinstance(raised[4], AccountError)


async def test_poll_errors_end_the_wait_with_service_busy_past_the_patience(
    harness: Harness,
) -> None:
    client = harness.client(task_patience=0.3)
    task_id = await client.submit(wanx())
    harness.emulator.outage(60)
    with pytest.raises(ServiceBusyError):
        await client.wait(task_id)
    assert client.slots.in_use == 0
    assert isinstance(ServiceBusyError("x"), RetryableError)


async def test_poll_errors_within_the_patience_are_polled_through(harness: Harness) -> None:
    """A task the service ran is not given up for an outage: the waiter is told once, and the
    outcome comes after the outage."""
    client = harness.client()
    task_id = await client.submit(wanx())
    harness.emulator.outage(1.0)
    told: list[str] = []

    async def on_trouble() -> None:
        told.append(task_id)

    outcome = await client.wait(task_id, on_trouble=on_trouble)
    assert outcome.urls
    assert told == [task_id]
    assert client.slots.in_use == 0


async def test_non_json_answers(harness: Harness) -> None:
    client = harness.client()
    harness.emulator.non_json_next("submit", status=502)  # a gateway refused: safe to retry
    task_id = await client.submit(wanx())
    assert [r.status for r in harness.emulator.requests_to("submit")] == [502, 200]
    assert (await client.wait(task_id)).urls
    harness.emulator.non_json_next("submit", status=200)  # "created", but unreadable
    with pytest.raises(SubmitOutcomeUnknownError):
        await client.submit(wanx())
    assert len(harness.emulator.requests_to("submit")) == 3


async def test_query_returns_any_status_without_raising(harness: Harness) -> None:
    client = harness.client()
    harness.emulator.script_next_task("failed", code="InternalError.Algo", message="m")
    task_id = await client.submit(wanx())
    first = await client.query(task_id)
    assert first.status in (TaskStatus.PENDING, TaskStatus.RUNNING)
    assert (await client.query("no-such-task")).status is TaskStatus.UNKNOWN
    with pytest.raises(TaskFailedError):
        await client.wait(task_id)
    final = await client.query(task_id)
    assert (final.status, final.code, final.message) == (
        TaskStatus.FAILED,
        "InternalError.Algo",
        "m",
    )


async def test_download_refuses_oversized_results(harness: Harness) -> None:
    client = harness.client()
    outcome = await client.wait(await client.submit(wanx()))
    with pytest.raises(DashScopeError) as info:
        await client.download(outcome.urls[0], max_bytes=100)
    assert info.value.code == "ResultTooLarge"
    assert len(harness.emulator.requests_to("result")) == 1  # not retried
