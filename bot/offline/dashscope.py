"""A loopback DashScope emulator: both image-edit models, faults on demand, real PNG results.

It speaks the protocol of ``bailian-image-api.md`` and ``dashscope-facts.md`` over a real socket,
so the adapter, the bot and even the official SDK can be tested against it. Task states follow
the clock (no background loops): PENDING for the first 10 % of a task's drawn latency, RUNNING
until ``due_at``, then the final status. Result images are made with Pillow, lazily, in a thread.

Run it by hand for local development::

    python -m bot.offline.dashscope --port 8089 --latency 1 3
    DASHSCOPE_BASE_URL=http://127.0.0.1:8089 python -m bot ...
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import json
import logging
import os
import random
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

from aiohttp import web
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from bot.bailian.models import Function, Model, TaskStatus
from bot.errors import RequestValidationError

logger = logging.getLogger(__name__)

API_ROOT: Final = "/api/v1"
SUBMIT_PATH: Final = f"{API_ROOT}/services/aigc/image2image/image-synthesis"
QWEN_PATH: Final = f"{API_ROOT}/services/aigc/multimodal-generation/generation"
TASK_PATH: Final = f"{API_ROOT}/tasks/{{task_id}}"
CANCEL_PATH: Final = f"{API_ROOT}/tasks/{{task_id}}/cancel"
RESULT_PATH: Final = "/results/{task_id}/{name}"

API_ENDPOINTS: Final = frozenset({"submit", "query", "cancel", "qwen"})
FAULT_ENDPOINTS: Final = API_ENDPOINTS | {"result", "any"}
OUTCOMES: Final = frozenset({"failed", "partial", "unknown", "canceled"})

MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024
WANX_SIDES: Final = (512, 4096)
QWEN_SIDES: Final = (384, 3072)
PROMPT_MAX: Final = 800
NEGATIVE_PROMPT_MAX: Final = 500
SEED_MAX: Final = 2_147_483_647
INPUT_FORMATS: Final = frozenset({"JPEG", "MPO", "PNG", "BMP", "TIFF", "WEBP"})
PENDING_SHARE: Final = 0.1  # the first 10 % of a task's latency is spent queued
RESULT_TTL: Final = 24 * 3600.0  # result URLs and task ids live 24 h on the real service
# Base64 of a 10 MB base image plus its mask, with room to spare: the 10 MB rule must be what
# refuses a big image, not aiohttp's default 1 MB body limit.
CLIENT_MAX_SIZE: Final = 64 * 1024 * 1024

_DATA_URI = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)
_RESULT_NAME = re.compile(r"(?P<index>\d{1,3})\.png")
_HTML_BODY: Final = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>Tengine</center></body></html>"
)


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator received; ``status`` is filled in once it was answered."""

    method: str
    path: str
    endpoint: str  # "submit" | "query" | "cancel" | "qwen" | "result" | "other"
    headers: dict[str, str]
    body: dict[str, object] | None
    received_at: float  # time.monotonic()
    task_id: str | None
    status: int | None = None  # HTTP status of the answer (None: the answer was cut off)


@dataclass(frozen=True)
class WanxJob:
    """A validated wanx2.1-imageedit request: everything the image transform needs."""

    function: Function
    prompt: str
    base_image: bytes = field(repr=False)
    mask_image: bytes | None = field(default=None, repr=False)
    negative_prompt: str | None = None
    n: int = 1
    seed: int | None = None
    watermark: bool = False
    strength: float = 0.5
    top_scale: float = 1.0
    bottom_scale: float = 1.0
    left_scale: float = 1.0
    right_scale: float = 1.0
    upscale_factor: int = 1
    is_sketch: bool = False


@dataclass(frozen=True)
class QwenJob:
    """A validated qwen-image-edit request."""

    prompt: str
    image: bytes = field(repr=False)
    negative_prompt: str | None = None
    watermark: bool = False


@dataclass
class EmulatedTask:
    """A wanx task; its status is computed from the monotonic clock whenever it is asked."""

    task_id: str
    request: dict[str, object]
    submitted_at: float
    due_at: float
    polls: int = 0
    final_seen_at: float | None = None
    outcome: str = "succeeded"  # "succeeded" or one of OUTCOMES (scripted)
    code: str = ""
    message: str = ""
    failed_images: int = 0
    canceled_at: float | None = None
    submitted_wall: float = field(default_factory=time.time)
    job: WanxJob | None = field(default=None, repr=False)
    seed: int = 0

    @property
    def n(self) -> int:
        return self.job.n if self.job is not None else 1

    @property
    def scheduled_at(self) -> float:
        return self.submitted_at + PENDING_SHARE * (self.due_at - self.submitted_at)

    @property
    def ended_at(self) -> float:
        """When the task stopped occupying a slot (its cancellation, else ``due_at``)."""
        return self.canceled_at if self.canceled_at is not None else self.due_at

    @property
    def good_indices(self) -> range:
        """Indices of the images that come out (a partial failure loses the last ones)."""
        failed = min(self.failed_images, self.n) if self.outcome == "partial" else 0
        return range(self.n - failed)

    @property
    def status(self) -> TaskStatus:
        return self.status_at(time.monotonic())

    def status_at(self, now: float) -> TaskStatus:
        if self.canceled_at is not None and now >= self.canceled_at:
            return TaskStatus.CANCELED
        if now < self.scheduled_at:
            return TaskStatus.PENDING
        if now < self.due_at:
            return TaskStatus.RUNNING
        return {
            "failed": TaskStatus.FAILED,
            "unknown": TaskStatus.UNKNOWN,
            "canceled": TaskStatus.CANCELED,
        }.get(self.outcome, TaskStatus.SUCCEEDED)

    def in_progress_at(self, now: float) -> bool:
        return self.submitted_at <= now < self.ended_at

    def wall_time(self, monotonic_instant: float) -> str:
        """The service's timestamp format for a monotonic instant of this task."""
        wall = self.submitted_wall + (monotonic_instant - self.submitted_at)
        return datetime.fromtimestamp(wall).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


