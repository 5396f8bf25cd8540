"""The leader election (bot/leader.py) against the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from bot.errors import StoreUnavailableError
from bot.leader import Election, Role, SoleInstance, asyncpg_dsn, leadership_for
from tests.harness import wait_until

FAST = {"retry_interval": 0.1, "check_interval": 0.1}


class Journal:
    """What one election reported, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def elected(self) -> None:
        self.events.append("elected")

    async def lost(self) -> None:
        self.events.append("lost")


def candidates(postgres_url: str, count: int, key: int) -> list[tuple[Election, Journal]]:
    pairs = []
    for _ in range(count):
        journal = Journal()
        pairs.append((Election(postgres_url, on_elected=journal.elected, on_lost=journal.lost,
                               key=key, **FAST), journal))
    return pairs


async def test_one_leader_of_three_and_a_stopped_leaders_successor_within_a_second(
    postgres_url: str,
) -> None:
    group = candidates(postgres_url, 3, key=101)
    for election, _ in group:
        await election.start()
    try:
        await wait_until(lambda: any(election.is_leader for election, _ in group), timeout=5)
        for _ in range(10):  # it stays one while the others keep trying
            assert sum(election.is_leader for election, _ in group) == 1
            await asyncio.sleep(0.05)
        [(leader, journal)] = [pair for pair in group if pair[0].is_leader]
        started = time.monotonic()
        await leader.stop()
        assert leader.role is Role.FOLLOWER and journal.events == ["elected", "lost"]
        await wait_until(lambda: any(election.is_leader for election, _ in group), timeout=5)
        assert time.monotonic() - started < 1.0
        assert sum(election.is_leader for election, _ in group) == 1
    finally:
        for election, _ in group:
            await election.stop()


async def test_a_lost_connection_is_lost_leadership_at_once(postgres_url: str) -> None:
    [(leader, journal), (follower, _)] = candidates(postgres_url, 2, key=102)
    await leader.start()
    await wait_until(lambda: leader.is_leader, timeout=5)
    await follower.start()
    admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        # The server ends the leader's backend, as a restart or a broken network would.
        killed = await admin.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND objid = $1 AND granted", 102,
        )
        assert killed
        await wait_until(lambda: "lost" in journal.events, timeout=2)
        await wait_until(lambda: leader.is_leader or follower.is_leader, timeout=5)
        assert not (leader.is_leader and follower.is_leader)
    finally:
        await admin.close()
        await leader.stop()
        await follower.stop()


async def test_a_failing_start_hook_steps_down_and_the_election_goes_on(
    postgres_url: str,
) -> None:
    # The pipeline may fail to start (the store unreachable for a moment): the lock is given
    # back and taken again later, never kept by an instance that runs nothing.
    journal = Journal()
    failures = 2

    async def elected() -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise StoreUnavailableError("the store is down")
        await journal.elected()

    election = Election(postgres_url, on_elected=elected, on_lost=journal.lost, key=103, **FAST)
    await election.start()
    try:
        await wait_until(lambda: "elected" in journal.events, timeout=5)
        assert election.is_leader and failures == 0
    finally:
        await election.stop()
    # Each failed start was undone (on_lost stops whatever it had started).
    assert journal.events == ["lost", "lost", "elected", "lost"]


async def test_the_sole_instance_of_an_sqlite_file_leads_from_start_to_stop() -> None:
    journal = Journal()
    leadership = leadership_for("sqlite:///bot.sqlite3", on_elected=journal.elected,
                                on_lost=journal.lost)
    assert isinstance(leadership, SoleInstance) and leadership.role is Role.FOLLOWER
    await leadership.start()
    assert leadership.is_leader and journal.events == ["elected"]
    await leadership.stop()
    await leadership.stop()
    assert leadership.role is Role.FOLLOWER and journal.events == ["elected", "lost"]
    assert isinstance(leadership_for("postgresql://u@h/db", on_elected=journal.elected,
                                     on_lost=journal.lost), Election)
