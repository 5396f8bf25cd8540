"""Webhook mode: Telegram POSTs each update to WEBHOOK_URL's path on the bot's own web server.

Why not PTB's ``run_webhook``: it brings its own tornado server, a second listener next to the
aiohttp one that serves the mask page, health and metrics. The route here checks the secret
Telegram sends with every update (``setWebhook``'s ``secret_token``) in constant time, reads at
most ``MAX_UPDATE_BYTES``, and puts the update on the Application's queue: the same path a
polled update takes. Answering 200 only after the update is queued is what makes Telegram retry
an update the process never took.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# An update is a few KB (a message with entities, a callback query); photos come as file ids.
MAX_UPDATE_BYTES = 1024 * 1024

UpdateSink = Callable[[dict[str, Any]], Awaitable[None]]


def webhook_path(url: str) -> str:
    """The path of WEBHOOK_URL, where updates are accepted ("/" when it has none)."""
    return urlsplit(url).path or "/"


class WebhookReceiver:
    """The one route that accepts updates: WEBHOOK_URL's path, with the right secret."""

    def __init__(self, *, url: str, secret: str, sink: UpdateSink) -> None:
        self.path = webhook_path(url)
        self._secret = secret.encode()
        self._sink = sink

    def route(self) -> web.RouteDef:
        return web.post(self.path, self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            logger.warning("webhook request from %s without the right secret: refused",
                           request.remote)
            return web.Response(status=403, text="Forbidden")
        if (request.content_length or 0) > MAX_UPDATE_BYTES:
            return web.Response(status=413, text="Request Entity Too Large")
        try:
            body = await request.content.read(MAX_UPDATE_BYTES + 1)
            if len(body) > MAX_UPDATE_BYTES:
                return web.Response(status=413, text="Request Entity Too Large")
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            logger.warning("webhook request with a body that is not JSON: refused")
            return web.Response(status=400, text="Bad Request")
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            logger.warning("webhook request that is not an update: refused")
            return web.Response(status=400, text="Bad Request")
        await self._sink(payload)
        return web.Response(text="OK")
