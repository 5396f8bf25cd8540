"""The queue of jobs waiting for a worker: fair order from the store, claims in the store.

Several instances may share one database, but only the leader runs workers (bot/leader.py).
A worker takes a job by claiming it in the store for this instance (``owner``) with a lease
that the instance renews while it lives (bot/jobs/run.py); a claim whose lease ran out belongs
to nobody, so a new leader takes over the jobs of one that died once their leases end. The
claim is also what a cancel races against: the store decides, in one transaction each, whether
the worker or the cancel came first (:meth:`storage.models.Store.cancel_unclaimed`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import socket
from collections.abc import Callable
from datetime import timedelta

from bot.bailian.models import Model
from bot.jobs.persist import persist
from storage.models import Job, JobState, Store

# How long a claim holds unless renewed, and how often a living instance renews its claims:
# three renewals fit in a lease, so a slow database write or two do not lose a job, and a dead
# instance's jobs are free again at most LEASE after its last renewal.
LEASE = timedelta(seconds=6)
RENEW_INTERVAL = 2.0


def instance_owner() -> str:
    """This process's name in ``jobs.claimed_by``: host, pid and a random tail (a pid is
    reused by the next process in a container)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class WorkQueue:
    """Hands queued jobs to workers, one worker per job, and tells who waits where."""

    def __init__(self, store: Store, *, owner: str | None = None,
                 lease: timedelta = LEASE) -> None:
        self._store = store
        self.owner = owner or instance_owner()
        self.lease = lease
        self._wake = asyncio.Event()
        self._claimed: set[int] = set()  # by this instance's workers
        # Called with the claimed job's id: everyone behind it moved up one place.
        self.on_claimed: Callable[[int], None] = lambda job_id: None

    def wake(self) -> None:
        """Something changed (a job queued, a worker free): let waiting workers look again."""
        self._wake.set()

    async def waiting(self) -> list[Job]:
        """Queued jobs no worker has taken yet, in the order they will be taken."""
        return [job for job in await self._store.queued_jobs_fair()
                if job.id not in self._claimed]

    async def position(self, job_id: int) -> int:
        """1-based place of a waiting job (1 if it is not waiting any more)."""
        waiting = await self.waiting()
        return next((i for i, job in enumerate(waiting, start=1) if job.id == job_id), 1)

    async def claim(self, job_id: int) -> Job | None:
        """Claim a job in the store for this instance (any unfinished state); None when another
        instance's claim holds or it is final."""
        return await persist(functools.partial(self._store.claim_job, job_id, self.owner,
                                               self.lease), f"job {job_id}: claim")

    async def claim_next(self, model: Model) -> Job:
        """Wait for the next queued job of ``model`` and claim it; the job as claimed."""
        while True:
            self._wake.clear()
            for job in await self._store.queued_jobs_fair():
                if job.model != model.value or job.id in self._claimed:
                    continue
                self._claimed.add(job.id)  # first: no other worker here tries it meanwhile
                claimed = await self.claim(job.id)
                if claimed is None or claimed.state is not JobState.QUEUED:
                    self._claimed.discard(job.id)  # cancelled, or another instance has it
                    continue
                self.on_claimed(job.id)
                return claimed
            await self._wake.wait()

    def is_claimed(self, job_id: int) -> bool:
        return job_id in self._claimed

    def release(self, job_id: int) -> None:
        """The worker is done with the job (whatever its outcome)."""
        self._claimed.discard(job_id)
        self._wake.set()
