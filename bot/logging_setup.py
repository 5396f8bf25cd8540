"""Logging, set up once, with every secret masked wherever it would appear."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

MASK = "***"
# Passed with ``extra=`` where a record concerns one job, person or DashScope task; the JSON
# format gives each its own field.
CONTEXT_FIELDS = ("job_id", "user_id", "task_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SecretMaskingFilter(logging.Filter):
    """Replaces each secret in a record's rendered message and traceback with ``***``.

    Installed on handlers (not loggers) so it sees records from every library's logger.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True


def job_fields(job: object) -> dict[str, object]:
    """``extra=`` for a record about one job: its id, its person, its DashScope task."""
    return {name: getattr(job, attr) for name, attr in
            (("job_id", "id"), ("user_id", "user_id"), ("task_id", "task_id"))}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields a record
    has, and the traceback; every string masked again (the filter masks the message only)."""

    def __init__(self, masking: SecretMaskingFilter) -> None:
        super().__init__()
        self._masking = masking

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value if isinstance(value, int | float) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        masked = {key: self._masking.mask(value) if isinstance(value, str) else value
                  for key, value in entry.items()}
        return json.dumps(masked, ensure_ascii=False)


def setup_logging(level: str, secrets: Iterable[str], log_format: str = "text") -> None:
    """Configure the root logger once: one stream handler with the masking filter, writing
    text lines or (``log_format="json"``) JSON objects."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bailian_bot", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    masking = SecretMaskingFilter(secrets)
    handler.setFormatter(
        JsonFormatter(masking) if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(masking)
    handler._bailian_bot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
