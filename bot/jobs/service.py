"""The pipeline's one face to the handlers: accept, check, start, stop."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from enum import StrEnum

from bot.alerts import AdminAlerts
from bot.bailian import BailianClient
from bot.commands import ParsedCommand
from bot.errors import BotError
from bot.jobs.accept import Acceptor
from bot.jobs.deliver import RESULT_PATIENCE, Deliverer
from bot.jobs.inputs import Inputs, check_options
from bot.jobs.notify import Failures, StatusLines
from bot.jobs.persist import persist
from bot.jobs.presses import Presses
from bot.jobs.queue import WorkQueue
from bot.jobs.requests import AcceptResult, AlbumImage, JobSpec, Requester
from bot.jobs.run import OUTAGE_WAIT, STUCK_AFTER, SWEEP_INTERVAL, Workers
from bot.metrics import Metrics
from bot.ports import Messenger
from bot.texts import text
from storage.models import Job, JobState, Store


class CancelOutcome(StrEnum):
    CANCELED = "canceled"  # refunded; it never reached DashScope
    TOO_LATE = "too_late"  # a worker has it: it runs to its end
    GONE = "gone"  # already delivered, failed or cancelled


class JobService:
    """Wires the stages together; handlers use only the methods below."""

    def __init__(
        self,
        *,
        store: Store,
        client: BailianClient,
        messenger: Messenger,
        admin_ids: Iterable[int] = (),
        wanx_workers: int = 3,
        qwen_workers: int = 2,
        outage_wait: float = OUTAGE_WAIT,
        sweep_interval: float = SWEEP_INTERVAL,
        task_patience: float = RESULT_PATIENCE,
        budget_yuan: Decimal | None = None,
        images_for_sale: bool = False,
        stuck_after: float = STUCK_AFTER,
        watch_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        admins = frozenset(admin_ids)
        self._store = store
        self.alerts = AdminAlerts(store, messenger, admins)
        self.queue = WorkQueue(store)
        self.presses = Presses(store)
        self.inputs = Inputs(messenger)
        self.status = StatusLines(messenger, self.queue, store, clock=clock)
        self.failures = Failures(store, messenger, self.status, admins, alerts=self.alerts)
        self.deliverer = Deliverer(store=store, client=client, messenger=messenger,
                                   status=self.status, failures=self.failures, admin_ids=admins,
                                   patience=task_patience, metrics=metrics)
        self.acceptor = Acceptor(store=store, messenger=messenger, inputs=self.inputs,
                                 queue=self.queue, status=self.status, alerts=self.alerts,
                                 budget_yuan=budget_yuan, images_for_sale=images_for_sale,
                                 metrics=metrics)
        self.workers = Workers(store=store, client=client, queue=self.queue, inputs=self.inputs,
                               status=self.status, failures=self.failures,
                               deliverer=self.deliverer, alerts=self.alerts,
                               wanx_workers=wanx_workers, qwen_workers=qwen_workers,
                               outage_wait=outage_wait, sweep_interval=sweep_interval,
                               stuck_after=stuck_after, watch_interval=watch_interval)

    async def start(self) -> int:
        """Resume unfinished jobs and start the workers; returns how many jobs were resumed.

        Only one instance sharing a database runs them at a time (bot/leader.py); the others
        accept requests, which wait in the store for it.
        """
        return await self.workers.start()

    async def stop(self) -> None:
        """Stop taking work; let deliveries under way finish; leave the rest resumable, and
        free for another instance to take at once."""
        await self.workers.stop()
        await self.status.stop()
        await self.deliverer.drain()
        await self.workers.let_go()

    def wake(self) -> None:
        self.queue.wake()

    async def accept(
        self, who: Requester, parsed: ParsedCommand, input_file_id: str, *,
        mask_file_id: str | None = None, mask_png: bytes | None = None,
    ) -> AcceptResult:
        """Check, reserve, persist and answer; see :mod:`bot.jobs.accept`."""
        return await self.acceptor.accept(who, parsed, input_file_id, mask_file_id, mask_png)

    async def precheck(self, who: Requester, parsed: ParsedCommand) -> BotError | None:
        """Why ``accept`` would refuse ``who`` at once (ban, quota, spend cap), or None.

        Cheap (reads only): a button press is answered with it before anything slow runs.
        """
        return await self.acceptor.precheck(who, parsed)

    async def accept_album(
        self, who: Requester, parsed: ParsedCommand, images: Sequence[AlbumImage]
    ) -> AcceptResult:
        """The same for every image of an album at once; see :mod:`bot.jobs.accept`."""
        return await self.acceptor.accept_album(who, parsed, images)

    async def cancel(self, job: Job) -> CancelOutcome:
        """Cancel a job that still waits for a slot: refunded, never sent to DashScope.

        A job a worker has taken may be on its way to DashScope already, and a submitted task
        cannot be recalled: those are not cancelled.
        """
        current = await persist(lambda: self._store.get_job(job.id), f"job {job.id}")
        if current.album_id is not None:
            return await self._cancel_album(current)
        if current.state.is_final:
            return CancelOutcome.GONE
        # The store decides between this cancel and a worker's claim, on any instance.
        if current.state is not JobState.QUEUED or await persist(
            lambda: self._store.cancel_unclaimed(job.id), f"job {job.id}: cancel"
        ) is None:
            return CancelOutcome.TOO_LATE
        lang = JobSpec.of(current).lang
        await self.status.show(current, text("cancelled_job", lang), force=True)
        return CancelOutcome.CANCELED

    async def _cancel_album(self, lead: Job) -> CancelOutcome:
        """The ✖ on an album's status line (its first job's): every job of it still waiting is
        cancelled; those a worker has taken run to their end and come back as a smaller album."""
        album_id = lead.album_id
        assert album_id is not None
        jobs = await persist(lambda: self._store.album_jobs(album_id), f"album {album_id}")
        if all(job.state.is_final for job in jobs):
            return CancelOutcome.GONE
        canceled = 0
        for job in jobs:
            if job.state is not JobState.QUEUED or await persist(
                functools.partial(self._store.cancel_unclaimed, job.id), f"job {job.id}: cancel"
            ) is None:
                continue
            canceled += 1
        if not canceled:
            return CancelOutcome.TOO_LATE
        await self.status.show(lead, text("cancelled_job", JobSpec.of(lead).lang), force=True)
        return CancelOutcome.CANCELED

    async def check_before_mask(self, parsed: ParsedCommand, input_file_id: str) -> None:
        """Options and base image of a masked request, checked before asking for the mask.

        Raises RequestValidationError or ImageError.
        """
        check_options(parsed, with_mask=True)
        await self.inputs.image(input_file_id, parsed.spec.model)

    async def check_mask(
        self, parsed: ParsedCommand, input_file_id: str, mask_file_id: str, *,
        unless_photo: bool = False,
    ) -> bool:
        """Whether a mask fits its base image: raises ImageError if not. With ``unless_photo``,
        an image that does not look like a mask is left alone and the answer is False."""
        base = await self.inputs.image(input_file_id, parsed.spec.model)
        size = (base.width, base.height)
        if unless_photo:
            return await self.inputs.mask_if_mask_like(mask_file_id, size) is not None
        await self.inputs.mask(mask_file_id, size)
        return True
