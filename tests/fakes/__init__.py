"""Loopback fakes of the services the bot talks to, for end-to-end tests."""

from tests.fakes.telegram import (
    ApiCall,
    BotApiError,
    FakeTelegram,
    RawRequest,
    UploadedFile,
)

__all__ = ["ApiCall", "BotApiError", "FakeTelegram", "RawRequest", "UploadedFile"]
