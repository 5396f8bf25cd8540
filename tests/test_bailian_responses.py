"""Every documented response shape and the one code -> exception mapping."""

from __future__ import annotations

import json

import pytest

from bot.bailian import (
    TaskStatus,
    error_for,
    error_from_body,
    parse_created,
    parse_qwen,
    parse_task,
)
from bot.bailian.models import ImageFailure, TaskOutcome
from bot.bailian.responses import parse_retry_after, raise_for_outcome
from bot.errors import (
    AccountError,
    ContentRefusedError,
    DashScopeError,
    InvalidRequestError,
    RetryableError,
    ServiceBusyError,
    TaskFailedError,
    TaskUnknownError,
)

SUCCEEDED = {
    "request_id": "r-1",
    "output": {
        "task_id": "t-1",
        "task_status": "SUCCEEDED",
        "submit_time": "2025-02-21 17:56:31.786",
        "scheduled_time": "2025-02-21 17:56:31.821",
        "end_time": "2025-02-21 17:56:42.530",
        "results": [{"url": "https://oss/a.png?Expires=1&Signature=x%2By"}],
        "task_metrics": {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0},
    },
    "usage": {"image_count": 1},
}


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InvalidParameter", 400, InvalidRequestError),
        ("InvalidParameter.Foo", 400, InvalidRequestError),
        ("InvalidURL", 400, InvalidRequestError),
        ("DataInspectionFailed", 400, ContentRefusedError),
        ("InternalError.Algo.DataInspectionFailed", 400, ContentRefusedError),
        ("InvalidParameter.DataInspection", 400, ContentRefusedError),
        ("IPInfringementSuspect", 400, ContentRefusedError),
        ("Output.DataInspectionFailed", 400, ContentRefusedError),
        ("InvalidApiKey", 401, AccountError),
        ("AccessDenied", 403, AccountError),
        ("AccessDenied.Unpurchased", 403, AccountError),
        ("Arrearage", 400, AccountError),
        ("Throttling.AllocationQuota", 429, AccountError),
        ("Throttling", 429, RetryableError),
        ("Throttling.RateQuota", 429, RetryableError),
        ("Throttling.BurstRate", 429, RetryableError),
        ("InternalError", 500, RetryableError),
        ("InternalError.Algo", 500, RetryableError),
        ("InternalError.Timeout", 500, RetryableError),
        ("SomethingNew", 503, RetryableError),
        ("SomethingNew", 504, RetryableError),
        ("SomethingNew", 400, InvalidRequestError),
        ("SomethingNew", 401, AccountError),
    ],
)
def test_error_codes_map_to_one_exception_class_each(
    code: str, status: int, expected: type[DashScopeError]
) -> None:
    error = error_for(code, "why", status=status, request_id="r")
    assert type(error) is expected
    assert (error.code, error.message, error.status, error.request_id) == (
        code,
        "why",
        status,
        "r",
    )


def test_flat_error_body() -> None:
    body = json.dumps({"code": "Throttling.RateQuota", "message": "slow down", "request_id": "r9"})
    error = error_from_body(429, body, retry_after=2.0)
    assert isinstance(error, RetryableError) and not isinstance(error, ServiceBusyError)
    assert (error.code, error.message, error.request_id, error.retry_after) == (
        "Throttling.RateQuota",
        "slow down",
        "r9",
        2.0,
    )


def test_nested_error_body() -> None:
    body = json.dumps(
        {"error": {"code": "InvalidApiKey", "message": "bad key"}, "request_id": "r"}
    )
    error = error_from_body(401, body)
    assert isinstance(error, AccountError)
    assert (error.code, error.message, error.request_id) == ("InvalidApiKey", "bad key", "r")


@pytest.mark.parametrize(
    ("status", "expected"), [(502, RetryableError), (404, InvalidRequestError)]
)
def test_non_json_error_body_maps_by_status(status: int, expected: type[Exception]) -> None:
    error = error_from_body(status, "<html><body>Bad   Gateway</body></html>")
    assert type(error) is expected
    assert error.status == status and "Bad Gateway" in error.message


def test_created() -> None:
    body = {"output": {"task_status": "PENDING", "task_id": "abc"}, "request_id": "r"}
    assert parse_created(body) == "abc"
    with pytest.raises(DashScopeError):
        parse_created({"output": {"task_status": "PENDING"}})
    with pytest.raises(DashScopeError):
        parse_created(["not", "an", "object"])