_BODY_KEY: Final = web.RequestKey[dict[str, object] | None]("emulator.body")
_TASK_ID_KEY: Final = web.RequestKey("emulator.task_id", str)


@dataclass(frozen=True)
class _Refusal:
    """An error answer: HTTP status, service code, message."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class _Fault:
    kind: str  # "error" | "drop" | "non_json"
    endpoint: str
    status: int = 500
    code: str = ""
    message: str = ""
    retry_after: float | None = None
    nested: bool = False
    after_headers: bool = False


@dataclass(frozen=True)
class _Delay:
    endpoint: str
    seconds: float


_Q = TypeVar("_Q", _Fault, _Delay)


@dataclass(frozen=True)
class _Script:
    outcome: str
    code: str
    message: str
    failed_images: int


# --- the emulator ------------------------------------------------------------------------------


class DashScopeEmulator:
    """An aiohttp application speaking the DashScope image-edit protocol (both models)."""

    CONTENT_TRIGGER: Final = "BLOCKED-CONTENT"

    def __init__(
        self,
        *,
        api_key: str = "emulator-key",
        latency: tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
        qwen_latency: float = 0.0,
        server_max_tasks: int | None = None,
        server_qps: float | None = None,
        qps_endpoints: Iterable[str] = API_ENDPOINTS,
        result_ttl: float = RESULT_TTL,
    ) -> None:
        low, high = latency
        if not 0 <= low <= high:
            raise ValueError(f"latency must be 0 <= min <= max, got {latency}")
        if server_qps is not None and server_qps <= 0:
            raise ValueError("server_qps must be positive")
        if server_max_tasks is not None and server_max_tasks < 1:
            raise ValueError("server_max_tasks must be at least 1")
        self.api_key = api_key
        self.latency = (low, high)
        self.qwen_latency = qwen_latency
        self.server_max_tasks = server_max_tasks
        self.server_qps = server_qps
        self.qps_endpoints = frozenset(qps_endpoints)
        self.result_ttl = result_ttl
        self.requests: list[RecordedRequest] = []
        self.tasks: dict[str, EmulatedTask] = {}
        self._latency_rng = random.Random(seed)
        # A separate stream for image seeds keeps the latency sequence independent of them.
        self._seed_rng = random.Random(f"images-{seed}")
        self._secret = secrets.token_bytes(32)
        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []
        self._outage_until = 0.0  # monotonic time until which every endpoint answers 503
        self._scripts: deque[_Script] = deque()
        # Bytes to serve instead of rendering: queued for the next tasks, then by task id.
        self._result_scripts: deque[tuple[bytes | None, ...]] = deque()
        self._scripted_results: dict[str, tuple[bytes | None, ...]] = {}
        self._admitted: deque[float] = deque()  # monotonic times of requests let through (QPS)
        self._renders: dict[tuple[str, int], asyncio.Task[bytes]] = {}
        self._qwen_images: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[self._record])
        router = app.router
        router.add_post(SUBMIT_PATH, self._handle_submit, name="submit")
        router.add_post(QWEN_PATH, self._handle_qwen, name="qwen")
        router.add_post(CANCEL_PATH, self._handle_cancel, name="cancel")
        router.add_get(TASK_PATH, self._handle_query, name="query")
        router.add_get(RESULT_PATH, self._handle_result, name="result")
        router.add_route("*", "/{tail:.*}", self._handle_other, name="other")
        app.on_cleanup.append(self._cancel_renders)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on a real socket; port 0 picks a free one (see :attr:`base_url`)."""
        runner = web.AppRunner(self.make_app(), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        self._base_url = f"http://{host}:{bound_port}"

    @property
    def base_url(self) -> str:
        """The root URL without ``/api/v1`` (the bot appends it)."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not started")
        return self._base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DashScopeEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
        await self._cancel_renders(None)

    async def _cancel_renders(self, _app: web.Application | None) -> None:
        pending = [task for task in self._renders.values() if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # --- statistics ----------------------------------------------------------------------------

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [record for record in self.requests if record.endpoint == endpoint]

    def max_requests_in_window(
        self, window: float = 1.0, endpoints: set[str] | None = None
    ) -> int:
        """The most API requests received within any ``window`` seconds (half-open)."""
        wanted = API_ENDPOINTS if endpoints is None else endpoints
        times = sorted(r.received_at for r in self.requests if r.endpoint in wanted)
        best = 0
        first = 0
        for last, instant in enumerate(times):
            while instant - times[first] >= window:
                first += 1
            best = max(best, last - first + 1)
        return best

    def max_tasks_in_progress(self) -> int:
        """The most tasks whose ``[submitted_at, ended_at)`` intervals overlapped."""
        events: list[tuple[float, int]] = []
        for task in self.tasks.values():
            if task.ended_at > task.submitted_at:
                events += [(task.submitted_at, 1), (task.ended_at, -1)]
        events.sort()  # at equal times the end (-1) sorts first: half-open intervals
        best = current = 0
        for _, delta in events:
            current += delta
            best = max(best, current)
        return best

    def tasks_in_progress(self, now: float | None = None) -> int:
        instant = time.monotonic() if now is None else now
        return sum(task.in_progress_at(instant) for task in self.tasks.values())

    # --- fault injection -----------------------------------------------------------------------

    def fail_next(
        self,
        endpoint: str,
        status: int,
        code: str,
        message: str = "",
        *,
        times: int = 1,
        retry_after: float | None = None,
        nested: bool = False,
    ) -> None:
        """Answer the next matching request(s) with an error, without processing them."""
        fault = _Fault(
            "error", _fault_endpoint(endpoint), status, code, message, retry_after, nested
        )
        self._faults += [fault] * times

    def outage(self, seconds: float) -> None:
        """Answer every request to every endpoint (results too) with a 503 for ``seconds``.

        Tasks already accepted keep running meanwhile, as the real service's do.
        """
        self._outage_until = time.monotonic() + seconds

    def slow_next(self, endpoint: str, delay: float, *, times: int = 1) -> None:
        """Process the next matching request(s) normally but hold the answer ``delay`` s."""
        self._delays += [_Delay(_fault_endpoint(endpoint), delay)] * times

    def drop_next(self, endpoint: str, *, times: int = 1, after_headers: bool = False) -> None:
        """Process the next matching request(s), then cut the connection instead of answering.

        The request takes effect (a dropped submit still creates its task): the answer is what
        gets lost. ``after_headers`` sends the status line, headers and part of the body first.
        """
        fault = _Fault("drop", _fault_endpoint(endpoint), after_headers=after_headers)
        self._faults += [fault] * times

    def non_json_next(self, endpoint: str, *, times: int = 1, status: int = 502) -> None:
        """Answer the next matching request(s) with a gateway's HTML page."""
        self._faults += [_Fault("non_json", _fault_endpoint(endpoint), status)] * times

    def script_next_task(
        self,
        outcome: str,
        *,
        code: str = "InternalError.Algo",
        message: str = "algorithm process error",
        failed_images: int = 1,
    ) -> None:
        """Decide how the next accepted wanx task ends: failed, partial, unknown or canceled."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, got {outcome!r}")
        self._scripts.append(_Script(outcome, code, message, failed_images))

    def script_next_results(self, *results: bytes | None) -> None:
        """Serve ``results[i]`` as result ``i`` of the next accepted wanx task, whatever it is
        (a huge picture, a non-image, a truncated PNG); ``None`` renders that one as usual."""
        self._result_scripts.append(results)

    def result_url(
        self, task_id: str, index: int, *, expires: int | None = None, origin: str | None = None
    ) -> str:
        """A signed result URL as the service hands out (``expires``: a unix time)."""
        deadline = int(time.time() + self.result_ttl) if expires is None else expires
        name = f"{index}.png"
        signature = quote(self._sign(task_id, name, deadline), safe="")
        return (
            f"{origin or self.base_url}/results/{task_id}/{name}"
            f"?Expires={deadline}&OSSAccessKeyId=emulator&Signature={signature}"
        )

    # --- plumbing ------------------------------------------------------------------------------

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        raw = await request.read()
        body = _json_object(raw)
        request[_BODY_KEY] = body
        route = request.match_info.route.name
        endpoint = route if route in API_ENDPOINTS | {"result"} else "other"
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            endpoint=endpoint,
            headers=dict(request.headers),
            body=body,
            received_at=time.monotonic(),
            task_id=request.match_info.get("task_id"),
        )
        position = len(self.requests)
        self.requests.append(record)
        response = await handler(request)
        self.requests[position] = replace(
            record,
            status=None if isinstance(response, _DroppedResponse) else response.status,
            task_id=request.get(_TASK_ID_KEY, record.task_id),
        )
        return response

    async def _serve(
        self,
        request: web.Request,
        endpoint: str,
        process: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Apply the queued faults for ``endpoint`` around the real processing."""
        if time.monotonic() < self._outage_until:
            return _fault_response(_Fault(
                "error", endpoint, 503, "ServiceUnavailable", "emulated outage"
            ))
        delay = self._take(self._delays, endpoint)
        fault = self._take(self._faults, endpoint)
        if fault is not None and fault.kind != "drop":
            if delay is not None:
                await asyncio.sleep(delay.seconds)
            return _fault_response(fault)
        response = await process(request)
        if delay is not None:
            await asyncio.sleep(delay.seconds)
        if fault is not None:
            return await _drop(request, after_headers=fault.after_headers)
        return response

    @staticmethod
    def _take(queue: list[_Q], endpoint: str) -> _Q | None:
        for position, item in enumerate(queue):
            if item.endpoint in (endpoint, "any"):
                return queue.pop(position)
        return None

    def _refuse_key(self, request: web.Request) -> _Refusal | None:
        expected = f"Bearer {self.api_key}"
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), expected.encode()):
            return None
        return _Refusal(401, "InvalidApiKey", "Invalid API-key provided.")

    def _throttled(self, now: float) -> bool:
        """Sliding-window QPS limit over the requests let through so far."""
        if self.server_qps is None:
            return False
        window = max(1.0, 1.0 / self.server_qps)
        limit = max(1, round(self.server_qps * window))
        while self._admitted and now - self._admitted[0] >= window:
            self._admitted.popleft()
        if len(self._admitted) >= limit:
            return True
        self._admitted.append(now)
        return False

    def _gate(self, request: web.Request, endpoint: str) -> _Refusal | None:
        """Authentication, then the account's QPS limit: what the gateway checks first."""
        refusal = self._refuse_key(request)
        if refusal is not None:
            return refusal
        if endpoint in self.qps_endpoints and self._throttled(time.monotonic()):
            return _throttling()
        return None

    def _sign(self, task_id: str, name: str, expires: int) -> str:
        message = f"{task_id}/{name}\n{expires}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    # --- handlers ------------------------------------------------------------------------------

    async def _handle_submit(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "submit", self._submit)

    async def _handle_query(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "query", self._query)

    async def _handle_cancel(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "cancel", self._cancel)

    async def _handle_qwen(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "qwen", self._qwen)

    async def _handle_result(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "result", self._result)

    async def _handle_other(self, request: web.Request) -> web.StreamResponse:
        refusal = _Refusal(404, "NotFound", f"no such API: {request.method} {request.path}")
        return _error_response(refusal)

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        refusal = self._refuse_key(request)
        if refusal is None and request.headers.get("X-DashScope-Async", "").lower() != "enable":
            refusal = _Refusal(
                403, "AccessDenied", "current user api does not support synchronous calls"
            )
        if refusal is None and "submit" in self.qps_endpoints:
            refusal = _throttling() if self._throttled(time.monotonic()) else None
        if refusal is not None:
            return _error_response(refusal)
        body = request[_BODY_KEY]
        if body is None:
            return _error_response(_invalid_body())
        parsed = await asyncio.to_thread(parse_wanx_request, body)
        if isinstance(parsed, _Refusal):
            return _error_response(parsed)
        if self._blocked(parsed.prompt, parsed.negative_prompt):
            return _error_response(_content_refusal())
        now = time.monotonic()
        if self.server_max_tasks is not None and (
            self.tasks_in_progress(now) >= self.server_max_tasks
        ):
            return _error_response(_throttling())
        task = self._create_task(body, parsed, now)
        request[_TASK_ID_KEY] = task.task_id
        logger.debug("emulator: task %s %s n=%d", task.task_id, parsed.function, parsed.n)
        return _json(
            {
                "output": {"task_status": TaskStatus.PENDING.value, "task_id": task.task_id},
                "request_id": _request_id(),
            }
        )

    def _create_task(self, body: dict[str, object], job: WanxJob, now: float) -> EmulatedTask:
        latency = self._latency_rng.uniform(*self.latency)
        seed = job.seed if job.seed is not None else self._seed_rng.randrange(SEED_MAX + 1)
        task = EmulatedTask(
            task_id=str(uuid.uuid4()),
            request=body,
            submitted_at=now,
            due_at=now + latency,
            job=job,
            seed=seed,
        )
        if self._scripts:
            script = self._scripts.popleft()
            task.outcome = script.outcome
            task.code = script.code
            task.message = script.message
            task.failed_images = script.failed_images
        if self._result_scripts:
            self._scripted_results[task.task_id] = self._result_scripts.popleft()
        self.tasks[task.task_id] = task
        return task

    async def _query(self, request: web.Request) -> web.StreamResponse:
        refusal = self._gate(request, "query")
        if refusal is not None:
            return _error_response(refusal)
        task_id = request.match_info["task_id"]
        task = self.tasks.get(task_id)
        if task is None:
            output: dict[str, object] = {"task_id": task_id, "task_status": "UNKNOWN"}
            return _json({"request_id": _request_id(), "output": output})
        now = time.monotonic()
        task.polls += 1
        status = task.status_at(now)
        if status.is_final and task.final_seen_at is None:
            task.final_seen_at = now
        if status is TaskStatus.SUCCEEDED:
            for index in task.good_indices:
                self._render(task, index)
        return _json(self._task_body(task, status, now, _origin(request)))

    def _task_body(
        self, task: EmulatedTask, status: TaskStatus, now: float, origin: str
    ) -> dict[str, object]:
        output: dict[str, object] = {"task_id": task.task_id, "task_status": status.value}
        body: dict[str, object] = {"request_id": _request_id(), "output": output}
        if status is TaskStatus.UNKNOWN:
            return body
        output["submit_time"] = task.wall_time(task.submitted_at)
        if status is not TaskStatus.PENDING:
            output["scheduled_time"] = task.wall_time(task.scheduled_at)
        if status.is_final:
            output["end_time"] = task.wall_time(min(task.ended_at, now))
        if status is TaskStatus.SUCCEEDED:
            results: list[dict[str, str]] = []
            good = task.good_indices
            for index in range(task.n):
                if index in good:
                    results.append({"url": self.result_url(task.task_id, index, origin=origin)})
                else:
                    results.append({"code": task.code, "message": task.message})
            output["results"] = results
            output["task_metrics"] = _metrics(task.n, len(good))
            body["usage"] = {"image_count": len(good)}
        elif status is TaskStatus.FAILED:
            output["code"] = task.code
            output["message"] = task.message
            output["task_metrics"] = _metrics(task.n, 0)
        elif status is TaskStatus.RUNNING:
            output["task_metrics"] = {"TOTAL": task.n, "SUCCEEDED": 0, "FAILED": 0}
        return body

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        refusal = self._gate(request, "cancel")
        if refusal is not None:
            return _error_response(refusal)
        task = self.tasks.get(request.match_info["task_id"])
        now = time.monotonic()
        if task is None or task.status_at(now) is not TaskStatus.PENDING:
            return _error_response(
                _Refusal(
                    400,
                    "UnsupportedOperation",
                    "Failed to cancel the task, please confirm if the task exists "
                    "and its status is PENDING.",
                )
            )
        task.canceled_at = now
        return _json({"request_id": _request_id()})

    async def _qwen(self, request: web.Request) -> web.StreamResponse:
        refusal = self._gate(request, "qwen")
        if refusal is None and request.headers.get("X-DashScope-Async", "").lower() == "enable":
            refusal = _Refusal(
                403, "AccessDenied", "current user api does not support asynchronous calls"
            )
        if refusal is not None:
            return _error_response(refusal)
        body = request[_BODY_KEY]
        if body is None:
            return _error_response(_invalid_body())
        parsed = await asyncio.to_thread(parse_qwen_request, body)
        if isinstance(parsed, _Refusal):
            return _error_response(parsed)
        if self._blocked(parsed.prompt, parsed.negative_prompt):
            return _error_response(_content_refusal())
        if self.qwen_latency > 0:
            await asyncio.sleep(self.qwen_latency)
        seed = self._seed_rng.randrange(SEED_MAX + 1)
        png, (width, height) = await asyncio.to_thread(render_qwen, parsed, seed)
        image_id = f"qwen-{uuid.uuid4()}"
        self._qwen_images[image_id] = png
        request[_TASK_ID_KEY] = image_id
        message = {
            "role": "assistant",
            "content": [{"image": self.result_url(image_id, 0, origin=_origin(request))}],
        }
        return _json(
            {
                "output": {"choices": [{"finish_reason": "stop", "message": message}]},
                "usage": {"width": width, "height": height, "image_count": 1},
                "request_id": _request_id(),
            }
        )

    async def _result(self, request: web.Request) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        name = request.match_info["name"]
        expires_text = request.query.get("Expires", "")
        signature = request.query.get("Signature", "")
        if not expires_text.isdigit() or not signature:
            return _oss_error(
                403, "AccessDenied", "Anonymous access is forbidden for this operation."
            )
        expected = self._sign(task_id, name, int(expires_text))
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return _oss_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if int(expires_text) < time.time():
            return _oss_error(403, "AccessDenied", "Request has expired.")
        match = _RESULT_NAME.fullmatch(name)
        png: bytes | None = None
        if match is not None:
            index = int(match["index"])
            if index == 0 and task_id in self._qwen_images:
                png = self._qwen_images[task_id]
            else:
                task = self.tasks.get(task_id)
                if (
                    task is not None
                    and task.status is TaskStatus.SUCCEEDED
                    and index in task.good_indices
                ):
                    png = await self._render(task, index)
        if png is None:
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        return web.Response(body=png, content_type="image/png")

    def _render(self, task: EmulatedTask, index: int) -> asyncio.Task[bytes]:
        """The (lazily started, cached) rendering of one result image, off the event loop."""
        key = (task.task_id, index)
        existing = self._renders.get(key)
        if existing is not None:
            return existing
        if task.job is None:
            raise RuntimeError(f"task {task.task_id} has no job to render")
        scripted = self._scripted_results.get(task.task_id, ())
        given = scripted[index] if index < len(scripted) else None
        rendering = asyncio.ensure_future(
            _given(given) if given is not None
            else asyncio.to_thread(render_wanx, task.job, seed=task.seed, index=index)
        )
        self._renders[key] = rendering
        return rendering

    def _blocked(self, prompt: str, negative_prompt: str | None) -> bool:
        return self.CONTENT_TRIGGER in prompt or self.CONTENT_TRIGGER in (negative_prompt or "")


