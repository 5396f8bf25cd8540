"""Several ``python -m bot`` instances on one PostgreSQL database, behind the fake Bot API.

Each instance is a real process in webhook mode with a web server of its own; the fake Bot API
(bot/offline/bot_api.py) spreads the updates over them round-robin as a load balancer would
(``balance_webhook``). Who leads is read from the outside only: ``GET /readyz``'s ``"role"``
and the "elected leader" log line (bot/leader.py). Shared by tests/test_instances.py and
bench/failover.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from tests.browser import free_port
from tests.harness import bot_process, make_image, replied_to, subprocess_env

SECRET = "cluster-Secret_0123456789abcdef"
# Every instance sets the same URL, as behind a real balancer; the fake only uses its path.
WEBHOOK_URL = "https://bot.example/telegram/hook"
START_TIMEOUT = 30.0
ELECTED = "elected leader"
# A /readyz that has not answered within this long counts as no answer.
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2.0)


@dataclass
class Instance:
    """One ``python -m bot`` process: its web port, its log, and when it was killed."""

    name: str
    port: int
    log: Path
    process: asyncio.subprocess.Process | None = None
    killed_at: float | None = None  # time.monotonic() of the SIGKILL

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def elections(self) -> int:
        """How often this instance logged that it became the leader."""
        return self.output().count(ELECTED)

    async def readyz(self, session: aiohttp.ClientSession) -> tuple[int, dict[str, object]]:
        """(HTTP status, JSON body) of ``/readyz``; (0, {}) when nothing answers."""
        try:
            async with session.get(f"{self.base}/readyz", timeout=PROBE_TIMEOUT) as response:
                body = await response.json(content_type=None)
                return response.status, body if isinstance(body, dict) else {}
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return 0, {}

    async def role(self, session: aiohttp.ClientSession) -> str | None:
        """``/readyz``'s role ("leader" or "follower"), None when absent or unanswered."""
        _, body = await self.readyz(session)
        role = body.get("role")
        return role if isinstance(role, str) else None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lock released but by the server noticing the socket."""
        assert self.process is not None and self.process.returncode is None
        self.process.kill()
        self.killed_at = time.monotonic()


@dataclass
class Cluster:
    telegram: FakeTelegram
    emulator: DashScopeEmulator
    instances: list[Instance]
    session: aiohttp.ClientSession
    started_at: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> list[Instance]:
        return [instance for instance in self.instances if instance.alive]

    def logs(self) -> str:
        """Every instance's output, each under its name (for assertion messages)."""
        return "\n".join(f"----- {i.name} (port {i.port}) -----\n{i.output()[-6000:]}"
                         for i in self.instances)

    async def roles(self) -> dict[str, str | None]:
        alive = self.alive
        found = await asyncio.gather(*(instance.role(self.session) for instance in alive))
        return {instance.name: role for instance, role in zip(alive, found, strict=True)}

    async def leader(self, timeout: float = 15.0) -> Instance:
        """The one live instance whose /readyz says it leads (waits up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            roles = await self.roles()
            leaders = [name for name, role in roles.items() if role == "leader"]
            if len(leaders) == 1:
                return next(i for i in self.instances if i.name == leaders[0])
            if time.monotonic() > deadline:
                raise AssertionError(f"no single leader within {timeout:g} s: roles {roles}\n"
                                     + self.logs())
            await asyncio.sleep(0.05)

    def elections(self) -> dict[str, int]:
        """How often each live instance has logged "elected leader" so far."""
        return {instance.name: instance.elections() for instance in self.alive}

    async def next_election(
        self, since: float, before: dict[str, int], *, timeout: float = 30.0,
        ask_readyz: bool = True,
    ) -> tuple[Instance, float]:
        """The first live instance to log "elected leader" again after ``before`` (counts from
        :meth:`elections`), or with ``ask_readyz`` to say so on /readyz, and the seconds from
        ``since`` (``time.monotonic()``) until that was seen."""
        deadline = since + timeout
        while True:
            candidates = self.alive
            now = time.monotonic()
            for instance in candidates:
                if instance.elections() > before.get(instance.name, 0):
                    return instance, now - since
            if ask_readyz:
                roles = await asyncio.gather(*(i.role(self.session) for i in candidates))
                now = time.monotonic()
                for instance, role in zip(candidates, roles, strict=True):
                    if role == "leader":
                        return instance, now - since
            if now > deadline:
                raise AssertionError(f"no leader elected within {timeout:g} s\n" + self.logs())
            await asyncio.sleep(0.02)


def instance_env(
    telegram: FakeTelegram, emulator: DashScopeEmulator, database_url: str, folder: Path,
    port: int, **extra: str,
) -> dict[str, str]:
    """One instance's environment: its own WEB_PORT, the shared URL, secret and database."""
    return subprocess_env(
        telegram, emulator, folder / "unused.sqlite3",
        DATABASE_URL=database_url, WEBHOOK_URL=WEBHOOK_URL, WEBHOOK_SECRET=SECRET,
        WEB_HOST="127.0.0.1", WEB_PORT=str(port), DASHSCOPE_MAX_TASKS="2",
        # Quota is not what these runs are about; each person sends a handful at most.
        MONTHLY_QUOTA="50", CHEAP_REQUEST_BURST="1000",
    ) | extra


