"""/healthz, /readyz and /metrics on the bot's own web server.

/healthz answers 200 while the process serves HTTP at all (a container's liveness); /readyz
answers 200 only when every readiness check passes (the store answers, DashScope is
reachable), else 503 naming the failing check, for a load balancer or an orchestrator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.metrics import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

# A check that has not answered within this many seconds counts as failed.
CHECK_TIMEOUT = 5.0

Check = Callable[[], Awaitable[None]]  # raises when not ready


class HealthRoutes:
    """The three routes; ``checks`` by name, ``metrics`` renders the exposition text."""

    def __init__(
        self, *, checks: Mapping[str, Check], metrics: Callable[[], Awaitable[bytes]]
    ) -> None:
        self._checks = dict(checks)
        self._metrics = metrics

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, request: web.Request) -> web.Response:
        results = dict(zip(self._checks, await asyncio.gather(
            *(_run(check) for check in self._checks.values())
        ), strict=True))
        ready = all(result == "ok" for result in results.values())
        if not ready:
            logger.warning("not ready: %s", results)
        return web.json_response({"ok": ready, "checks": results}, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        body = await self._metrics()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _run(check: Check) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"