# --- answers -----------------------------------------------------------------------------------


class _DroppedResponse(web.StreamResponse):
    """Stands for an answer that was cut off (nothing, or only its beginning, was sent)."""


async def _given(data: bytes) -> bytes:
    return data


def _request_id() -> str:
    return str(uuid.uuid4())


def _json(body: Mapping[str, object], status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _error_response(refusal: _Refusal) -> web.Response:
    body = {"code": refusal.code, "message": refusal.message, "request_id": _request_id()}
    return _json(body, status=refusal.status)


def _fault_response(fault: _Fault) -> web.Response:
    if fault.kind == "non_json":
        return web.Response(status=fault.status, text=_HTML_BODY, content_type="text/html")
    if fault.nested:
        body: dict[str, object] = {
            "error": {"code": fault.code, "message": fault.message},
            "request_id": _request_id(),
        }
    else:
        body = {"code": fault.code, "message": fault.message, "request_id": _request_id()}
    response = _json(body, status=fault.status)
    if fault.retry_after is not None:
        seconds = fault.retry_after
        response.headers["Retry-After"] = f"{seconds:g}"
    return response


def _oss_error(status: int, code: str, message: str) -> web.Response:
    """Result downloads are answered by object storage, which speaks XML."""
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{_request_id()}</RequestId></Error>"
    )
    return web.Response(status=status, text=text, content_type="application/xml")