@pytest.mark.parametrize("status", ["PENDING", "RUNNING"])
def test_in_progress(status: str) -> None:
    outcome = parse_task({"output": {"task_id": "t", "task_status": status}, "request_id": "r"})
    assert outcome == TaskOutcome(task_id="t", status=TaskStatus(status), request_id="r")
    assert not outcome.status.is_final


def test_succeeded_keeps_the_url_untouched() -> None:
    outcome = parse_task(SUCCEEDED)
    assert outcome.status is TaskStatus.SUCCEEDED
    assert outcome.urls == ("https://oss/a.png?Expires=1&Signature=x%2By",)
    assert (outcome.image_count, outcome.failures, outcome.request_id) == (1, (), "r-1")
    assert raise_for_outcome(outcome) is outcome


def test_partial_failure() -> None:
    body = json.loads(json.dumps(SUCCEEDED))
    body["output"]["results"] = [
        {"url": "https://oss/0.png"},
        {"code": "InternalError.Timeout", "message": "took too long"},
    ]
    body["output"]["task_metrics"] = {"TOTAL": 2, "SUCCEEDED": 1, "FAILED": 1}
    outcome = raise_for_outcome(parse_task(body))
    assert outcome.urls == ("https://oss/0.png",)
    assert outcome.failures == (ImageFailure("InternalError.Timeout", "took too long"),)
    assert outcome.image_count == 1


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["InternalError.Timeout"], TaskFailedError),
        (["DataInspectionFailed", "DataInspectionFailed"], ContentRefusedError),
    ],
)
def test_succeeded_without_any_image_raises(codes: list[str], expected: type[Exception]) -> None:
    body = json.loads(json.dumps(SUCCEEDED))
    body["output"]["results"] = [{"code": c, "message": "m"} for c in codes]
    body["usage"]["image_count"] = 0
    with pytest.raises(expected):
        raise_for_outcome(parse_task(body))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InternalError.Algo", TaskFailedError),
        ("DataInspectionFailed", ContentRefusedError),
        ("InternalError.Algo.DataInspectionFailed", ContentRefusedError),
    ],
)
def test_failed_task_on_http_200(code: str, expected: type[DashScopeError]) -> None:
    body = {
        "request_id": "r",
        "output": {
            "task_id": "t",
            "task_status": "FAILED",
            "code": code,
            "message": "algorithm process error",
        },
    }
    outcome = parse_task(body)
    assert (outcome.status, outcome.code) == (TaskStatus.FAILED, code)
    with pytest.raises(expected) as info:
        raise_for_outcome(outcome)
    assert type(info.value) is expected
    assert info.value.code == code and info.value.message == "algorithm process error"


def test_unknown_and_canceled() -> None:
    unknown = parse_task({"output": {"task_id": "t", "task_status": "UNKNOWN"}})
    with pytest.raises(TaskUnknownError):
        raise_for_outcome(unknown)
    canceled = parse_task({"output": {"task_id": "t", "task_status": "CANCELED"}})
    with pytest.raises(TaskFailedError) as info:
        raise_for_outcome(canceled)
    assert info.value.code == "Canceled"


def test_unknown_status_string_is_a_bad_response() -> None:
    with pytest.raises(DashScopeError, match="BadResponse"):
        parse_task({"output": {"task_status": "EXPLODED"}})


def test_qwen_answer() -> None:
    body = {
        "output": {
            "choices": [
                {
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": [{"image": "https://x/q.png"}]},
                }
            ]
        },
        "usage": {"width": 1248, "height": 832, "image_count": 1},
        "request_id": "q",
    }
    outcome = parse_qwen(body)
    assert (outcome.urls, outcome.image_count, outcome.task_id) == (("https://x/q.png",), 1, None)
    with pytest.raises(TaskFailedError):
        raise_for_outcome(parse_qwen({"output": {"choices": []}}))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("3", 3.0),
        ("0.5", 0.5),
        ("soon", None),
        ("Thu, 01 Jan 1970 00:00:10 GMT", 5.0),
    ],
)
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert parse_retry_after(headers, now=5.0) == expected
