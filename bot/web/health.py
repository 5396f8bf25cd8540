"""/healthz, /readyz and /metrics on the bot's own web server.

/healthz answers 200 while the process serves HTTP at all (a container's liveness); /readyz
answers 200 only when every readiness check passes (the store answers; on the leader, the one
instance that talks to DashScope, DashScope is reachable), else 503 naming the failing check,
for a load balancer or an orchestrator. Its body also says the instance's role.
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
        self, *, checks: Mapping[str, Check], metrics: Callable[[], Awaitable[bytes]],
        leader_checks: Mapping[str, Check] | None = None,
        role: Callable[[], str] = lambda: "leader",
    ) -> None:
        self._checks = dict(checks)
        self._leader_checks = dict(leader_checks or {})
        self._role = role
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
        role = self._role()
        checks = {**self._checks, **(self._leader_checks if role == "leader" else {})}
        results = dict(zip(checks, await asyncio.gather(
            *(_run(check) for check in checks.values())
        ), strict=True))
        ready = all(result == "ok" for result in results.values())
        if not ready:
            logger.warning("not ready: %s", results)
        return web.json_response({"ok": ready, "role": role, "checks": results},
                                 status=200 if ready else 503)

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