async def _drop(request: web.Request, *, after_headers: bool) -> web.StreamResponse:
    transport = request.transport
    if after_headers and transport is not None:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = 4096
        await response.prepare(request)
        await response.write(b'{"request_id":"')
        await asyncio.sleep(0)
    if transport is not None:
        transport.close()
    return _DroppedResponse()


def _throttling() -> _Refusal:
    return _Refusal(
        429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later."
    )


def _content_refusal() -> _Refusal:
    return _Refusal(400, "DataInspectionFailed", "Input data may contain inappropriate content.")


def _invalid_body() -> _Refusal:
    return _Refusal(400, "InvalidParameter", "body: the request body must be a JSON object")


def _metrics(total: int, succeeded: int) -> dict[str, int]:
    return {"TOTAL": total, "SUCCEEDED": succeeded, "FAILED": total - succeeded}


def _origin(request: web.Request) -> str:
    return str(request.url.origin())


def _fault_endpoint(endpoint: str) -> str:
    if endpoint not in FAULT_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {sorted(FAULT_ENDPOINTS)}, got {endpoint!r}")
    return endpoint


def _json_object(raw: bytes) -> dict[str, object] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


# --- validation (runs in a thread: it decodes images) ------------------------------------------


def parse_wanx_request(body: Mapping[str, object]) -> WanxJob | _Refusal:
    """Validate a wanx2.1-imageedit submission like the service does."""
    try:
        if body.get("model") != Model.WANX_IMAGE_EDIT.value:
            raise RequestValidationError("model", f"Model not exist: {body.get('model')!r}")
        inputs = _section(body, "input", required=True)
        params = _section(body, "parameters", required=False)
        function_name = inputs.get("function")
        if function_name not in {f.value for f in Function}:
            raise RequestValidationError("input.function", f"unsupported {function_name!r}")
        function = Function(str(function_name))
        prompt = _text(inputs, "prompt", "input.prompt", PROMPT_MAX, required=True)
        if not prompt and function is not Function.DESCRIPTION_EDIT_WITH_MASK:
            raise RequestValidationError("input.prompt", "must not be empty")
        negative = _text(inputs, "negative_prompt", "input.negative_prompt", NEGATIVE_PROMPT_MAX)
        negative = negative or _text(
            params, "negative_prompt", "parameters.negative_prompt", NEGATIVE_PROMPT_MAX
        )
        base_uri = _image_uri(inputs, "base_image_url", "input.base_image_url", required=True)
        mask_uri = _image_uri(
            inputs,
            "mask_image_url",
            "input.mask_image_url",
            required=function is Function.DESCRIPTION_EDIT_WITH_MASK,
        )
        for name, uri in (("input.base_image_url", base_uri), ("input.mask_image_url", mask_uri)):
            if uri is not None and not uri.startswith("data:"):
                return _Refusal(400, "InvalidURL", f"{name}: only data URIs in the emulator")
        if base_uri is None:  # _image_uri(required=True) has raised already
            raise RequestValidationError("input.base_image_url", "is required")
        base = _decode_image(base_uri, "input.base_image_url", WANX_SIDES)
        mask: bytes | None = None
        if mask_uri is not None and function is Function.DESCRIPTION_EDIT_WITH_MASK:
            mask = _decode_image(mask_uri, "input.mask_image_url", WANX_SIDES)
            base_size, mask_size = _size(base), _size(mask)
            if base_size != mask_size:
                raise RequestValidationError(
                    "input.mask_image_url",
                    f"mask is {_wxh(mask_size)} but the base image is {_wxh(base_size)}",
                )
        return WanxJob(
            function=function,
            prompt=prompt,
            base_image=base,
            mask_image=mask,
            negative_prompt=negative,
            n=_int(params, "n", 1, 4, default=1),
            seed=_optional_int(params, "seed", 0, SEED_MAX),
            watermark=_bool(params, "watermark"),
            strength=_float(params, "strength", 0.0, 1.0, default=0.5),
            top_scale=_float(params, "top_scale", 1.0, 2.0, default=1.0),
            bottom_scale=_float(params, "bottom_scale", 1.0, 2.0, default=1.0),
            left_scale=_float(params, "left_scale", 1.0, 2.0, default=1.0),
            right_scale=_float(params, "right_scale", 1.0, 2.0, default=1.0),
            upscale_factor=_int(params, "upscale_factor", 1, 4, default=1),
            is_sketch=_bool(params, "is_sketch"),
        )
    except RequestValidationError as exc:
        return _Refusal(400, "InvalidParameter", str(exc))


