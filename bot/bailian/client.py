"""The DashScope client: submit, wait, query, cancel, qwen calls and result downloads.

One ``aiohttp.ClientSession`` is passed in and reused. Every API call goes through the rate
limiter; wanx tasks also hold an in-progress slot from submit until the poller sees them end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import aiohttp
import yarl

from bot.bailian.limits import Priority, RateLimiter, SlotQueue
from bot.bailian.models import EditRequest, Model, TaskOutcome
from bot.bailian.poller import Poller, PollPolicy
from bot.bailian.responses import (
    CODE_BAD_RESPONSE,
    connection_error,
    decode_json,
    download_error,
    error_from_body,
    parse_created,
    parse_qwen,
    parse_retry_after,
    parse_task,
    raise_for_outcome,
    timeout_error,
)
from bot.bailian.retry import DEFAULT_RETRY_POLICY, RetryPolicy, call_with_retries
from bot.bailian.validation import set_parameters, validate_request
from bot.errors import (
    DashScopeError,
    RequestValidationError,
    RetryableError,
    SubmitOutcomeUnknownError,
)
from bot.metrics import Metrics

log = logging.getLogger(__name__)

SUBMIT_PATH = "/services/aigc/image2image/image-synthesis"
QWEN_PATH = "/services/aigc/multimodal-generation/generation"
TASK_PATH = "/tasks/{task_id}"
CANCEL_PATH = "/tasks/{task_id}/cancel"

# Connecting is separate from waiting for the answer: a connect that times out never sent
# anything, so even a submit may be retried after it.
CONNECT_TIMEOUT = 10.0
# Longest wait for one answer (connect included).
REQUEST_TIMEOUT = 60.0
DOWNLOAD_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ApiRequest:
    """One request to the DashScope API, as the adapter sends and counts it.

    ``once`` marks a request that must not be repeated once it may have reached the service
    (submit, qwen): then a lost answer raises SubmitOutcomeUnknownError. Repeating it could run
    and bill the task twice, and with its id unknown we could not even poll the first one; the
    caller refunds the user instead.
    """

    method: str
    path: str
    endpoint: str  # its name in the stats and metrics
    priority: Priority
    body: dict[str, object] | None = None
    once: bool = False
    async_: bool = False  # X-DashScope-Async: enable


@dataclass
class ClientStats:
    """Counters for tests and benchmarks."""

    requests: Counter[str] = field(default_factory=Counter)  # attempts per endpoint
    submitted: int = 0
    downloads: int = 0


def build_wanx_body(request: EditRequest) -> dict[str, object]:
    """The JSON body of a wanx2.1-imageedit submit: only the parameters that are set."""
    assert request.function is not None
    input_: dict[str, object] = {
        "function": request.function.value,
        "prompt": request.prompt,
        "base_image_url": request.base_image,
    }
    if request.mask_image is not None:
        input_["mask_image_url"] = request.mask_image
    body: dict[str, object] = {"model": request.model.value, "input": input_}
    parameters = set_parameters(request.parameters)
    if parameters:
        body["parameters"] = parameters
    return body


def build_qwen_body(request: EditRequest) -> dict[str, object]:
    """The JSON body of a qwen-image-edit call: one user message with [image, text]."""
    content: list[dict[str, str]] = [{"image": request.base_image}, {"text": request.prompt}]
    body: dict[str, object] = {
        "model": request.model.value,
        "input": {"messages": [{"role": "user", "content": content}]},
    }
    parameters: dict[str, object] = {}
    if request.negative_prompt is not None:
        parameters["negative_prompt"] = request.negative_prompt
    if request.parameters.watermark is not None:
        parameters["watermark"] = request.parameters.watermark
    if parameters:
        body["parameters"] = parameters
    return body


def _with_patience(policy: PollPolicy, patience: float | None) -> PollPolicy:
    return policy if patience is None else replace(policy, patience=patience)


async def _courtesy(telling: Awaitable[None], what: str) -> None:
    """Telling the caller something is a courtesy: it must never stop the work."""
    try:
        await telling
    except Exception:
        log.exception("could not tell about %s", what)


class BailianClient:
    """Talks to DashScope within the configured QPS and in-progress limits."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_root: str,
        api_key: str,
        qps: float = 10,
        max_tasks: int = 2,
        poll_interval: float = 2.0,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        request_timeout: float = REQUEST_TIMEOUT,
        poll_policy: PollPolicy | None = None,
        task_patience: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._session = session
        self._api_root = api_root.rstrip("/")
        self._api_key = api_key
        self._retry = retry
        self._timeout = aiohttp.ClientTimeout(
            total=request_timeout, sock_connect=min(CONNECT_TIMEOUT, request_timeout)
        )
        self.limiter = RateLimiter(qps)
        self.slots = SlotQueue(max_tasks)
        self.poller = Poller(
            self._poll_query,
            on_end=self._on_task_end,
            policy=_with_patience(poll_policy or PollPolicy(first_delay=poll_interval),
                                  task_patience),
            contended=lambda: self.slots.waiting > 0,
            on_detected=self._metrics.detection_lag,
        )
        self.stats = ClientStats()
        self._slot_holders: set[str] = set()

    # --- the public API ------------------------------------------------------------------------

    async def submit(
        self, request: EditRequest, *,
        on_wait: Callable[[int], Awaitable[None]] | None = None,
        on_slot: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """Validate, wait for a slot and the QPS budget, create the task; returns its id.

        So the caller can say where the request is: ``on_wait(ahead)`` is awaited if the slot
        must be waited for (``ahead``: submits and resumed tasks in line before it), ``on_slot()``
        once the slot is granted. What they raise is logged, never passed on.
        """
        if request.model is not Model.WANX_IMAGE_EDIT:
            raise RequestValidationError("model", "submit() takes wanx2.1-imageedit requests")
        validate_request(request)
        body = build_wanx_body(request)
        await self.slots.acquire(
            None if on_wait is None
            else lambda ahead: _courtesy(on_wait(ahead), "the wait for a slot")
        )
        try:
            if on_slot is not None:
                await _courtesy(on_slot(), "the granted slot")
            task_id, sent_at = await call_with_retries(
                lambda: self._submit_once(body), self._retry, what="submit"
            )
        except BaseException:
            # A SubmitOutcomeUnknownError also frees the slot: if the task does run, the
            # service's own limit answers a 429 that we retry, so nothing is lost.
            self.slots.release()
            raise
        self.stats.submitted += 1
        self._slot_holders.add(task_id)
        self.poller.track(task_id, started_at=sent_at)
        log.info("submitted task %s", task_id)
        return task_id

    async def wait(
        self, task_id: str, *, on_trouble: Callable[[], Awaitable[None]] | None = None
    ) -> TaskOutcome:
        """The task's outcome once it ended; raises when no image came out.

        Through an outage the task is polled on (see :mod:`bot.bailian.poller`); ``on_trouble``
        is awaited once when that starts, so the caller can say why it takes long.
        """
        if not self.poller.is_tracking(task_id):
            # Not ours (a restarted bot resuming it): it counts against the in-progress cap.
            await self.slots.acquire()
            if self.poller.is_tracking(task_id):  # another waiter started it meanwhile
                self.slots.release()
            else:
                self._slot_holders.add(task_id)
                self.poller.track(task_id, first_delay=0.0)
        future = self.poller.track(task_id)
        watcher = None
        if on_trouble is not None:
            watcher = asyncio.create_task(self._tell_trouble(task_id, on_trouble))
        try:
            # shield: a waiter giving up must not stop the polling that frees the slot.
            outcome = await asyncio.shield(future)
        finally:
            if watcher is not None:
                watcher.cancel()
            if future.done():
                self.poller.forget(task_id)
        return raise_for_outcome(outcome)

    async def _tell_trouble(
        self, task_id: str, on_trouble: Callable[[], Awaitable[None]]
    ) -> None:
        await self.poller.trouble(task_id).wait()
        try:
            await on_trouble()
        except Exception:  # telling is a courtesy: it must never stop the wait
            log.exception("task %s: could not tell about the delay", task_id)

    async def query(self, task_id: str) -> TaskOutcome:
        """One status query (retried on transient errors), any status."""
        return await call_with_retries(
            lambda: self._query_once(task_id, Priority.QUERY), self._retry, what="query"
        )

    async def cancel(self, task_id: str) -> None:
        """Ask the service to cancel a task (only PENDING tasks can be)."""
        path = CANCEL_PATH.format(task_id=task_id)
        await call_with_retries(
            lambda: self._call(ApiRequest("POST", path, "cancel", Priority.QUERY, body={})),
            self._retry,
            what="cancel",
        )

    async def edit_sync(self, request: EditRequest) -> TaskOutcome:
        """One qwen-image-edit call; returns the outcome with its image URL(s)."""
        if request.model is not Model.QWEN_IMAGE_EDIT:
            raise RequestValidationError("model", "edit_sync() takes qwen-image-edit requests")
        validate_request(request)
        body = build_qwen_body(request)
        # Same rule as submit: the call may have run (and been billed) when its answer is lost,
        # and there is no task id to ask about it, so it is not repeated after sending.
        answer = await call_with_retries(
            lambda: self._call(ApiRequest("POST", QWEN_PATH, "qwen", Priority.SUBMIT, body=body,
                                          once=True)),
            self._retry,
            what="qwen",
        )
        return raise_for_outcome(parse_qwen(answer))

    async def download(self, url: str, *, max_bytes: int = 50 * 1024 * 1024) -> bytes:
        """Fetch a result image; the signed query string is sent exactly as received."""
        return await call_with_retries(
            lambda: self._download_once(url, max_bytes), self._retry, what="download"
        )

    async def reachable(self) -> None:
        """Raise unless DashScope answers HTTP at all (any status: no key is sent, nothing
        billed); for /readyz."""
        async with self._session.get(
            self._api_root, timeout=aiohttp.ClientTimeout(total=CONNECT_TIMEOUT)
        ) as response:
            await response.read()

    async def close(self) -> None:
        """Stop polling; the session belongs to its owner and stays open."""
        await self.poller.close()
        self.limiter.close()

    # --- internals -----------------------------------------------------------------------------

    def _on_task_end(self, task_id: str) -> None:
        if task_id in self._slot_holders:
            self._slot_holders.discard(task_id)
            self.slots.release()

    async def _submit_once(self, body: dict[str, object]) -> tuple[str, float]:
        answer, sent_at = await self._call_timed(ApiRequest(
            "POST", SUBMIT_PATH, "submit", Priority.SUBMIT, body=body, once=True, async_=True
        ))
        try:
            return parse_created(answer), sent_at
        except DashScopeError as exc:
            # A 200 we cannot read may still have created the task.
            raise SubmitOutcomeUnknownError(exc.code, exc.message, status=200) from exc

    async def _query_once(self, task_id: str, priority: Priority) -> TaskOutcome:
        answer = await self._call(
            ApiRequest("GET", TASK_PATH.format(task_id=task_id), "query", priority))
        return parse_task(answer)

    async def _poll_query(self, task_id: str) -> TaskOutcome:
        return await call_with_retries(
            lambda: self._query_once(task_id, Priority.POLL), self._retry, what="poll"
        )

    async def _call(self, request: ApiRequest) -> object:
        answer, _ = await self._call_timed(request)
        return answer

    async def _call_timed(self, request: ApiRequest) -> tuple[object, float]:
        """One API request, counted in the metrics with its error code if it fails."""
        try:
            return await self._send(request)
        except DashScopeError as exc:
            self._metrics.dashscope_error(exc.code)
            raise

    async def _send(self, request: ApiRequest) -> tuple[object, float]:
        """One API request; returns the JSON answer and the time it was sent (see
        :class:`ApiRequest` for ``once``)."""
        endpoint, once = request.endpoint, request.once
        headers = {"Authorization": f"Bearer {self._api_key}"}
        if request.async_:
            headers["X-DashScope-Async"] = "enable"
        try:
            # The grant is held until the answer is in: however late this request leaves a busy
            # event loop, the service cannot count more than the cap in any of its windows.
            async with self.limiter.request(request.priority):
                self.stats.requests[endpoint] += 1
                self._metrics.dashscope_request(endpoint)
                sent_at = time.monotonic()
                async with self._session.request(
                    request.method, self._api_root + request.path, json=request.body,
                    headers=headers,
                    timeout=self._timeout,
                ) as response:
                    status = response.status
                    retry_after = parse_retry_after(response.headers)
                    text = await response.text()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Failed while connecting: nothing was sent, so any request may be retried.
            raise connection_error(endpoint, exc) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            if once:
                raise SubmitOutcomeUnknownError(
                    "OutcomeUnknown",
                    f"{endpoint}: no answer after sending ({type(exc).__name__}); not repeated",
                ) from exc
            if isinstance(exc, TimeoutError):
                raise timeout_error(endpoint) from exc
            raise connection_error(endpoint, exc) from exc
        if status >= 300:
            # A proxy or the service echoing our headers must not carry the key into a log.
            text = text.replace(self._api_key, "***")
            raise error_from_body(status, text, retry_after=retry_after)
        answer = decode_json(text)
        if not isinstance(answer, dict):
            if once:
                raise SubmitOutcomeUnknownError(
                    CODE_BAD_RESPONSE, f"{endpoint}: unreadable answer", status=status
                )
            raise RetryableError(CODE_BAD_RESPONSE, f"{endpoint}: unreadable answer")
        return answer, sent_at

    async def _download_once(self, url: str, max_bytes: int) -> bytes:
        # encoded=True: the Signature must reach OSS byte for byte; re-quoting breaks it.
        # No Authorization header: the URL is signed, and the key must not go to a third host.
        self.stats.downloads += 1
        try:
            async with self._session.get(
                yarl.URL(url, encoded=True), timeout=self._timeout
            ) as response:
                if response.status != 200:
                    raise download_error(response.status)
                if (response.content_length or 0) > max_bytes:
                    raise DashScopeError("ResultTooLarge", f"more than {max_bytes} bytes")
                data = bytearray()
                async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise DashScopeError("ResultTooLarge", f"more than {max_bytes} bytes")
                return bytes(data)
        except TimeoutError as exc:
            raise timeout_error("download") from exc
        except aiohttp.ClientError as exc:
            raise connection_error("download", exc) from exc
