"""Conversations in the store, delivered file ids on jobs (SQLite and PostgreSQL), and the
SQLite-only v2 -> v3 legacy migration."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.errors import IllegalTransitionError
from storage import Conversation, ConversationKind, NewJob, SqliteStore
from storage.migrations import LATEST_VERSION, MIGRATIONS
from tests.stores import StoreClock as Clock
from tests.stores import Stores

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
MASK = ConversationKind.MASK_WAIT
PICK = ConversationKind.PICK


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
async def store(stores: Stores, clock: Clock) -> AsyncIterator[SqliteStore]:
    async with await stores.open("conv.sqlite3", default_limit=5, tz=SHANGHAI,
                                 clock=clock) as opened:
        yield opened


async def put(
    store: SqliteStore, kind: ConversationKind = MASK, chat_id: int = 100, key: int = 1, *,
    user_id: int = 1, payload: str = '{"n": 1}', ttl: float = 600,
) -> Conversation:
    return await store.put_conversation(kind, chat_id, key, user_id=user_id, payload=payload,
                                        ttl_seconds=ttl)


# --- put / get / end ---------------------------------------------------------------------------


async def test_put_then_get(store: SqliteStore, clock: Clock) -> None:
    assert await store.get_conversation(MASK, 100, 1) is None
    started = await put(store, MASK, 100, 1, user_id=7, payload='{"job": 3}', ttl=600)
    assert started == Conversation(
        kind=MASK, chat_id=100, key=1, user_id=7, payload='{"job": 3}',
        created_at=START, expires_at=START + timedelta(seconds=600),
    )
    assert isinstance(started.kind, ConversationKind)
    clock.advance(10)
    assert await store.get_conversation(MASK, 100, 1) == started


async def test_putting_the_same_key_replaces_payload_owner_and_expiry(
    store: SqliteStore, clock: Clock, stores: Stores
) -> None:
    await put(store, PICK, 100, 55, user_id=1, payload="old", ttl=60)
    clock.advance(30)
    replaced = await put(store, PICK, 100, 55, user_id=2, payload="new", ttl=600)
    assert (replaced.user_id, replaced.payload) == (2, "new")
    assert replaced.created_at == clock.now
    assert replaced.expires_at == clock.now + timedelta(seconds=600)
    assert await store.get_conversation(PICK, 100, 55) == replaced
    assert await stores.count_rows("conversations", "conv.sqlite3") == 1
    clock.advance(40)  # past the first expiry, well within the second
    assert await store.get_conversation(PICK, 100, 55) == replaced


async def test_kinds_chats_and_keys_are_independent(store: SqliteStore) -> None:
    places = [(MASK, 100, 1), (PICK, 100, 1), (MASK, 200, 1), (MASK, 100, 2)]
    for number, (kind, chat_id, key) in enumerate(places):
        await put(store, kind, chat_id, key, user_id=number, payload=f"p{number}")
    for number, (kind, chat_id, key) in enumerate(places):
        found = await store.get_conversation(kind, chat_id, key)
        assert found is not None and (found.user_id, found.payload) == (number, f"p{number}")
    ended = await store.end_conversation(MASK, 100, 1)
    assert ended is not None and ended.payload == "p0"
    assert await store.get_conversation(MASK, 100, 1) is None
    for number, (kind, chat_id, key) in enumerate(places[1:], start=1):
        found = await store.get_conversation(kind, chat_id, key)
        assert found is not None and found.payload == f"p{number}"


async def test_every_kind_can_be_stored(store: SqliteStore) -> None:
    # The table's CHECK lists the kinds; a new kind without a migration fails here.
    for kind in ConversationKind:
        await put(store, kind, 1, 1, payload=kind.value)
        found = await store.get_conversation(kind, 1, 1)
        assert found is not None and found.kind is kind and found.payload == kind.value


async def test_end_returns_the_conversation_once(store: SqliteStore) -> None:
    started = await put(store, PICK, 100, 9)
    assert await store.end_conversation(PICK, 100, 9) == started
    assert await store.end_conversation(PICK, 100, 9) is None
    assert await store.get_conversation(PICK, 100, 9) is None
    assert await store.end_conversation(PICK, 100, 404) is None


async def test_concurrent_ends_give_the_conversation_to_exactly_one(
    store: SqliteStore, stores: Stores, clock: Clock
) -> None:
    other = await stores.open("conv.sqlite3", default_limit=5, tz=SHANGHAI, clock=clock)
    try:
        for key in range(5):
            started = await put(store, PICK, 100, key)
            results = await asyncio.gather(
                *(s.end_conversation(PICK, 100, key) for _ in range(10) for s in (store, other))
            )
            assert [r for r in results if r is not None] == [started]
        assert await stores.count_rows("conversations", "conv.sqlite3") == 0
    finally:
        await other.close()


@pytest.mark.parametrize("ttl", [0, -5, math.nan])
async def test_ttl_must_be_positive(store: SqliteStore, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        await put(store, ttl=ttl)
    assert await store.get_conversation(MASK, 100, 1) is None


# --- expiry ------------------------------------------------------------------------------------


async def test_a_conversation_expires_at_its_deadline(store: SqliteStore, clock: Clock) -> None:
    started = await put(store, MASK, 100, 1, ttl=60)
    clock.advance(59.999999)
    assert await store.get_conversation(MASK, 100, 1) == started
    clock.advance(0.000001)  # exactly expires_at
    assert await store.get_conversation(MASK, 100, 1) is None
    assert await store.end_conversation(MASK, 100, 1) is None


async def test_ending_an_expired_conversation_deletes_it(
    store: SqliteStore, clock: Clock, stores: Stores
) -> None:
    await put(store, MASK, 100, 1, ttl=10)
    clock.advance(11)
    assert await stores.count_rows("conversations", "conv.sqlite3") == 1
    assert await store.end_conversation(MASK, 100, 1) is None
    assert await stores.count_rows("conversations", "conv.sqlite3") == 0
    assert await store.prune_conversations() == 0


async def test_prune_deletes_exactly_the_expired(store: SqliteStore, clock: Clock) -> None:
    await put(store, MASK, 100, 1, ttl=10)
    await put(store, PICK, 100, 2, ttl=20)
    kept = await put(store, MASK, 100, 3, ttl=30)
    assert await store.prune_conversations() == 0
    clock.advance(20)  # the first is past its deadline, the second exactly at it
    assert await store.prune_conversations() == 2
    assert await store.prune_conversations() == 0
    clock.now = START  # back in time: the pruned rows are really gone, the third is not
    assert await store.get_conversation(MASK, 100, 1) is None
    assert await store.get_conversation(PICK, 100, 2) is None
    assert await store.get_conversation(MASK, 100, 3) == kept


# --- delivered file ids ------------------------------------------------------------------------


def new_job(user_id: int, n: int = 2) -> NewJob:
    return NewJob(user_id=user_id, chat_id=user_id, request_message_id=5, command="edit",
                  model="qwen-image-edit", function=None, spec_json="{}", input_file_id="in",
                  images_requested=n)


async def test_mark_delivered_keeps_the_file_ids(
    store: SqliteStore, stores: Stores, clock: Clock
) -> None:
    await store.touch_user(1, None, "U", None)
    job = await store.create_job(new_job(1))
    assert job.result_file_ids == ()
    with pytest.raises(IllegalTransitionError):  # queued cannot be delivered: nothing written
        await store.mark_delivered(job.id, 2, ("early",))
    assert (await store.get_job(job.id)).result_file_ids == ()
    await store.mark_succeeded(job.id, ("u1", "u2"))
    delivered = await store.mark_delivered(job.id, 2, ("f1", "f2"))
    assert delivered.result_file_ids == ("f1", "f2")
    assert delivered.result_urls == ("u1", "u2")
    assert not delivered.reservation_open and delivered.images_delivered == 2
    assert (await store.get_job(job.id)).result_file_ids == ("f1", "f2")

    other = await store.create_job(new_job(1, 1))
    await store.mark_succeeded(other.id, ("u",))
    assert (await store.mark_delivered(other.id, 1)).result_file_ids == ()

    await store.close()
    async with await stores.open("conv.sqlite3", default_limit=5, tz=SHANGHAI,
                                 clock=clock) as reopened:
        assert (await reopened.get_job(job.id)).result_file_ids == ("f1", "f2")


# --- migration ---------------------------------------------------------------------------------


def write_v2_database(path: Path) -> None:
    """A database as release 2 left it: the first two migrations, and settings in use."""
    stamp = "2026-11-01T00:00:00.000000+00:00"
    with sqlite3.connect(path) as db:
        for migration in MIGRATIONS[:2]:
            for statement in migration.statements:
                db.execute(statement)
        db.execute("INSERT INTO users (user_id, display_name, created_at, last_seen_at)"
                   " VALUES (1, 'Old user', ?, ?)", (stamp, stamp))
        for job_id in (1, 2, 3):
            db.execute(
                "INSERT INTO jobs (id, user_id, chat_id, request_message_id, command, model,"
                " spec_json, input_file_id, state, quota_month, images_requested,"
                " reservation_open, created_at, updated_at) VALUES (?, 1, 1, 1, 'edit',"
                " 'qwen-image-edit', '{}', 'f', 'queued', '2026-11', 2, 1, ?, ?)",
                (job_id, stamp, stamp),
            )
        db.executemany(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)",
            [
                ("results:1", '["a","b"]', stamp),
                ("results:2", "not json", stamp),  # never written, but must not break job 2
                ("results:99", '["gone"]', stamp),  # no such job
                ("maskwait:1:2", '{"job": 1}', stamp),
                ("pick:1:3", '{"choices": ["x"]}', stamp),
                ("alert:X", "keep", stamp),
                ("pickup", "keep too", stamp),  # shares a prefix with pick, but not pick:
            ],
        )
        db.execute("PRAGMA user_version = 2")
    db.close()


async def test_opening_a_v2_database_migrates_it(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "v2.sqlite3"
    write_v2_database(path)
    async with await SqliteStore.open(path, default_limit=5, tz=SHANGHAI,
                                      clock=clock) as store:
        assert (await store.get_job(1)).result_file_ids == ("a", "b")
        assert (await store.get_job(2)).result_file_ids == ()
        assert (await store.get_job(3)).result_file_ids == ()
        for gone in ("results:1", "results:2", "results:99", "maskwait:1:2", "pick:1:3"):
            assert await store.get_setting(gone) is None, gone
        assert await store.get_setting("alert:X") == "keep"
        assert await store.get_setting("pickup") == "keep too"
        started = await put(store, PICK, 1, 3)  # the new table works
        assert await store.get_conversation(PICK, 1, 3) == started
    with sqlite3.connect(path) as db:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        indexes = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'conversations'"
        )}
    db.close()
    assert version == LATEST_VERSION == 8
    assert "conversations_expires_at" in indexes