def parse_qwen_request(body: Mapping[str, object]) -> QwenJob | _Refusal:
    """Validate a qwen-image-edit call like the service does."""
    try:
        if body.get("model") != Model.QWEN_IMAGE_EDIT.value:
            raise RequestValidationError("model", f"Model not exist: {body.get('model')!r}")
        inputs = _section(body, "input", required=True)
        params = _section(body, "parameters", required=False)
        messages = inputs.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestValidationError("input.messages", "must be a non-empty list")
        user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        content = user[-1].get("content") if user else None
        if not isinstance(content, list):
            raise RequestValidationError("input.messages.content", "a user message is required")
        images = [c["image"] for c in content if isinstance(c, dict) and "image" in c]
        texts = [c["text"] for c in content if isinstance(c, dict) and "text" in c]
        if len(images) != 1 or not isinstance(images[0], str):
            raise RequestValidationError(
                "input.messages.content.image", "exactly one image is required"
            )
        if len(texts) != 1 or not isinstance(texts[0], str) or not texts[0]:
            raise RequestValidationError(
                "input.messages.content.text", "exactly one non-empty text is required"
            )
        prompt = texts[0]
        if len(prompt) > PROMPT_MAX:
            raise RequestValidationError(
                "input.messages.content.text", f"longer than {PROMPT_MAX} characters"
            )
        negative = _text(
            params, "negative_prompt", "parameters.negative_prompt", NEGATIVE_PROMPT_MAX
        )
        watermark = _bool(params, "watermark")
        if not images[0].startswith("data:"):
            return _Refusal(
                400, "InvalidURL", "input.messages.content.image: only data URIs in the emulator"
            )
        image = _decode_image(images[0], "input.messages.content.image", QWEN_SIDES)
        return QwenJob(prompt=prompt, image=image, negative_prompt=negative, watermark=watermark)
    except RequestValidationError as exc:
        return _Refusal(400, "InvalidParameter", str(exc))


