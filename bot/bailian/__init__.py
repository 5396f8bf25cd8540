"""Alibaba Cloud Bailian (DashScope) image-edit adapter."""

from bot.bailian.client import BailianClient, ClientStats, build_qwen_body, build_wanx_body
from bot.bailian.limits import Priority, RateLimiter, SlotQueue
from bot.bailian.models import (
    EditParameters,
    EditRequest,
    Function,
    ImageFailure,
    Model,
    TaskOutcome,
    TaskStatus,
)
from bot.bailian.poller import LatencyModel, Poller, PollerStats, PollPolicy, next_poll_delay
from bot.bailian.responses import (
    error_for,
    error_from_body,
    is_content_code,
    parse_created,
    parse_qwen,
    parse_task,
    raise_for_outcome,
)
from bot.bailian.retry import (
    DEFAULT_RETRY_POLICY,
    RetryPolicy,
    call_with_retries,
    retry_delay,
)
from bot.bailian.validation import validate_request

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "BailianClient",
    "ClientStats",
    "EditParameters",
    "EditRequest",
    "Function",
    "ImageFailure",
    "LatencyModel",
    "Model",
    "PollPolicy",
    "Poller",
    "PollerStats",
    "Priority",
    "RateLimiter",
    "RetryPolicy",
    "SlotQueue",
    "TaskOutcome",
    "TaskStatus",
    "build_qwen_body",
    "build_wanx_body",
    "call_with_retries",
    "error_for",
    "error_from_body",
    "is_content_code",
    "next_poll_delay",
    "parse_created",
    "parse_qwen",
    "parse_task",
    "raise_for_outcome",
    "retry_delay",
    "validate_request",
]