@asynccontextmanager
async def running_cluster(
    telegram: FakeTelegram, emulator: DashScopeEmulator, database_url: str, folder: Path,
    *, size: int = 3, **extra: str,
) -> AsyncIterator[Cluster]:
    """``size`` instances started one after the other, each serving its webhook; stopped with
    SIGTERM at the end (those still running)."""
    instances = [Instance(f"bot{n}", free_port(), folder / f"bot{n}.log") for n in range(size)]
    telegram.balance_webhook([instance.base for instance in instances])
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        cluster = Cluster(telegram, emulator, instances, session)
        for instance in instances:
            env = instance_env(telegram, emulator, database_url, folder, instance.port,
                               **({"INSTANCE_COUNT": str(size)} | extra))
            instance.process = await stack.enter_async_context(
                bot_process(env, instance.log, graceful=True))
        await _serving(cluster, size)
        yield cluster


async def _serving(cluster: Cluster, size: int) -> None:
    """Every instance started (logged "bot @…") and answering /healthz."""
    deadline = time.monotonic() + START_TIMEOUT
    waiting = list(cluster.instances)
    while waiting:
        for instance in list(waiting):
            assert instance.alive, f"{instance.name} exited\n{cluster.logs()}"
            if "bot @" not in instance.output():
                continue
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with cluster.session.get(f"{instance.base}/healthz",
                                               timeout=PROBE_TIMEOUT) as response:
                    if response.status == 200:
                        waiting.remove(instance)
        if time.monotonic() > deadline:
            raise AssertionError(f"not serving within {START_TIMEOUT:g} s: "
                                 f"{[i.name for i in waiting]}\n{cluster.logs()}")
        await asyncio.sleep(0.05)
    assert len(cluster.telegram.calls_to("setWebhook")) >= size


def send_photos(telegram: FakeTelegram, first_user: int, people: int) -> list[dict[str, Any]]:
    """One ``/upscale 2`` photo from each of ``people`` people (one user id each)."""
    photo = make_image(320, 240)
    requests = []
    for n in range(people):
        person = telegram.user(first_user + n, f"Person{n}")
        requests.append(telegram.send_photo(person, telegram.private_chat(person), photo,
                                            "/upscale 2"))
    return requests


def results_for(
    telegram: FakeTelegram, request: dict[str, Any], method: str = "sendPhoto"
) -> int:
    """Results sent in reply to ``request``: photos, or with ``method="sendDocument"`` the
    full-size files that follow them."""
    chat_id = request["chat"]["id"]
    return sum(
        1 for call in telegram.calls_to(method)
        if int(call.params["chat_id"]) == chat_id and replied_to(call) == request["message_id"]
    )
