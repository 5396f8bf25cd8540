"""Turns DashScope answers into :class:`TaskOutcome` values or errors of :mod:`bot.errors`.

This is the ONE place where service codes and HTTP statuses become exception classes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from bot.bailian.models import ImageFailure, TaskOutcome, TaskStatus
from bot.errors import (
    AccountError,
    ContentRefusedError,
    DashScopeError,
    InvalidRequestError,
    ResultExpiredError,
    RetryableError,
    TaskFailedError,
    TaskUnknownError,
)

# Codes the service uses when content inspection refuses an input or an output. Any other code
# mentioning "DataInspection" is treated the same (the service has several spellings).
CONTENT_CODES = frozenset(
    {
        "DataInspectionFailed",
        "InternalError.Algo.DataInspectionFailed",
        "InvalidParameter.DataInspection",
        "IPInfringementSuspect",
    }
)
ACCOUNT_CODES = frozenset({"InvalidApiKey", "Arrearage", "Throttling.AllocationQuota"})

# Our own codes for failures that never reached a service answer.
CODE_TIMEOUT = "RequestTimeout"
CODE_CONNECTION = "ConnectionError"
CODE_BAD_RESPONSE = "BadResponse"

_SNIPPET_CHARS = 200


def is_content_code(code: str) -> bool:
    """True for every code meaning "content inspection refused this"."""
    return code in CONTENT_CODES or "DataInspection" in code or code.startswith("IPInfringement")


def error_for(
    code: str,
    message: str = "",
    *,
    status: int | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> DashScopeError:
    """The exception for a service error code (and HTTP status, when the code says too little)."""
    # Order matters: "InvalidParameter.DataInspection" and "InternalError.Algo.DataInspection..."
    # are content refusals, "Throttling.AllocationQuota" is an account problem, not throttling.
    if is_content_code(code):
        return ContentRefusedError(code, message, status=status, request_id=request_id)
    if code in ACCOUNT_CODES or code.startswith("AccessDenied"):
        return AccountError(code, message, status=status, request_id=request_id)
    if code.startswith(("InvalidParameter", "InvalidURL")):
        return InvalidRequestError(code, message, status=status, request_id=request_id)
    if code.startswith(("Throttling", "InternalError")):
        return RetryableError(
            code, message, status=status, request_id=request_id, retry_after=retry_after
        )
    if status is not None:
        if status in (408, 429) or status >= 500:
            return RetryableError(
                code, message, status=status, request_id=request_id, retry_after=retry_after
            )
        if status in (401, 403):
            return AccountError(code, message, status=status, request_id=request_id)
        if 400 <= status < 500:
            return InvalidRequestError(code, message, status=status, request_id=request_id)
    return DashScopeError(code, message, status=status, request_id=request_id)


def timeout_error(what: str) -> RetryableError:
    """A request that got no answer in time."""
    return RetryableError(CODE_TIMEOUT, f"{what} timed out")


def connection_error(what: str, exc: BaseException) -> RetryableError:
    """A connection that failed or dropped; the message names the exception class only."""
    # str(exc) of aiohttp errors can hold the URL and (for proxies) headers: keep it out.
    return RetryableError(CODE_CONNECTION, f"{what}: {type(exc).__name__}")


def download_error(status: int) -> DashScopeError:
    """The exception for a failed result download (the signed OSS URL, not the API)."""
    if status in (403, 404):
        return ResultExpiredError(
            "ResultExpired", "the result URL is expired or gone", status=status
        )
    if status in (408, 429) or status >= 500:
        return RetryableError("DownloadFailed", "result download failed", status=status)
    return DashScopeError("DownloadFailed", "result download failed", status=status)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - (time.time() if now is None else now)


def decode_json(text: str) -> object | None:
    """The JSON value of a body, or None when it is not JSON."""
    try:
        value: object = json.loads(text)
    except ValueError:
        return None
    return value


def error_from_body(status: int, text: str, *, retry_after: float | None = None) -> DashScopeError:
    """The exception for a non-2xx answer: flat, nested ``{"error": {...}}`` or non-JSON body."""
    body = decode_json(text)
    if not isinstance(body, dict):
        snippet = " ".join(text.split())[:_SNIPPET_CHARS]
        return error_for(
            CODE_BAD_RESPONSE,
            f"non-JSON body: {snippet}",
            status=status,
            retry_after=retry_after,
        )
    request_id = _str_or_none(body.get("request_id"))
    source = body.get("error") if isinstance(body.get("error"), dict) else body
    assert isinstance(source, dict)
    code = _str_or_none(source.get("code")) or f"HTTP{status}"
    message = _str_or_none(source.get("message")) or ""
    request_id = request_id or _str_or_none(source.get("request_id"))
    return error_for(code, message, status=status, request_id=request_id, retry_after=retry_after)


def parse_created(body: object) -> str:
    """The task id of a "task created" answer."""
    output = _output(body)
    task_id = output.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise DashScopeError(CODE_BAD_RESPONSE, "task created without a task_id")
    return task_id


def parse_task(body: object) -> TaskOutcome:
    """A task query answer (any status) as a :class:`TaskOutcome`; does not raise for FAILED."""
    output = _output(body)
    assert isinstance(body, dict)
    raw_status = output.get("task_status")
    try:
        status = TaskStatus(str(raw_status))
    except ValueError:
        raise DashScopeError(CODE_BAD_RESPONSE, f"unknown task_status {raw_status!r}") from None
    urls: list[str] = []
    failures: list[ImageFailure] = []
    results = output.get("results")
    if isinstance(results, list):
        for item in results:
            if not isinstance(item, dict):
                continue
            url = item.get("url")
            if isinstance(url, str) and url:
                urls.append(url)
            else:
                failures.append(
                    ImageFailure(
                        code=_str_or_none(item.get("code")) or "Unknown",
                        message=_str_or_none(item.get("message")) or "",
                    )
                )
    return TaskOutcome(
        task_id=_str_or_none(output.get("task_id")),
        status=status,
        urls=tuple(urls),
        failures=tuple(failures),
        image_count=_image_count(body, default=len(urls)),
        request_id=_str_or_none(body.get("request_id")),
        code=_str_or_none(output.get("code")) or "",
        message=_str_or_none(output.get("message")) or "",
    )


def parse_qwen(body: object) -> TaskOutcome:
    """A qwen-image-edit (synchronous) answer: image URLs from output.choices[].message.content."""
    output = _output(body)
    assert isinstance(body, dict)
    urls: list[str] = []
    choices = output.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            message = choice.get("message") if isinstance(choice, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list):
                continue
            for part in content:
                image = part.get("image") if isinstance(part, dict) else None
                if isinstance(image, str) and image:
                    urls.append(image)
    return TaskOutcome(
        task_id=None,
        status=TaskStatus.SUCCEEDED if urls else TaskStatus.FAILED,
        urls=tuple(urls),
        image_count=_image_count(body, default=len(urls)),
        request_id=_str_or_none(body.get("request_id")),
        code="" if urls else "NoImage",
        message="" if urls else "the answer holds no image",
    )


def raise_for_outcome(outcome: TaskOutcome) -> TaskOutcome:
    """Return an outcome that has at least one image; raise the matching error otherwise."""
    request_id = outcome.request_id
    if outcome.status is TaskStatus.UNKNOWN:
        raise TaskUnknownError(
            "UNKNOWN", "the service does not know this task (expired?)", request_id=request_id
        )
    if outcome.status is TaskStatus.SUCCEEDED and outcome.urls:
        return outcome
    if not outcome.status.is_final:
        raise DashScopeError(CODE_BAD_RESPONSE, f"task still {outcome.status.value}")
    code, message = outcome.code, outcome.message
    if outcome.status is TaskStatus.SUCCEEDED:  # every image failed
        codes = [failure.code for failure in outcome.failures]
        if codes and all(is_content_code(c) for c in codes):
            first = outcome.failures[0]
            raise ContentRefusedError(first.code, first.message, request_id=request_id)
        code = codes[0] if codes else "NoImage"
        message = outcome.failures[0].message if outcome.failures else "no image came out"
    elif outcome.status is TaskStatus.CANCELED:
        code = code or "Canceled"
    if is_content_code(code):
        raise ContentRefusedError(code, message, request_id=request_id)
    raise TaskFailedError(code or "TaskFailed", message, request_id=request_id)


def _output(body: object) -> dict[str, object]:
    if not isinstance(body, dict) or not isinstance(body.get("output"), dict):
        raise DashScopeError(CODE_BAD_RESPONSE, "answer without an output object")
    output = body["output"]
    assert isinstance(output, dict)
    return output


def _image_count(body: dict[str, object], *, default: int) -> int:
    usage = body.get("usage")
    if isinstance(usage, dict):
        count = usage.get("image_count")
        if isinstance(count, int) and not isinstance(count, bool):
            return count
    return default


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
