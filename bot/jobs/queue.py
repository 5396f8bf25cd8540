"""The queue of jobs waiting for a worker: fair order from the store, claims in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.bailian.models import Model
from storage.models import Job, Store


class WorkQueue:
    """Hands queued jobs to workers, one worker per job, and tells who waits where."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._wake = asyncio.Event()
        self._claimed: set[int] = set()
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

    async def claim_next(self, model: Model) -> Job:
        """Wait for the next queued job of ``model`` and claim it."""
        while True:
            self._wake.clear()
            for job in await self._store.queued_jobs_fair():
                if job.model == model.value and job.id not in self._claimed:
                    self._claimed.add(job.id)
                    self.on_claimed(job.id)
                    return job
            await self._wake.wait()

    def is_claimed(self, job_id: int) -> bool:
        return job_id in self._claimed

    def hold(self, job_id: int) -> bool:
        """Keep workers off a job (to cancel it); False if a worker has it already."""
        if job_id in self._claimed:
            return False
        self._claimed.add(job_id)
        return True

    def release(self, job_id: int) -> None:
        """The worker is done with the job (whatever its outcome)."""
        self._claimed.discard(job_id)
        self._wake.set()
