"""Leader election among instances sharing one PostgreSQL database.

Exactly one instance at a time may talk to DashScope: the one holding a session-level advisory
lock. The lock is taken on a connection of its own, never on the store's pool: a pooled
connection goes back to the pool and would carry the lock to whoever borrows it next. The lock
lives exactly as long as that connection, so leadership does too: when the connection is lost
(the server restarts, the network breaks) PostgreSQL has already released the lock or will, and
another instance may take it, so this one reports the loss at once and its workers must stop.
A killed leader's socket closes, its backend ends, the lock is free, and a follower's next try
(every ``retry_interval``) takes it: that bounds the failover time.

On SQLite there is nothing to elect: the instance lock (storage/instance_lock.py) already makes
the one process serving a file the only one, so :class:`SoleInstance` leads from the start.
bot/app.py runs the job pipeline in ``on_elected`` and stops it in ``on_lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Protocol

import asyncpg  # type: ignore[import-untyped]  # no stubs; only this module uses it directly

from storage.factory import engine_url, is_sqlite

logger = logging.getLogger(__name__)

# Fixed and arbitrary ("lead" in ASCII); every instance of the bot must use the same key.
LEADER_LOCK_KEY = 0x6C656164
# A follower tries to take the lock this often; with CHECK_INTERVAL it bounds failover.
RETRY_INTERVAL = 2.0
# The leader proves its connection alive this often (a query with a timeout of the same length).
CHECK_INTERVAL = 2.0
CONNECT_TIMEOUT = 5.0

Hook = Callable[[], Awaitable[None]]


class Role(StrEnum):
    LEADER = "leader"
    FOLLOWER = "follower"


def asyncpg_dsn(database_url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, for a ``DATABASE_URL``."""
    url = engine_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _no_op() -> None:
    return None


class Leadership(Protocol):
    """Whether this instance may run the job pipeline; hooks run as that changes."""

    @property
    def role(self) -> Role: ...

    @property
    def is_leader(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def leadership_for(database_url: str, *, on_elected: Hook, on_lost: Hook) -> Leadership:
    """An election on PostgreSQL; the sole instance of an SQLite file leads at once."""
    if is_sqlite(database_url):
        return SoleInstance(on_elected=on_elected, on_lost=on_lost)
    return Election(database_url, on_elected=on_elected, on_lost=on_lost)


class _Hooked:
    """A role, and the hooks that run as it changes."""

    def __init__(self, on_elected: Hook, on_lost: Hook) -> None:
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._role = Role.FOLLOWER

    @property
    def role(self) -> Role:
        return self._role

    @property
    def is_leader(self) -> bool:
        return self._role is Role.LEADER

    async def _step_up(self) -> None:
        self._role = Role.LEADER
        logger.info("elected leader")
        await self._on_elected()

    async def _step_down(self) -> None:
        if self._role is Role.LEADER:
            self._role = Role.FOLLOWER
            await self._on_lost()


class SoleInstance(_Hooked):
    """The one process of an SQLite file (its instance lock held): the leader from start to
    stop."""

    def __init__(self, *, on_elected: Hook = _no_op, on_lost: Hook = _no_op) -> None:
        super().__init__(on_elected, on_lost)

    async def start(self) -> None:
        """Lead at once: ``on_elected`` has run when this returns."""
        if self._role is not Role.LEADER:
            await self._step_up()

    async def stop(self) -> None:
        await self._step_down()


class Election(_Hooked):
    """Campaigns for leadership until stopped; ``on_elected`` and ``on_lost`` alternate."""

    def __init__(
        self,
        database_url: str,
        *,
        on_elected: Hook = _no_op,
        on_lost: Hook = _no_op,
        key: int = LEADER_LOCK_KEY,
        retry_interval: float = RETRY_INTERVAL,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        super().__init__(on_elected, on_lost)
        self._dsn = asyncpg_dsn(database_url)
        self._key = key
        self._retry_interval = retry_interval
        self._check_interval = check_interval
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None

    async def start(self) -> None:
        """Start campaigning in the running loop (``on_elected`` runs once elected)."""
        if self._task is None:
            self._task = asyncio.create_task(self._campaign(), name="leader-election")

    async def stop(self) -> None:
        """Stop campaigning; a leader steps down (``on_lost``) and its lock is released."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._step_down()
        await self._disconnect()

    async def _campaign(self) -> None:
        while True:
            try:
                connection = await self._connect()
                if await connection.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                    await self._lead(connection)
                    continue  # leadership lost: try again at once (the lock may be free)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    TimeoutError) as exc:
                # Never the DSN: it carries the password.
                logger.warning("leader election: database unreachable (%s)", type(exc).__name__)
                await self._give_up_lead()
            except Exception:  # a hook failed (the store down at start): try again, never stop
                logger.exception("leader election: taking the lead failed; trying again")
                await self._give_up_lead()
            await asyncio.sleep(self._retry_interval)

    async def _give_up_lead(self) -> None:
        try:
            await self._step_down()
        except Exception:
            logger.exception("leader election: stepping down failed")
        await self._disconnect()

    async def _lead(self, connection: asyncpg.Connection) -> None:
        """Hold leadership while the lock's connection answers; return when it does not."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await self._step_up()
        try:
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._check_interval)
                if lost.is_set():
                    break
                await connection.fetchval("SELECT 1", timeout=self._check_interval)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            logger.warning("leader's database connection failed (%s)", type(exc).__name__)
        logger.warning("leadership lost: the lock's connection is gone")
        await self._step_down()
        await self._disconnect()

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT)
        return self._connection

    async def _disconnect(self) -> None:
        """Close the lock's connection (which releases the lock if the server still has it)."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), CONNECT_TIMEOUT)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                connection.terminate()
