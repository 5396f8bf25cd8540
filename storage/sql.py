"""The store, once for SQLite and PostgreSQL: SQLAlchemy Core over aiosqlite or asyncpg.

The SQL is written once, as ``text()`` with named binds, in the dialect both backends share
(``ON CONFLICT``, ``RETURNING``, ``lower()``); the few differences (connecting, beginning a
transaction) live in :func:`_engine_for` and :meth:`SqlStore._transaction`.

Every write is one transaction that holds the database's single writer slot from its first
statement, so a read-then-write (check the quota, then reserve; check the budget, then spend)
cannot race another coroutine, another store or another process:
- SQLite: ``BEGIN IMMEDIATE`` (SQLAlchemy's documented aiosqlite recipe: the driver's own BEGIN
  is disabled and ours emitted), waiting up to busy_timeout; one connection per store, used by
  one coroutine at a time (an asyncio lock).
- PostgreSQL: ``pg_advisory_xact_lock(WRITE_LOCK)`` as the first statement, in READ COMMITTED:
  writers queue on the lock exactly as SQLite writers queue on the file, and each statement
  after it sees every earlier writer's commit. Chosen over SERIALIZABLE-and-retry because a
  transaction here is a ``with`` block that cannot be replayed, and over row locks because the
  spend cap reads every user's jobs. The bot writes a few rows a second, so one writer at a time
  costs nothing; reads run without it, in REPEATABLE READ (one snapshot, like SQLite's BEGIN).
Times are stored as UTC ISO text; months are computed in the configured zone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, bindparam, event, text
from sqlalchemy.engine import URL, Connection, Result, RowMapping, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from bot.errors import (
    IllegalTransitionError,
    JobNotFoundError,
    QuotaExceededError,
    StarPaymentNotFoundError,
    StoreUnavailableError,
    UnknownUserError,
)
from storage.migrate import upgrade
from storage.models import (
    ALLOWED_TRANSITIONS,
    UPDATE_MEMORY,
    AlbumPart,
    AuditEntry,
    Conversation,
    ConversationKind,
    Job,
    JobCreation,
    JobState,
    NewJob,
    NewStarPayment,
    QuotaStatus,
    StarCredit,
    StarPayment,
    StarPaymentState,
    StarRefund,
    StarRevenue,
    TopUser,
    UsageLine,
    UsageReport,
    User,
    next_month_start,
    placeholder_name,
)
from storage.pricing import FREE_IMAGES_PER_MONTH, check_budget, estimated_cost

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 10_000
# The advisory lock every PostgreSQL write transaction takes first (any fixed bigint; this one
# spells "bot-wr").
WRITE_LOCK = 0x626F742D7772

Clock = Callable[[], datetime]
T = TypeVar("T")

# Picks out one conversation; binds kind, chat_id, key.
_CONVERSATION_KEY = "kind = :kind AND chat_id = :chat_id AND key = :key"
# The tables whose rows carry the Telegram update that caused them (a UNIQUE update_id).
_UPDATE_KEYED_TABLES = ("jobs", "audit")
_UNFINISHED = (JobState.QUEUED.value, JobState.SUBMITTED.value, JobState.SUCCEEDED.value)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _to_text(moment: datetime) -> str:
    # Fixed width (always microseconds) so that text order is time order.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_text(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _user(row: RowMapping) -> User:
    return User(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        language=row["language"],
        telegram_language=row["telegram_language"],
        banned=bool(row["banned"]),
        monthly_limit=row["monthly_limit"],
        created_at=_from_text(row["created_at"]),
        last_seen_at=_from_text(row["last_seen_at"]),
    )


def _job(row: RowMapping) -> Job:
    return Job(
        id=row["id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        request_message_id=row["request_message_id"],
        status_message_id=row["status_message_id"],
        command=row["command"],
        model=row["model"],
        function=row["function"],
        spec_json=row["spec_json"],
        input_file_id=row["input_file_id"],
        mask_file_id=row["mask_file_id"],
        task_id=row["task_id"],
        state=JobState(row["state"]),
        quota_month=row["quota_month"],
        images_requested=row["images_requested"],
        images_delivered=row["images_delivered"],
        reservation_open=bool(row["reservation_open"]),
        result_urls=tuple(json.loads(row["result_urls"])),
        result_file_ids=tuple(json.loads(row["result_file_ids"])),
        error_code=row["error_code"],
        error_message=row["error_message"],
        attempts=row["attempts"],
        created_at=_from_text(row["created_at"]),
        updated_at=_from_text(row["updated_at"]),
        update_id=row["update_id"],
        album_id=row["album_id"],
        mask_png=row["mask_png"],
    )


def _star_payment(row: RowMapping) -> StarPayment:
    return StarPayment(
        id=row["id"],
        user_id=row["user_id"],
        pack_images=row["pack_images"],
        stars=row["stars"],
        telegram_payment_charge_id=row["telegram_payment_charge_id"],
        provider_payment_charge_id=row["provider_payment_charge_id"],
        payload=row["payload"],
        state=StarPaymentState(row["state"]),
        month=row["month"],
        created_at=_from_text(row["created_at"]),
        refunded_at=None if row["refunded_at"] is None else _from_text(row["refunded_at"]),
        images_removed=row["images_removed"],
    )


def _conversation(row: RowMapping) -> Conversation:
    return Conversation(
        kind=ConversationKind(row["kind"]),
        chat_id=row["chat_id"],
        key=row["key"],
        user_id=row["user_id"],
        payload=row["payload"],
        created_at=_from_text(row["created_at"]),
        expires_at=_from_text(row["expires_at"]),
    )


def _audit(row: RowMapping) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        admin_id=row["admin_id"],
        target_user_id=row["target_user_id"],
        action=row["action"],
        value=row["value"],
        created_at=_from_text(row["created_at"]),
        update_id=row["update_id"],
    )


def fair_order(queued: Iterable[Job]) -> list[Job]:
    """Round robin across users; ``queued`` must be oldest first.

    Users take turns in the order of their oldest queued job; each turn serves a user's next
    oldest job, so one user's burst cannot starve everyone queued behind it.
    """
    per_user: dict[int, list[Job]] = {}  # dicts keep insertion order: oldest job's user first
    for job in queued:
        per_user.setdefault(job.user_id, []).append(job)
    ordered: list[Job] = []
    depth = max((len(jobs) for jobs in per_user.values()), default=0)
    for turn in range(depth):
        ordered.extend(jobs[turn] for jobs in per_user.values() if turn < len(jobs))
    return ordered


class _Tx:
    """Statements inside one transaction of :class:`SqlStore`."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._pending: asyncio.Future[Any] | None = None

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Await a step of the transaction so that cancelling the caller does not interrupt it.

        A cancellation that lands inside SQLAlchemy makes it drop the connection half way
        (aiosqlite's thread is stopped with the write lock still held); instead the step
        finishes and :meth:`abandon` rolls the transaction back behind it.
        """
        step = asyncio.ensure_future(awaitable)
        self._pending = step
        return await asyncio.shield(step)

    async def abandon(self) -> None:
        """Roll back, once the step a cancellation or an error interrupted has finished."""
        if self._pending is not None and not self._pending.done():
            await asyncio.wait([self._pending])
        with contextlib.suppress(Exception):
            await self.call(self.conn.rollback())

    async def _execute(self, sql: str, params: dict[str, Any]) -> Result[Any]:
        return await self.call(self.conn.execute(_statement(sql, params), params))

    async def one(self, sql: str, **params: Any) -> RowMapping | None:
        return (await self._execute(sql, params)).mappings().first()

    async def all(self, sql: str, **params: Any) -> list[RowMapping]:
        return list((await self._execute(sql, params)).mappings().all())

    async def run(self, sql: str, **params: Any) -> int:
        """Execute a write; return the number of rows it changed."""
        result = await self._execute(sql, params)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def insert(self, sql: str, **params: Any) -> int:
        """Execute an ``INSERT ... RETURNING id``; return the id."""
        return int((await self._execute(sql, params)).scalar_one())


async def _begin(conn: AsyncConnection) -> None:
    await conn.begin()


def _statement(sql: str, params: dict[str, Any]) -> Any:
    """``text(sql)``; a bind given a list or tuple expands (``id IN :ids``)."""
    statement = text(sql)
    expanding: list[BindParameter[Any]] = [
        bindparam(name, expanding=True) for name, value in params.items()
        if isinstance(value, list | tuple)
    ]
    return statement.bindparams(*expanding) if expanding else statement


def sqlite_url(path: str | Path) -> URL:
    return URL.create("sqlite+aiosqlite", database=str(path))


def _journal_to_wal(cursor: Any, patience: float) -> Any:
    """``PRAGMA journal_mode = WAL``, retried while another connection holds the file: the
    switch answers "database is locked" at once instead of waiting out busy_timeout (seen
    when several processes open a new file together)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return cursor.fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # the driver's own thread: blocking here blocks no event loop


def _engine_for(url: URL, *, busy_timeout_ms: int) -> AsyncEngine:
    """An engine for ``url``, configured for the store's transactions (the dialect differences
    of connecting live here and in :meth:`SqlStore._transaction`)."""
    if url.get_backend_name() != "sqlite":
        # pool_pre_ping: a connection the server dropped (a restart, a failover) is replaced
        # instead of failing the next request.
        return create_async_engine(url, pool_pre_ping=True)
    # One connection: SQLite has one writer anyway, and the store's lock orders its users.
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    where = url.database

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The driver's own BEGIN is off; _begin emits ours (SQLAlchemy's aiosqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            row = _journal_to_wal(cursor, busy_timeout_ms / 1000)
            if row is None or str(row[0]).lower() != "wal":
                log.warning("database %s: WAL journal not available (got %s)", where,
                            None if row is None else row[0])
            # In WAL mode NORMAL loses nothing on a process crash, only on power loss.
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front (waiting up to busy_timeout); a deferred
        # BEGIN gives reads one consistent snapshot.
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', '')}")

    return engine


def _unavailable(exc: Exception) -> bool:
    """Whether ``exc`` is the database's fault, not the request's (the same write may succeed
    later): locked past the busy timeout, disk full, read-only, I/O, a lost connection."""
    if isinstance(exc, OperationalError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class SqlStore:
    """:class:`storage.models.Store` on SQLite or PostgreSQL; open with :meth:`open` (an SQLite
    file) or :meth:`connect` (a URL)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        connection: AsyncConnection | None,
        where: str,
        default_limit: int,
        tz: ZoneInfo,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self.where = where  # the file, or the URL without its password: for messages
        self.default_limit = default_limit
        self.tz = tz
        self._clock = clock
        # SQLite: one connection, one coroutine on it at a time. PostgreSQL: a pool, and the
        # advisory lock orders the writers.
        self._serial: asyncio.Lock | None = asyncio.Lock() if self._sqlite else None
        self._connection = connection  # SQLite's one connection; None: PostgreSQL's pool
        self.path = Path(where) if self._sqlite else None
        self._closed = False

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self._engine.dialect.name)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        default_limit: int,
        tz: ZoneInfo,
        clock: Clock = utc_now,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> SqlStore:
        """Open and migrate the SQLite file ``path``; it is created if missing."""
        return await cls.connect(sqlite_url(path), default_limit=default_limit, tz=tz,
                                 clock=clock, busy_timeout_ms=busy_timeout_ms)

    @classmethod
    async def connect(
        cls,
        url: str | URL,
        *,
        default_limit: int,
        tz: ZoneInfo,
        clock: Clock = utc_now,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> SqlStore:
        """Connect to ``url`` (``sqlite+aiosqlite:///…`` or ``postgresql+asyncpg://…``) and
        migrate."""
        if default_limit < 0:
            raise ValueError("default_limit must not be negative")
        url = make_url(url)
        sqlite = url.get_backend_name() == "sqlite"
        where = (url.database or "") if sqlite else url.render_as_string(hide_password=True)
        engine = _engine_for(url, busy_timeout_ms=busy_timeout_ms)
        try:
            await upgrade(engine, where)
            connection = await engine.connect() if sqlite else None
        except (DBAPIError, OSError) as exc:
            # Unreachable, refused, not a database: one message naming where (never a password).
            await engine.dispose()
            raise StoreUnavailableError(f"{where}: {getattr(exc, 'orig', None) or exc}") from exc
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, connection=connection, where=where, default_limit=default_limit,
                   tz=tz, clock=clock)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._serialised():
            if self._connection is not None:
                await self._connection.close()
            await self._engine.dispose()

    async def __aenter__(self) -> SqlStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- plumbing --------------------------------------------------------------------------

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[AsyncConnection]:
        if self._connection is not None:
            yield self._connection
            return
        # From the pool, shielded like the transaction's steps: a cancelled caller must not
        # leave a connection half opened or unreturned.
        conn = self._engine.connect()
        opening = asyncio.ensure_future(conn.start())
        try:
            await asyncio.shield(opening)
        except asyncio.CancelledError:
            await asyncio.wait([opening])
            if not opening.cancelled() and opening.exception() is None:
                await asyncio.shield(conn.close())
            raise
        try:
            yield conn
        finally:
            closing = asyncio.ensure_future(conn.close())
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                await asyncio.wait([closing])
                raise

    @asynccontextmanager
    async def _serialised(self) -> AsyncIterator[None]:
        if self._serial is None:
            yield
            return
        async with self._serial:
            yield

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[_Tx]:
        """One transaction; a write holds the database's writer slot from its first statement
        (see the module docstring). Rolled back on any error."""
        if self._sqlite:
            options: dict[str, Any] = {"sqlite_begin": "IMMEDIATE" if write else ""}
        else:
            options = {"isolation_level": "READ COMMITTED" if write else "REPEATABLE READ"}
        async with self._serialised():
            try:
                async with self._connected() as plain:
                    conn = await plain.execution_options(**options)
                    tx = _Tx(conn)
                    try:
                        await tx.call(_begin(conn))
                        if write and not self._sqlite:
                            await tx.run("SELECT pg_advisory_xact_lock(:lock)", lock=WRITE_LOCK)
                        yield tx
                        await tx.call(conn.commit())
                    except BaseException:
                        await tx.abandon()
                        raise
            except Exception as exc:
                if not _unavailable(exc):
                    raise
                raise StoreUnavailableError(f"{self.where}: {getattr(exc, 'orig', exc)}") from exc

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the store's clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def current_month(self, now: datetime | None = None) -> str:
        """``YYYY-MM`` of ``now`` (default: the store's clock) in the configured zone."""
        moment = self._now() if now is None else now
        if moment.tzinfo is None:
            raise ValueError("current_month needs a timezone-aware datetime")
        return moment.astimezone(self.tz).strftime("%Y-%m")

    @staticmethod
    async def _job_row(tx: _Tx, job_id: int) -> RowMapping:
        row = await tx.one("SELECT * FROM jobs WHERE id = :id", id=job_id)
        if row is None:
            raise JobNotFoundError(f"no job {job_id}")
        return row

    @staticmethod
    async def _require_user(tx: _Tx, user_id: int) -> RowMapping:
        row = await tx.one("SELECT * FROM users WHERE user_id = :user_id", user_id=user_id)
        if row is None:
            raise UnknownUserError(f"user {user_id} has never used the bot")
        return row

    async def _quota(self, tx: _Tx, user_id: int, month: str) -> QuotaStatus | None:
        """The user's figures for ``month``, or None if the user is unknown (one query)."""
        row = await tx.one(
            "SELECT users.monthly_limit, users.purchased_images, usage.used, usage.reserved,"
            " usage.granted FROM users"
            " LEFT JOIN usage ON usage.user_id = users.user_id AND usage.month = :month"
            " WHERE users.user_id = :user_id",
            month=month, user_id=user_id,
        )
        if row is None:
            return None
        return QuotaStatus(
            user_id=user_id,
            month=month,
            limit=self.default_limit if row["monthly_limit"] is None else row["monthly_limit"],
            granted=row["granted"] or 0,
            used=row["used"] or 0,
            reserved=row["reserved"] or 0,
            purchased=row["purchased_images"],
        )

    async def _known_quota(self, tx: _Tx, user_id: int, month: str) -> QuotaStatus:
        status = await self._quota(tx, user_id, month)
        if status is None:
            raise UnknownUserError(f"user {user_id} has never used the bot")
        return status

    @staticmethod
    async def _add_usage(
        tx: _Tx, user_id: int, month: str, *, reserved: int = 0, granted: int = 0
    ) -> None:
        await tx.run(
            "INSERT INTO usage (user_id, month, reserved, granted)"
            " VALUES (:user_id, :month, :reserved, :granted)"
            " ON CONFLICT (user_id, month) DO UPDATE SET"
            " reserved = usage.reserved + excluded.reserved,"
            " granted = usage.granted + excluded.granted",
            user_id=user_id, month=month, reserved=reserved, granted=granted,
        )

    async def _audit(
        self, tx: _Tx, admin_id: int, user_id: int, action: str, value: str | None,
        update_id: int | None = None,
    ) -> None:
        await tx.run(
            "INSERT INTO audit (admin_id, target_user_id, action, value, created_at, update_id)"
            " VALUES (:admin_id, :user_id, :action, :value, :created_at, :update_id)",
            admin_id=admin_id, user_id=user_id, action=action, value=value,
            created_at=_to_text(self._now()), update_id=update_id,
        )

    async def _row_of_update(
        self, tx: _Tx, table: str, update_id: int | None
    ) -> RowMapping | None:
        """The row of ``table`` (jobs, audit) that ``update_id`` already caused, if any.

        A row older than UPDATE_MEMORY belongs to another update that had the same id (Telegram
        chooses ids at random after a week without updates): its id is cleared, so the new
        update is handled and the UNIQUE index still holds.
        """
        if update_id is None:
            return None
        assert table in _UPDATE_KEYED_TABLES
        row = await tx.one(f"SELECT * FROM {table} WHERE update_id = :update_id",
                           update_id=update_id)
        if row is None:
            return None
        if _from_text(row["created_at"]) > self._now() - UPDATE_MEMORY:
            return row
        await tx.run(f"UPDATE {table} SET update_id = NULL WHERE id = :id", id=row["id"])
        return None

    @staticmethod
    async def _reserve_purchased(tx: _Tx, user_id: int, job_id: int, images: int) -> None:
        """Take ``images`` of the user's purchased balance for the job (the caller checked the
        balance under the same write lock)."""
        if images <= 0:
            return
        await tx.run(
            "UPDATE users SET purchased_images = purchased_images - :images"
            " WHERE user_id = :user_id",
            images=images, user_id=user_id,
        )
        await tx.run("UPDATE jobs SET reserved_purchased = :images WHERE id = :id",
                     images=images, id=job_id)

    async def _close_reservation(self, tx: _Tx, row: RowMapping, charged: int) -> bool:
        """Move the job's reservation into usage (``charged`` images) and release the rest.

        A job took from the monthly quota first and purchased images last, so the images not
        delivered go back to the purchased balance first: what was bought is never lost to a
        month's end.
        """
        if not row["reservation_open"]:
            return False
        requested: int = row["images_requested"]
        from_purchased: int = row["reserved_purchased"]
        undelivered = requested - charged
        back_to_purchased = min(undelivered, from_purchased)
        from_monthly = requested - from_purchased
        charged_monthly = from_monthly - (undelivered - back_to_purchased)
        await tx.run(
            "UPDATE usage SET reserved = reserved - :reserved, used = used + :used"
            " WHERE user_id = :user_id AND month = :month",
            reserved=from_monthly, used=charged_monthly, user_id=row["user_id"],
            month=row["quota_month"],
        )
        if back_to_purchased:
            await tx.run(
                "UPDATE users SET purchased_images = purchased_images + :images"
                " WHERE user_id = :user_id",
                images=back_to_purchased, user_id=row["user_id"],
            )
        await tx.run(
            "UPDATE jobs SET reservation_open = 0, images_delivered = :delivered,"
            " updated_at = :now WHERE id = :id",
            delivered=charged, now=_to_text(self._now()), id=row["id"],
        )
        return True

    def _charge(self, row: RowMapping, delivered: int) -> int:
        if delivered < 0:
            raise ValueError(f"job {row['id']}: delivered must not be negative ({delivered})")
        requested: int = row["images_requested"]
        if delivered > requested:
            log.warning("job %s: %d images delivered but %d reserved; charging %d",
                        row["id"], delivered, requested, requested)
        return min(delivered, requested)

    async def _move(
        self, tx: _Tx, row: RowMapping, target: JobState, **columns: object
    ) -> Job:
        """Change the job's state (checked against ALLOWED_TRANSITIONS) and set ``columns``."""
        current = JobState(row["state"])
        if target not in ALLOWED_TRANSITIONS[current]:
            raise IllegalTransitionError(row["id"], current.value, target.value)
        # The column names are this module's own keywords, never input.
        assignments = "".join(f", {name} = :{name}" for name in columns)
        await tx.run(
            f"UPDATE jobs SET state = :state, updated_at = :now{assignments} WHERE id = :id",
            state=target.value, now=_to_text(self._now()), id=row["id"], **columns,
        )
        return _job(await self._job_row(tx, row["id"]))

    # --- users -----------------------------------------------------------------------------

    async def touch_user(
        self, user_id: int, username: str | None, display_name: str,
        telegram_language: str | None,
    ) -> User:
        """Create or refresh a user as last seen; returns the stored record."""
        now = _to_text(self._now())
        async with self._transaction(write=True) as tx:
            if username:
                # Telegram usernames are unique at any moment: whoever had it before lost it.
                await tx.run(
                    "UPDATE users SET username = NULL"
                    " WHERE lower(username) = lower(:username) AND user_id != :user_id",
                    username=username, user_id=user_id,
                )
            await tx.run(
                "INSERT INTO users (user_id, username, display_name, telegram_language,"
                " created_at, last_seen_at)"
                " VALUES (:user_id, :username, :display_name, :telegram_language, :now, :now)"
                " ON CONFLICT (user_id) DO UPDATE SET username = excluded.username,"
                " display_name = excluded.display_name,"
                " telegram_language = excluded.telegram_language,"
                " last_seen_at = excluded.last_seen_at",
                user_id=user_id, username=username or None, display_name=display_name,
                telegram_language=telegram_language, now=now,
            )
            return _user(await self._require_user(tx, user_id))

    async def ensure_user(self, user_id: int) -> User:
        """The user's record, created with a placeholder name ("user 4242") if they never wrote.

        A known user is returned unchanged; the placeholder gives way to the real name the first
        time they write (:meth:`touch_user`).
        """
        now = _to_text(self._now())
        async with self._transaction(write=True) as tx:
            await tx.run(
                "INSERT INTO users (user_id, display_name, created_at, last_seen_at)"
                " VALUES (:user_id, :name, :now, :now) ON CONFLICT (user_id) DO NOTHING",
                user_id=user_id, name=placeholder_name(user_id), now=now,
            )
            return _user(await self._require_user(tx, user_id))

    async def get_user(self, user_id: int) -> User | None:
        async with self._transaction(write=False) as tx:
            row = await tx.one("SELECT * FROM users WHERE user_id = :user_id", user_id=user_id)
        return None if row is None else _user(row)

    async def find_user_by_username(self, username: str) -> User | None:
        """Look up by ``@username`` or ``username`` (case-insensitive)."""
        name = username.strip().removeprefix("@")
        if not name:
            return None
        async with self._transaction(write=False) as tx:
            row = await tx.one(
                "SELECT * FROM users WHERE lower(username) = lower(:name)"
                " ORDER BY last_seen_at DESC LIMIT 1",
                name=name,
            )
        return None if row is None else _user(row)

    async def set_language(self, user_id: int, language: str | None) -> None:
        async with self._transaction(write=True) as tx:
            if not await tx.run("UPDATE users SET language = :language WHERE user_id = :user_id",
                                language=language, user_id=user_id):
                raise UnknownUserError(f"user {user_id} has never used the bot")

    # --- quotas and admin ------------------------------------------------------------------

    async def quota_status(self, user_id: int, month: str | None = None) -> QuotaStatus:
        """The user's figures for ``month`` (default: now); an unknown user gets the default."""
        month = month or self.current_month()
        async with self._transaction(write=False) as tx:
            status = await self._quota(tx, user_id, month)
        if status is None:
            return QuotaStatus(user_id=user_id, month=month, limit=self.default_limit,
                               granted=0, used=0, reserved=0)
        return status

    async def set_monthly_limit(
        self, admin_id: int, user_id: int, limit: int | None, *, update_id: int | None = None
    ) -> None:
        """Set a personal limit (``None``: back to the default); audited. A replayed
        ``update_id`` changes nothing."""
        if limit is not None and limit < 0:
            raise ValueError("a monthly limit must not be negative")
        async with self._transaction(write=True) as tx:
            if await self._row_of_update(tx, "audit", update_id) is not None:
                return
            if not await tx.run(
                "UPDATE users SET monthly_limit = :monthly_limit WHERE user_id = :user_id",
                monthly_limit=limit, user_id=user_id,
            ):
                raise UnknownUserError(f"user {user_id} has never used the bot")
            await self._audit(tx, admin_id, user_id, "set_limit",
                              None if limit is None else str(limit), update_id)

    async def grant_extra(
        self, admin_id: int, user_id: int, images: int, *, update_id: int | None = None
    ) -> QuotaStatus:
        """Grant extra images for the current month (may be negative to take back). A replayed
        ``update_id`` grants nothing and returns the figures as they are."""
        month = self.current_month()
        async with self._transaction(write=True) as tx:
            status = await self._known_quota(tx, user_id, month)
            if await self._row_of_update(tx, "audit", update_id) is not None:
                return status
            await self._add_usage(tx, user_id, month, granted=images)
            await self._audit(tx, admin_id, user_id, "grant", str(images), update_id)
            return await self._known_quota(tx, user_id, month)

    async def set_banned(
        self, admin_id: int, user_id: int, banned: bool, *, update_id: int | None = None
    ) -> None:
        """Ban or unban; audited. A replayed ``update_id`` changes nothing."""
        async with self._transaction(write=True) as tx:
            if await self._row_of_update(tx, "audit", update_id) is not None:
                return
            if not await tx.run("UPDATE users SET banned = :banned WHERE user_id = :user_id",
                                banned=int(banned), user_id=user_id):
                raise UnknownUserError(f"user {user_id} has never used the bot")
            await self._audit(tx, admin_id, user_id, "ban" if banned else "unban", None,
                              update_id)

    async def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        """The latest admin actions, newest first."""
        async with self._transaction(write=False) as tx:
            rows = await tx.all("SELECT * FROM audit ORDER BY id DESC LIMIT :limit",
                                limit=limit)
        return [_audit(row) for row in rows]

    async def usage_report(self, month: str | None = None, top: int = 10) -> UsageReport:
        """Images settled for jobs of ``month``, by model and function, with estimated cost."""
        month = month or self.current_month()
        async with self._transaction(write=False) as tx:
            line_rows = await tx.all(
                "SELECT model, function, SUM(images_delivered) AS images FROM jobs"
                " WHERE quota_month = :month AND reservation_open = 0"
                " GROUP BY model, function HAVING SUM(images_delivered) > 0"
                " ORDER BY model, function",
                month=month,
            )
            top_rows = await tx.all(
                "SELECT jobs.user_id, users.username, users.display_name,"
                " SUM(jobs.images_delivered) AS images"
                " FROM jobs JOIN users ON users.user_id = jobs.user_id"
                " WHERE jobs.quota_month = :month AND jobs.reservation_open = 0"
                " GROUP BY jobs.user_id, users.username, users.display_name"
                " HAVING SUM(jobs.images_delivered) > 0"
                " ORDER BY images DESC, jobs.user_id LIMIT :top",
                month=month, top=top,
            )
        lines: list[UsageLine] = []
        total_cost = Decimal(0)
        per_model: dict[str, int] = {}
        for row in line_rows:
            cost = estimated_cost(row["model"], row["images"])
            total_cost += cost
            per_model[row["model"]] = per_model.get(row["model"], 0) + row["images"]
            lines.append(UsageLine(model=row["model"], function=row["function"],
                                   images=row["images"], cost_yuan=float(cost)))
        return UsageReport(
            month=month,
            lines=tuple(lines),
            total_images=sum(line.images for line in lines),
            total_cost_yuan=float(total_cost),
            free_allowance={model: (per_model.get(model, 0), allowance)
                            for model, allowance in FREE_IMAGES_PER_MONTH.items()},
            top_users=tuple(
                TopUser(user_id=row["user_id"], username=row["username"],
                        display_name=row["display_name"], images=row["images"])
                for row in top_rows
            ),
        )

    # --- jobs ------------------------------------------------------------------------------

    async def create_job(self, job: NewJob, *, budget_yuan: Decimal | None = None) -> Job:
        """Reserve ``images_requested`` in the current month and insert the job, atomically.

        Raises QuotaExceededError (with the images remaining) and inserts nothing when the
        reservation does not fit: used + reserved + n <= limit + granted. ``unlimited`` skips
        that check but still records the reservation. With ``budget_yuan``, raises
        BudgetExceededError and inserts nothing when the month's estimated spend plus the job's
        would pass it, unlimited or not. A job whose ``update_id`` already has one is a replay:
        that job is returned and nothing is reserved.
        """
        return (await self.create_or_replay_job(job, budget_yuan=budget_yuan)).job

    async def create_or_replay_job(
        self, job: NewJob, *, budget_yuan: Decimal | None = None
    ) -> JobCreation:
        """:meth:`create_job`, telling whether the job was created or replayed.

        The replay is looked up in the transaction that would reserve, so two copies of one
        update, even at once in two processes, make one job. The spend is summed in that
        transaction too (under the write lock), so two requests at the edge of the budget
        cannot both pass it.
        """
        n = job.images_requested
        if n < 1:
            raise ValueError(f"images_requested must be at least 1, not {n}")
        now = self._now()
        month = self.current_month(now)
        async with self._transaction(write=True) as tx:
            earlier = await self._row_of_update(tx, "jobs", job.update_id)
            if earlier is not None:
                return JobCreation(_job(earlier), replayed=True)
            quota = await self._known_quota(tx, job.user_id, month)
            if not job.unlimited and n > quota.remaining:
                raise QuotaExceededError(quota.remaining, n, limit=quota.limit + quota.granted,
                                         resets_on=next_month_start(month))
            if budget_yuan is not None:
                check_budget(month=month, spent=await self._spend(tx, month), model=job.model,
                             images=n, budget=budget_yuan)
            # The monthly quota first, then purchased images (admins' jobs take none).
            from_purchased = 0 if job.unlimited else max(0, n - quota.monthly_remaining)
            await self._add_usage(tx, job.user_id, month, reserved=n - from_purchased)
            job_id = await self._insert_job(tx, job, month, _to_text(now))
            await self._reserve_purchased(tx, job.user_id, job_id, from_purchased)
            return JobCreation(_job(await self._job_row(tx, job_id)), replayed=False)

    @staticmethod
    async def _insert_job(tx: _Tx, job: NewJob, month: str, stamp: str) -> int:
        return await tx.insert(
            "INSERT INTO jobs (user_id, chat_id, request_message_id, command, model,"
            " function, spec_json, input_file_id, mask_file_id, mask_png, state, quota_month,"
            " images_requested, reservation_open, created_at, updated_at, update_id)"
            " VALUES (:user_id, :chat_id, :request_message_id, :command, :model, :function,"
            " :spec_json, :input_file_id, :mask_file_id, :mask_png, :state, :quota_month,"
            " :images_requested, 1, :now, :now, :update_id) RETURNING id",
            user_id=job.user_id, chat_id=job.chat_id, request_message_id=job.request_message_id,
            command=job.command, model=job.model, function=job.function,
            spec_json=job.spec_json, input_file_id=job.input_file_id,
            mask_file_id=job.mask_file_id, mask_png=job.mask_png, state=JobState.QUEUED.value,
            quota_month=month, images_requested=job.images_requested, now=stamp,
            update_id=job.update_id,
        )

    async def create_album_jobs(
        self, jobs: Sequence[NewJob], *, budget_yuan: Decimal | None = None
    ) -> tuple[JobCreation, ...]:
        """Every image of an album reserved and inserted in one transaction, or none.

        The quota and the spend cap are checked for the album's total; each job keeps its own
        part's update id, and a replay of any of them returns the whole album.
        """
        if not jobs:
            raise ValueError("an album needs at least one job")
        if any(job.images_requested < 1 for job in jobs):
            raise ValueError("images_requested must be at least 1")
        first, total = jobs[0], sum(job.images_requested for job in jobs)
        now = self._now()
        month = self.current_month(now)
        async with self._transaction(write=True) as tx:
            for job in jobs:
                earlier = await self._row_of_update(tx, "jobs", job.update_id)
                if earlier is None:
                    continue
                rows = [earlier] if earlier["album_id"] is None else await tx.all(
                    "SELECT * FROM jobs WHERE album_id = :album_id ORDER BY id",
                    album_id=earlier["album_id"],
                )
                return tuple(JobCreation(_job(row), replayed=True) for row in rows)
            quota = await self._known_quota(tx, first.user_id, month)
            if not first.unlimited and total > quota.remaining:
                raise QuotaExceededError(quota.remaining, total,
                                         limit=quota.limit + quota.granted,
                                         resets_on=next_month_start(month))
            if budget_yuan is not None:
                check_budget(month=month, spent=await self._spend(tx, month),
                             model=first.model, images=total, budget=budget_yuan)
            # The monthly quota first, image by image in the album's order, then purchased.
            monthly_left = 0 if first.unlimited else quota.monthly_remaining
            from_purchased: list[int] = []
            for job in jobs:
                from_monthly = min(job.images_requested, monthly_left)
                monthly_left -= from_monthly
                from_purchased.append(
                    0 if first.unlimited else job.images_requested - from_monthly
                )
            await self._add_usage(tx, first.user_id, month, reserved=total - sum(from_purchased))
            stamp = _to_text(now)
            ids = [await self._insert_job(tx, job, month, stamp) for job in jobs]
            for job_id, images in zip(ids, from_purchased, strict=True):
                await self._reserve_purchased(tx, first.user_id, job_id, images)
            await tx.run(
                "UPDATE jobs SET album_id = :album_id WHERE id IN :ids",
                album_id=ids[0], ids=ids,
            )
            rows = [await self._job_row(tx, job_id) for job_id in ids]
            return tuple(JobCreation(_job(row), replayed=False) for row in rows)

    async def album_jobs(self, album_id: int) -> list[Job]:
        """The jobs of an album, in the album's order."""
        async with self._transaction(write=False) as tx:
            rows = await tx.all("SELECT * FROM jobs WHERE album_id = :album_id ORDER BY id",
                                album_id=album_id)
        return [_job(row) for row in rows]

    @staticmethod
    async def _spend(tx: _Tx, month: str) -> Decimal:
        """The month's estimated spend: images delivered, or reserved while a job is open."""
        rows = await tx.all(
            "SELECT model, SUM(CASE WHEN reservation_open = 1 THEN images_requested"
            " ELSE images_delivered END) AS images FROM jobs WHERE quota_month = :month"
            " GROUP BY model",
            month=month,
        )
        return sum((estimated_cost(row["model"], row["images"]) for row in rows), Decimal(0))

    async def estimated_spend(self, month: str | None = None) -> Decimal:
        """Yuan at list price for the images of ``month`` (default: now) delivered or reserved;
        the free allowance is not subtracted."""
        month = month or self.current_month()
        async with self._transaction(write=False) as tx:
            return await self._spend(tx, month)

    async def get_job(self, job_id: int) -> Job:
        async with self._transaction(write=False) as tx:
            return _job(await self._job_row(tx, job_id))

    async def set_status_message(self, job_id: int, message_id: int) -> None:
        async with self._transaction(write=True) as tx:
            if not await tx.run(
                "UPDATE jobs SET status_message_id = :message_id, updated_at = :now"
                " WHERE id = :id",
                message_id=message_id, now=_to_text(self._now()), id=job_id,
            ):
                raise JobNotFoundError(f"no job {job_id}")

    async def mark_submitted(self, job_id: int, task_id: str) -> Job:
        async with self._transaction(write=True) as tx:
            row = await self._job_row(tx, job_id)
            return await self._move(tx, row, JobState.SUBMITTED, task_id=task_id)

    async def mark_succeeded(self, job_id: int, result_urls: tuple[str, ...]) -> Job:
        async with self._transaction(write=True) as tx:
            row = await self._job_row(tx, job_id)
            return await self._move(tx, row, JobState.SUCCEEDED,
                                    result_urls=json.dumps(list(result_urls)))

    async def mark_delivered(
        self, job_id: int, images_delivered: int, file_ids: tuple[str, ...] = ()
    ) -> Job:
        """Settle the reservation for the images delivered, keep their Telegram file ids and
        finish the job, in one step.

        If the reservation was already settled, the earlier settlement stands.
        """
        async with self._transaction(write=True) as tx:
            row = await self._job_row(tx, job_id)
            charged = self._charge(row, images_delivered)
            current = JobState(row["state"])
            if JobState.DELIVERED not in ALLOWED_TRANSITIONS[current]:
                raise IllegalTransitionError(job_id, current.value, JobState.DELIVERED.value)
            await self._close_reservation(tx, row, charged)
            return await self._move(tx, row, JobState.DELIVERED,
                                    result_file_ids=json.dumps(list(file_ids)))

    async def mark_failed(self, job_id: int, code: str, message: str) -> Job:
        """Refund the reservation and finish the job, in one step."""
        return await self._finish_refunded(job_id, JobState.FAILED, error_code=code,
                                           error_message=message)

    async def mark_canceled(self, job_id: int) -> Job:
        """Refund the reservation and finish the job, in one step."""
        return await self._finish_refunded(job_id, JobState.CANCELED)

    async def _finish_refunded(self, job_id: int, target: JobState, **columns: object) -> Job:
        async with self._transaction(write=True) as tx:
            row = await self._job_row(tx, job_id)
            current = JobState(row["state"])
            if target not in ALLOWED_TRANSITIONS[current]:
                raise IllegalTransitionError(job_id, current.value, target.value)
            await self._close_reservation(tx, row, 0)
            return await self._move(tx, row, target, **columns)

    async def note_attempt(self, job_id: int) -> Job:
        """Count one more attempt at the job (a restart picking it up again)."""
        async with self._transaction(write=True) as tx:
            if not await tx.run(
                "UPDATE jobs SET attempts = attempts + 1, updated_at = :now WHERE id = :id",
                now=_to_text(self._now()), id=job_id,
            ):
                raise JobNotFoundError(f"no job {job_id}")
            return _job(await self._job_row(tx, job_id))

    async def settle(self, job_id: int, delivered: int) -> bool:
        """Turn the reservation into usage for ``delivered`` (at most the reservation).

        Idempotent: returns False and changes nothing if the reservation is already closed.
        """
        async with self._transaction(write=True) as tx:
            row = await self._job_row(tx, job_id)
            return await self._close_reservation(tx, row, self._charge(row, delivered))

    async def refund(self, job_id: int) -> bool:
        """Release the whole reservation; idempotent like :meth:`settle`."""
        async with self._transaction(write=True) as tx:
            row = await self._job_row(tx, job_id)
            return await self._close_reservation(tx, row, 0)

    async def resumable_jobs(self) -> list[Job]:
        """Every job not in a final state, oldest first."""
        async with self._transaction(write=False) as tx:
            rows = await tx.all(
                "SELECT * FROM jobs WHERE state IN :states ORDER BY created_at, id",
                states=_UNFINISHED,
            )
        return [_job(row) for row in rows]

    # --- claims: which instance works a job ----------------------------------------------------

    async def claim_job(self, job_id: int, owner: str, lease: timedelta) -> Job | None:
        """Claim an unfinished job for ``owner`` until ``lease`` from now, unless another
        owner's claim still holds; the job as it is now, or None (claimed elsewhere, or final).

        Claiming again what ``owner`` holds renews it. On PostgreSQL the row is locked with
        ``FOR UPDATE SKIP LOCKED``: a row another transaction is changing (a cancel) is not
        waited for, it is simply not claimed now.
        """
        now = self._now()
        skip_locked = " FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""
        async with self._transaction(write=True) as tx:
            if await tx.one(
                "SELECT id FROM jobs WHERE id = :id AND state IN :states"
                " AND (claimed_by IS NULL OR claimed_by = :owner OR lease_until < :now)"
                + skip_locked,
                id=job_id, states=_UNFINISHED, owner=owner, now=_to_text(now),
            ) is None:
                return None
            await tx.run(
                "UPDATE jobs SET claimed_by = :owner, lease_until = :until WHERE id = :id",
                owner=owner, until=_to_text(now + lease), id=job_id,
            )
            return _job(await self._job_row(tx, job_id))

    async def renew_claims(self, owner: str, lease: timedelta) -> int:
        """Extend every claim ``owner`` holds on an unfinished job; returns how many."""
        async with self._transaction(write=True) as tx:
            return await tx.run(
                "UPDATE jobs SET lease_until = :until"
                " WHERE claimed_by = :owner AND state IN :states",
                until=_to_text(self._now() + lease), owner=owner, states=_UNFINISHED,
            )

    async def release_claims(self, owner: str | None = None) -> int:
        """Drop ``owner``'s claims (every claim with None: the one process of an SQLite file
        starting); the jobs may be taken at once. Returns how many were dropped."""
        async with self._transaction(write=True) as tx:
            if owner is None:
                return await tx.run("UPDATE jobs SET claimed_by = NULL, lease_until = NULL"
                                    " WHERE claimed_by IS NOT NULL")
            return await tx.run("UPDATE jobs SET claimed_by = NULL, lease_until = NULL"
                                " WHERE claimed_by = :owner", owner=owner)

    async def cancel_unclaimed(self, job_id: int) -> Job | None:
        """Cancel a queued job no instance holds a live claim on (refunded, in one step); the
        cancelled job, or None when it is not queued any more or an instance has it."""
        now = _to_text(self._now())
        async with self._transaction(write=True) as tx:
            row = await self._job_row(tx, job_id)
            claimed = row["claimed_by"] is not None and (row["lease_until"] or "") >= now
            if row["state"] != JobState.QUEUED.value or claimed:
                return None
            await self._close_reservation(tx, row, 0)
            return await self._move(tx, row, JobState.CANCELED)

    async def stuck_jobs(self, idle: timedelta) -> list[Job]:
        """Unfinished jobs whose state has not changed for longer than ``idle``, oldest first."""
        before = _to_text(self._now() - idle)
        async with self._transaction(write=False) as tx:
            rows = await tx.all(
                "SELECT * FROM jobs WHERE state IN :states AND updated_at < :before"
                " ORDER BY updated_at, id",
                states=_UNFINISHED, before=before,
            )
        return [_job(row) for row in rows]

    async def queued_jobs_fair(self) -> list[Job]:
        """Queued jobs in fair order: round robin across users, oldest first within a user."""
        async with self._transaction(write=False) as tx:
            rows = await tx.all("SELECT * FROM jobs WHERE state = :state ORDER BY created_at, id",
                                state=JobState.QUEUED.value)
        return fair_order(_job(row) for row in rows)

    async def queue_position(self, job_id: int) -> int | None:
        """1-based position in :meth:`queued_jobs_fair`, or None if the job is not queued."""
        for position, job in enumerate(await self.queued_jobs_fair(), start=1):
            if job.id == job_id:
                return position
        return None

    async def active_jobs(self) -> list[Job]:
        """Jobs submitted or succeeded but not yet final (for /queue), oldest first."""
        async with self._transaction(write=False) as tx:
            rows = await tx.all(
                "SELECT * FROM jobs WHERE state IN :states ORDER BY created_at, id",
                states=(JobState.SUBMITTED.value, JobState.SUCCEEDED.value),
            )
        return [_job(row) for row in rows]

    async def job_counts(self) -> dict[JobState, int]:
        async with self._transaction(write=False) as tx:
            rows = await tx.all("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        return {JobState(row["state"]): int(row["n"]) for row in rows}

    async def prune_old_jobs(self, before: datetime) -> int:
        """Retention: a finished job's mask bytes and result URLs (signed, dead after 24 h) go;
        what /usage, the ledger, the audit and "again" read (spec, file ids, counts) stays."""
        async with self._transaction(write=True) as tx:
            return await tx.run(
                "UPDATE jobs SET mask_png = NULL, result_urls = '[]'"
                " WHERE state IN :states AND updated_at < :before"
                " AND (mask_png IS NOT NULL OR result_urls != '[]')",
                states=tuple(state.value for state in JobState if state.is_final),
                before=_to_text(before),
            )

    # --- conversations ---------------------------------------------------------------------
    # Expiry is compared on the stored text: _to_text is fixed-width UTC, so text order is time
    # order (and the expires_at index serves the prune).

    async def put_conversation(
        self, kind: ConversationKind, chat_id: int, key: int, *, user_id: int, payload: str,
        ttl_seconds: float,
    ) -> Conversation:
        """Start the conversation ``(kind, chat_id, key)``, replacing one that was there."""
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, not {ttl_seconds}")
        now = self._now()
        ident = {"kind": ConversationKind(kind).value, "chat_id": chat_id, "key": key}
        async with self._transaction(write=True) as tx:
            await tx.run(
                "INSERT INTO conversations (kind, chat_id, key, user_id, payload, created_at,"
                " expires_at) VALUES (:kind, :chat_id, :key, :user_id, :payload, :created_at,"
                " :expires_at)"
                " ON CONFLICT (kind, chat_id, key) DO UPDATE SET user_id = excluded.user_id,"
                " payload = excluded.payload, created_at = excluded.created_at,"
                " expires_at = excluded.expires_at",
                **ident, user_id=user_id, payload=payload, created_at=_to_text(now),
                expires_at=_to_text(now + timedelta(seconds=ttl_seconds)),
            )
            row = await tx.one(f"SELECT * FROM conversations WHERE {_CONVERSATION_KEY}",
                               **ident)
        assert row is not None
        return _conversation(row)

    async def get_conversation(
        self, kind: ConversationKind, chat_id: int, key: int
    ) -> Conversation | None:
        """The conversation if it exists and has not expired."""
        async with self._transaction(write=False) as tx:
            row = await tx.one(
                f"SELECT * FROM conversations WHERE {_CONVERSATION_KEY}"
                " AND expires_at > :now",
                kind=ConversationKind(kind).value, chat_id=chat_id, key=key,
                now=_to_text(self._now()),
            )
        return None if row is None else _conversation(row)

    async def end_conversation(
        self, kind: ConversationKind, chat_id: int, key: int
    ) -> Conversation | None:
        """Delete the conversation and return it (None if absent or expired; an expired one is
        deleted too).

        Read and delete share one write transaction, so of concurrent callers (on this store,
        another store or another process) exactly one gets it.
        """
        ident = {"kind": ConversationKind(kind).value, "chat_id": chat_id, "key": key}
        async with self._transaction(write=True) as tx:
            now = _to_text(self._now())
            row = await tx.one(f"SELECT * FROM conversations WHERE {_CONVERSATION_KEY}",
                               **ident)
            if row is None:
                return None
            await tx.run(f"DELETE FROM conversations WHERE {_CONVERSATION_KEY}", **ident)
        return _conversation(row) if row["expires_at"] > now else None

    async def prune_conversations(self) -> int:
        """Delete every expired conversation; returns how many."""
        async with self._transaction(write=True) as tx:
            return await tx.run("DELETE FROM conversations WHERE expires_at <= :now",
                                now=_to_text(self._now()))

    # --- handled updates -------------------------------------------------------------------

    async def update_handled(self, update_id: int) -> bool:
        """Whether the update was recorded as handled within UPDATE_MEMORY."""
        since = _to_text(self._now() - UPDATE_MEMORY)
        async with self._transaction(write=False) as tx:
            row = await tx.one(
                "SELECT 1 FROM handled_updates WHERE update_id = :update_id"
                " AND handled_at > :since",
                update_id=update_id, since=since,
            )
        return row is not None

    async def record_update_handled(self, update_id: int) -> None:
        """Record that every route ran for the update (a stale record of the same id, from
        before UPDATE_MEMORY, is replaced)."""
        now = self._now()
        async with self._transaction(write=True) as tx:
            await tx.run(
                "INSERT INTO handled_updates (update_id, handled_at) VALUES (:update_id, :now)"
                " ON CONFLICT (update_id) DO UPDATE SET handled_at = excluded.handled_at"
                " WHERE handled_updates.handled_at <= :stale",
                update_id=update_id, now=_to_text(now), stale=_to_text(now - UPDATE_MEMORY),
            )

    async def forget_old_updates(self) -> int:
        """Forget update ids older than UPDATE_MEMORY; returns how many handled records
        were deleted.

        Jobs and audit rows keep their history; only their update id is cleared, which also
        keeps the UNIQUE indexes small.
        """
        before = _to_text(self._now() - UPDATE_MEMORY)
        async with self._transaction(write=True) as tx:
            for table in _UPDATE_KEYED_TABLES:
                await tx.run(
                    f"UPDATE {table} SET update_id = NULL"
                    " WHERE update_id IS NOT NULL AND created_at <= :before",
                    before=before,
                )
            return await tx.run("DELETE FROM handled_updates WHERE handled_at <= :before",
                                before=before)

    # --- images bought with Telegram Stars -------------------------------------------------

    async def record_star_payment(self, payment: NewStarPayment) -> StarCredit:
        """Record the payment in the ledger and credit its pack, in one transaction.

        The charge id is UNIQUE: a payment delivered again (a redelivered update, a restart, a
        second instance) inserts nothing and credits nothing, even at the same moment.
        """
        if payment.pack_images < 1 or payment.stars < 1:
            raise ValueError(f"a pack needs images and stars: {payment}")
        now = self._now()
        async with self._transaction(write=True) as tx:
            # The payer wrote to the bot (track_user) before paying; keep the row valid anyway.
            await tx.run(
                "INSERT INTO users (user_id, display_name, created_at, last_seen_at)"
                " VALUES (:user_id, :name, :now, :now) ON CONFLICT (user_id) DO NOTHING",
                user_id=payment.user_id, name=placeholder_name(payment.user_id),
                now=_to_text(now),
            )
            inserted = await tx.run(
                "INSERT INTO star_payments (user_id, pack_images, stars,"
                " telegram_payment_charge_id, provider_payment_charge_id, payload, state,"
                " month, created_at) VALUES (:user_id, :pack_images, :stars, :charge_id,"
                " :provider_charge_id, :payload, :state, :month, :now)"
                " ON CONFLICT (telegram_payment_charge_id) DO NOTHING",
                user_id=payment.user_id, pack_images=payment.pack_images, stars=payment.stars,
                charge_id=payment.telegram_payment_charge_id,
                provider_charge_id=payment.provider_payment_charge_id,
                payload=payment.payload, state=StarPaymentState.PAID.value,
                month=self.current_month(now), now=_to_text(now),
            )
            row = await self._star_row(tx, payment.telegram_payment_charge_id)
            if inserted:
                await tx.run(
                    "UPDATE users SET purchased_images = purchased_images + :images"
                    " WHERE user_id = :user_id",
                    images=row["pack_images"], user_id=row["user_id"],
                )
            return StarCredit(_star_payment(row), credited=bool(inserted),
                              purchased=await self._purchased(tx, row["user_id"]))

    async def star_payment(self, telegram_payment_charge_id: str) -> StarPayment | None:
        async with self._transaction(write=False) as tx:
            row = await tx.one(
                "SELECT * FROM star_payments WHERE telegram_payment_charge_id = :charge_id",
                charge_id=telegram_payment_charge_id,
            )
        return None if row is None else _star_payment(row)

    async def refund_star_payment(
        self, admin_id: int, telegram_payment_charge_id: str
    ) -> StarRefund:
        """Mark the payment refunded and take back the pack's images still unused: at most the
        pack, never more than the balance (images used, or held by a running job, stay
        used). Audited; a payment refunded before changes nothing."""
        now = self._now()
        async with self._transaction(write=True) as tx:
            row = await self._star_row(tx, telegram_payment_charge_id)
            user_id: int = row["user_id"]
            if row["state"] == StarPaymentState.REFUNDED.value:
                return StarRefund(_star_payment(row), refunded=False,
                                  images_removed=row["images_removed"] or 0,
                                  purchased=await self._purchased(tx, user_id))
            removed = min(row["pack_images"], await self._purchased(tx, user_id))
            await tx.run(
                "UPDATE users SET purchased_images = purchased_images - :images"
                " WHERE user_id = :user_id",
                images=removed, user_id=user_id,
            )
            await tx.run(
                "UPDATE star_payments SET state = :state, refunded_at = :now,"
                " refunded_month = :month, images_removed = :removed WHERE id = :id",
                state=StarPaymentState.REFUNDED.value, now=_to_text(now),
                month=self.current_month(now), removed=removed, id=row["id"],
            )
            await self._audit(tx, admin_id, user_id, "star_refund",
                              f"{telegram_payment_charge_id} -{removed}")
            row = await self._star_row(tx, telegram_payment_charge_id)
            return StarRefund(_star_payment(row), refunded=True, images_removed=removed,
                              purchased=await self._purchased(tx, user_id))

    async def star_revenue(self, month: str | None = None) -> StarRevenue:
        """Stars paid and refunded in ``month`` (default: now) and in all time."""
        month = month or self.current_month()
        async with self._transaction(write=False) as tx:
            row = await tx.one(
                "SELECT"
                " COALESCE(SUM(CASE WHEN month = :month THEN stars END), 0) AS paid_month,"
                " COUNT(CASE WHEN month = :month THEN 1 END) AS payments_month,"
                " COALESCE(SUM(CASE WHEN refunded_month = :month THEN stars END), 0)"
                " AS refunded_month,"
                " COUNT(CASE WHEN refunded_month = :month THEN 1 END) AS refunds_month,"
                " COALESCE(SUM(stars), 0) AS paid_total, COUNT(*) AS payments_total,"
                " COALESCE(SUM(CASE WHEN state = :refunded THEN stars END), 0)"
                " AS refunded_total,"
                " COUNT(CASE WHEN state = :refunded THEN 1 END) AS refunds_total"
                " FROM star_payments",
                month=month, refunded=StarPaymentState.REFUNDED.value,
            )
        assert row is not None
        return StarRevenue(month=month, **{name: int(row[name]) for name in (
            "paid_month", "payments_month", "refunded_month", "refunds_month", "paid_total",
            "payments_total", "refunded_total", "refunds_total")})

    @staticmethod
    async def _star_row(tx: _Tx, telegram_payment_charge_id: str) -> RowMapping:
        row = await tx.one(
            "SELECT * FROM star_payments WHERE telegram_payment_charge_id = :charge_id",
            charge_id=telegram_payment_charge_id,
        )
        if row is None:
            raise StarPaymentNotFoundError(f"no Stars payment {telegram_payment_charge_id!r}")
        return row

    @staticmethod
    async def _purchased(tx: _Tx, user_id: int) -> int:
        row = await tx.one("SELECT purchased_images FROM users WHERE user_id = :user_id",
                           user_id=user_id)
        return 0 if row is None else int(row["purchased_images"])

    # --- settings --------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        async with self._transaction(write=False) as tx:
            row = await tx.one("SELECT value FROM settings WHERE key = :key", key=key)
        return None if row is None else str(row["value"])

    async def set_setting(self, key: str, value: str) -> None:
        async with self._transaction(write=True) as tx:
            await tx.run(
                "INSERT INTO settings (key, value, updated_at) VALUES (:key, :value, :now)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                key=key, value=value, now=_to_text(self._now()),
            )


    # --- result-button presses (bot/jobs/presses.py) ---------------------------------------

    async def begin_press(self, key: str, *, patience: timedelta) -> bool:
        """Record the press unless an earlier one of the button holds it (see the protocol).

        The read and the write share one write transaction, so of two presses at once, on this
        store or another instance's, exactly one sees the button free.
        """
        now = self._now()
        async with self._transaction(write=True) as tx:
            row = await tx.one(
                "SELECT presses.job_id, presses.made_at, jobs.state FROM presses"
                " LEFT JOIN jobs ON jobs.id = presses.job_id WHERE presses.press_key = :key",
                key=key,
            )
            if row is not None:
                if row["job_id"] is None:  # being accepted, unless its process died
                    held = row["made_at"] > _to_text(now - patience)
                else:  # a job that is gone counts as final
                    held = row["state"] is not None and not JobState(row["state"]).is_final
                if held:
                    return False
            await tx.run(
                "INSERT INTO presses (press_key, job_id, made_at) VALUES (:key, NULL, :now)"
                " ON CONFLICT (press_key) DO UPDATE SET job_id = NULL,"
                " made_at = excluded.made_at",
                key=key, now=_to_text(now),
            )
        return True

    async def press_made(self, key: str, job_id: int | None) -> None:
        async with self._transaction(write=True) as tx:
            if job_id is None:
                await tx.run("DELETE FROM presses WHERE press_key = :key", key=key)
            else:
                await tx.run(
                    "UPDATE presses SET job_id = :job_id, made_at = :now"
                    " WHERE press_key = :key",
                    key=key, job_id=job_id, now=_to_text(self._now()),
                )

    async def prune_presses(self, before: datetime) -> int:
        async with self._transaction(write=True) as tx:
            return await tx.run("DELETE FROM presses WHERE made_at < :before",
                                before=_to_text(before))

    # --- albums being gathered (bot/albums.py) ---------------------------------------------

    async def add_album_part(self, chat_id: int, media_group_id: str, part: AlbumPart) -> None:
        async with self._transaction(write=True) as tx:
            await tx.run(
                "INSERT INTO album_parts (chat_id, media_group_id, update_id, message_id,"
                " file_id, caption, arrived_at) VALUES (:chat_id, :group, :update_id,"
                " :message_id, :file_id, :caption, :now)"
                " ON CONFLICT (chat_id, media_group_id, update_id) DO NOTHING",
                chat_id=chat_id, group=media_group_id, update_id=part.update_id,
                message_id=part.message_id, file_id=part.file_id, caption=part.caption,
                now=_to_text(self._now()),
            )

    async def album_quiet_for(self, chat_id: int, media_group_id: str) -> float:
        async with self._transaction(write=False) as tx:
            row = await tx.one(
                "SELECT MAX(arrived_at) AS newest FROM album_parts"
                " WHERE chat_id = :chat_id AND media_group_id = :group",
                chat_id=chat_id, group=media_group_id,
            )
        if row is None or row["newest"] is None:
            return math.inf
        return (self._now() - _from_text(row["newest"])).total_seconds()

    async def take_album(
        self, chat_id: int, media_group_id: str, update_id: int
    ) -> tuple[AlbumPart, ...] | None:
        """The album's untaken parts to the call of the smallest of them (see the protocol)."""
        album = {"chat_id": chat_id, "group": media_group_id}
        where = "chat_id = :chat_id AND media_group_id = :group AND taken = 0"
        async with self._transaction(write=True) as tx:
            row = await tx.one(f"SELECT MIN(update_id) AS first FROM album_parts WHERE {where}",
                               **album)
            if row is None or row["first"] != update_id:
                return None
            rows = await tx.all(
                f"UPDATE album_parts SET taken = 1 WHERE {where}"
                " RETURNING update_id, message_id, file_id, caption",
                **album,
            )
        parts = (AlbumPart(update_id=r["update_id"], message_id=r["message_id"],
                           file_id=r["file_id"], caption=r["caption"]) for r in rows)
        return tuple(sorted(parts, key=lambda part: part.update_id))

    async def prune_album_parts(self, before: datetime) -> int:
        async with self._transaction(write=True) as tx:
            return await tx.run("DELETE FROM album_parts WHERE arrived_at < :before",
                                before=_to_text(before))

# The name the SQLite-only code and tests know; ``SqliteStore.open(path)`` opens a file.
SqliteStore = SqlStore
