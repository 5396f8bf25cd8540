"""Logging, set up once, with every secret masked wherever it would appear."""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "***"


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


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    """Configure the root logger once: one stream handler with the masking filter."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bailian_bot", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMaskingFilter(secrets))
    handler._bailian_bot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