def _section(body: Mapping[str, object], name: str, *, required: bool) -> dict[str, Any]:
    value = body.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise RequestValidationError(name, "must be a JSON object")
    return value


def _text(
    section: Mapping[str, object], key: str, name: str, limit: int, *, required: bool = False
) -> str:
    value = section.get(key)
    if value is None:
        if required:
            raise RequestValidationError(name, "is required")
        return ""
    if not isinstance(value, str):
        raise RequestValidationError(name, "must be a string")
    if len(value) > limit:
        raise RequestValidationError(name, f"longer than {limit} characters ({len(value)})")
    return value


def _image_uri(
    section: Mapping[str, object], key: str, name: str, *, required: bool
) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        if required:
            raise RequestValidationError(name, "is required")
        return None
    if not isinstance(value, str):
        raise RequestValidationError(name, "must be a string")
    return value


def _decode_image(uri: str, name: str, sides: tuple[int, int]) -> bytes:
    """The bytes of a data URI that holds an image the service would accept."""
    match = _DATA_URI.fullmatch(uri)
    if match is None:
        raise RequestValidationError(name, "malformed data URI (want data:{mime};base64,...)")
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestValidationError(name, "invalid base64 data") from exc
    if len(data) > MAX_IMAGE_BYTES:
        raise RequestValidationError(name, f"image is {len(data)} bytes, over 10 MB")
    low, high = sides
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, size = image.format or "", image.size
            if image_format not in INPUT_FORMATS:
                raise RequestValidationError(name, f"unsupported image format {image_format}")
            # Check the header's size before decoding: a huge image is refused, not inflated.
            if not all(low <= side <= high for side in size):
                raise RequestValidationError(
                    name, f"image is {_wxh(size)}; each side must be {low}..{high} px"
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Under warnings-as-errors Pillow raises its warning from Image.open itself.
        raise RequestValidationError(name, f"image is over {high}x{high} px") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise RequestValidationError(name, "the image cannot be decoded") from exc
    return data


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _int(params: Mapping[str, object], key: str, low: int, high: int, *, default: int) -> int:
    value = _optional_int(params, key, low, high)
    return default if value is None else value


def _optional_int(params: Mapping[str, object], key: str, low: int, high: int) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestValidationError(f"parameters.{key}", "must be an integer")
    if not low <= value <= high:
        raise RequestValidationError(f"parameters.{key}", f"must be in [{low}, {high}]")
    return value


def _float(
    params: Mapping[str, object], key: str, low: float, high: float, *, default: float
) -> float:
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestValidationError(f"parameters.{key}", "must be a number")
    if not low <= value <= high:
        raise RequestValidationError(f"parameters.{key}", f"must be in [{low}, {high}]")
    return float(value)


def _bool(params: Mapping[str, object], key: str) -> bool:
    value = params.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestValidationError(f"parameters.{key}", "must be a boolean")
    return value


# --- result images (pure functions, run in a thread) -------------------------------------------


Transform = Callable[[Image.Image, WanxJob, random.Random], Image.Image]


def render_wanx(job: WanxJob, *, seed: int, index: int) -> bytes:
    """One result image of a wanx job as PNG bytes; ``index`` makes each of the n differ."""
    rng = random.Random(f"{seed}-{index}")
    with Image.open(io.BytesIO(job.base_image)) as opened:
        base = opened.convert("RGB")
    image = _TRANSFORMS[job.function](base, job, rng)
    if job.watermark:
        _stamp_watermark(image)
    return _png(image)


def render_qwen(job: QwenJob, seed: int) -> tuple[bytes, tuple[int, int]]:
    """The qwen-image-edit result (an instruction edit) as PNG bytes and its size."""
    rng = random.Random(f"{seed}-{job.prompt}")
    with Image.open(io.BytesIO(job.image)) as opened:
        base = opened.convert("RGB")
    image = _describe_edit(base, 0.6, rng)
    if job.watermark:
        _stamp_watermark(image)
    return _png(image), image.size


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _random_colour(rng: random.Random, low: int = 0, high: int = 255) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def _vivid_colour(rng: random.Random) -> tuple[int, int, int]:
    """A saturated colour: one channel high, one low, so it is never a grey."""
    channels = [rng.randint(200, 255), rng.randint(0, 60), rng.randint(60, 200)]
    rng.shuffle(channels)
    return (channels[0], channels[1], channels[2])


def _shift_hue(image: Image.Image, amount: int) -> Image.Image:
    hue, saturation, value = image.convert("HSV").split()
    hue = hue.point(lambda h: (h + amount) % 256)
    return Image.merge("HSV", (hue, saturation, value)).convert("RGB")


def _stylize(image: Image.Image, strength: float, rng: random.Random) -> Image.Image:
    bits = max(2, 6 - round(strength * 4))
    styled = ImageOps.posterize(image, bits)
    # Everything scales with strength: 0 stays close to the original, 1 goes furthest.
    styled = _shift_hue(styled, round(rng.randint(30, 90) * (0.2 + 0.8 * strength)))
    tint = Image.new("RGB", image.size, _vivid_colour(rng))
    return Image.blend(styled, tint, 0.15 + 0.3 * strength)


def _stylization_all(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    return _stylize(image, job.strength, rng)


def _stylization_local(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    """Style only a central region, as if the prompt named one object."""
    width, height = image.size
    region = Image.new("L", image.size, 0)
    ImageDraw.Draw(region).ellipse(
        (width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=255
    )
    return Image.composite(_stylize(image, 0.8, rng), image, region)


def _describe_edit(image: Image.Image, strength: float, rng: random.Random) -> Image.Image:
    """Shift the colours and 'add' a seeded object: a visible, prompt-independent change."""
    edited = _shift_hue(image, rng.randint(20, 60))
    edited = Image.blend(
        edited, Image.new("RGB", image.size, _vivid_colour(rng)), 0.1 + 0.3 * strength
    )
    width, height = image.size
    radius = max(4, min(width, height) // 8)
    x = rng.randint(radius, max(radius, width - radius))
    y = rng.randint(radius, max(radius, height - radius))
    ImageDraw.Draw(edited).ellipse(
        (x - radius, y - radius, x + radius, y + radius), fill=_vivid_colour(rng)
    )
    return edited


def _description_edit(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    return _describe_edit(image, job.strength, rng)


def _masked_edit(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    """Repaint only where the mask is white; black (keep) pixels stay byte for byte."""
    if job.mask_image is None:
        return image
    with Image.open(io.BytesIO(job.mask_image)) as opened:
        mask = opened.convert("L").point(lambda v: 255 if v >= 128 else 0)
    paint = Image.new("RGB", image.size, _vivid_colour(rng))
    edited = Image.blend(ImageOps.invert(image), paint, 0.6)
    return Image.composite(edited, image, mask)


def _remove_watermark(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    """A median filter wipes out thin strokes such as overlaid text."""
    cleaned = image.filter(ImageFilter.MedianFilter(5))
    return ImageEnhance.Brightness(cleaned).enhance(1.0 + rng.uniform(-0.02, 0.02))


def _expand(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    """Grow the canvas by the four scales and fill it with the blurred, stretched picture."""
    width, height = image.size
    left = round(width * (job.left_scale - 1))
    right = round(width * (job.right_scale - 1))
    top = round(height * (job.top_scale - 1))
    bottom = round(height * (job.bottom_scale - 1))
    size = (width + left + right, height + top + bottom)
    # Stretch the picture so its edges reach out into the new margins, then blur them.
    fill = image.resize(size, Image.Resampling.BILINEAR)
    fill = fill.filter(ImageFilter.GaussianBlur(max(2, max(size) // 50)))
    fill = Image.blend(fill, Image.new("RGB", size, _random_colour(rng)), 0.08)
    fill.paste(image, (left, top))
    return fill


def _super_resolution(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    width, height = image.size
    factor = job.upscale_factor
    enlarged = image.resize((width * factor, height * factor), Image.Resampling.LANCZOS)
    sharpened = enlarged.filter(ImageFilter.UnsharpMask(radius=2, percent=80))
    return ImageEnhance.Brightness(sharpened).enhance(1.0 + rng.uniform(-0.02, 0.02))


def _colorization(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    """Map grey levels onto a seeded colour ramp (dark -> vivid -> light)."""
    grey = image.convert("L")
    dark = _random_colour(rng, 0, 70)
    light = _random_colour(rng, 190, 255)
    return ImageOps.colorize(grey, black=dark, white=light, mid=_vivid_colour(rng))


def _line_art(image: Image.Image, is_sketch: bool) -> Image.Image:
    """White paper with dark lines: found by edge detection unless the input is a sketch."""
    grey = image.convert("L")
    if is_sketch:
        return grey
    edges = ImageOps.autocontrast(grey.filter(ImageFilter.FIND_EDGES))
    return ImageOps.invert(edges.filter(ImageFilter.MaxFilter(3)))  # bolder strokes


def _doodle(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    lines = _line_art(image, job.is_sketch)
    ink = _random_colour(rng, 0, 60)
    paper = _random_colour(rng, 200, 255)
    return ImageOps.colorize(lines, black=ink, white=paper, mid=_vivid_colour(rng))


def _cartoon(image: Image.Image, job: WanxJob, rng: random.Random) -> Image.Image:
    """Flat colours and dark outlines."""
    flat = ImageOps.posterize(image.filter(ImageFilter.SMOOTH_MORE), 3)
    flat = ImageEnhance.Color(flat).enhance(1.3 + rng.uniform(0.0, 0.4))
    edges = image.convert("L").filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v > 40 else 0)
    return Image.composite(Image.new("RGB", image.size, (20, 20, 20)), flat, edges)


def _stamp_watermark(image: Image.Image) -> None:
    """The service's 'AI generated' mark, bottom right."""
    width, height = image.size
    box = (max(0, width - 90), max(0, height - 30), width - 4, height - 4)
    draw = ImageDraw.Draw(image)
    draw.rectangle(box, fill=(255, 255, 255))
    draw.text((box[0] + 6, box[1] + 6), "AI generated", fill=(0, 0, 0))


_TRANSFORMS: Final[dict[Function, Transform]] = {
    Function.STYLIZATION_ALL: _stylization_all,
    Function.STYLIZATION_LOCAL: _stylization_local,
    Function.DESCRIPTION_EDIT: _description_edit,
    Function.DESCRIPTION_EDIT_WITH_MASK: _masked_edit,
    Function.REMOVE_WATERMARK: _remove_watermark,
    Function.EXPAND: _expand,
    Function.SUPER_RESOLUTION: _super_resolution,
    Function.COLORIZATION: _colorization,
    Function.DOODLE: _doodle,
    Function.CONTROL_CARTOON_FEATURE: _cartoon,
}


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.offline.dashscope",
        description="Serve a loopback DashScope emulator (point DASHSCOPE_BASE_URL at it).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("DASHSCOPE_API_KEY") or "emulator-key",
        help="the key clients must send (default: $DASHSCOPE_API_KEY, else emulator-key)",
    )
    parser.add_argument(
        "--latency",
        nargs=2,
        type=float,
        metavar=("MIN", "MAX"),
        default=(5.0, 15.0),
        help="wanx task run time in seconds, drawn uniformly (default: 5 15, like the service)",
    )
    parser.add_argument("--qwen-latency", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tasks", type=int, default=None, help="enforce tasks in progress")
    parser.add_argument("--qps", type=float, default=None, help="enforce requests per second")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    emulator = DashScopeEmulator(
        api_key=args.api_key,
        latency=(args.latency[0], args.latency[1]),
        seed=args.seed,
        qwen_latency=args.qwen_latency,
        server_max_tasks=args.max_tasks,
        server_qps=args.qps,
    )
    logger.info(
        "DashScope emulator on http://%s:%d (set DASHSCOPE_BASE_URL to it); latency %s..%s s",
        args.host,
        args.port,
        args.latency[0],
        args.latency[1],
    )
    with contextlib.suppress(KeyboardInterrupt):
        web.run_app(emulator.make_app(), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
