"""Running jobs: workers take queued jobs in fair order, submit them, wait, hand results on.

wanx jobs are submitted within the adapter's QPS and in-flight caps and waited for through its
poller; the task id is stored as soon as it is known, so a restart polls the same task instead of
paying for a second one. qwen jobs are one synchronous call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine

from bot.bailian import BailianClient
from bot.bailian.models import Model, TaskOutcome
from bot.errors import (
    BotError,
    DashScopeError,
    ImageError,
    RequestValidationError,
    TaskFailedError,
)
from bot.jobs.deliver import Deliverer
from bot.jobs.inputs import Inputs
from bot.jobs.notify import Failures, StatusLines
from bot.jobs.queue import WorkQueue
from bot.jobs.requests import JobSpec
from bot.texts import text
from storage.models import Job, JobState, Store

logger = logging.getLogger(__name__)


class Workers:
    """The worker loops, and the resumption of jobs a restart found half done."""

    def __init__(
        self, *, store: Store, client: BailianClient, queue: WorkQueue, inputs: Inputs,
        status: StatusLines, failures: Failures, deliverer: Deliverer,
        wanx_workers: int, qwen_workers: int,
    ) -> None:
        self._store = store
        self._client = client
        self._queue = queue
        self._inputs = inputs
        self._status = status
        self._failures = failures
        self._deliverer = deliverer
        self._counts = {Model.WANX_IMAGE_EDIT: wanx_workers, Model.QWEN_IMAGE_EDIT: qwen_workers}
        self._tasks: list[asyncio.Task[None]] = []
        self._resumed: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        """Resume unfinished jobs, then start the workers."""
        for job in await self._store.resumable_jobs():
            if job.state is JobState.QUEUED:
                continue  # the workers take it in fair order
            await self._store.note_attempt(job.id)
            logger.info("resuming job %s in state %s", job.id, job.state)
            if job.state is JobState.SUBMITTED:
                self._spawn_resumed(self._continue_submitted(job))
            elif job.state is JobState.SUCCEEDED:
                self._spawn_resumed(self._deliverer.deliver(job))
        for model, count in self._counts.items():
            self._tasks.extend(asyncio.create_task(self._work(model)) for _ in range(count))
        self._queue.wake()

    async def stop(self) -> None:
        """Cancel the workers and resumptions; what they were doing stays resumable."""
        self._stopping = True
        tasks = [*self._tasks, *self._resumed]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn_resumed(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._resumed.add(task)
        task.add_done_callback(self._resumed.discard)

    async def _work(self, model: Model) -> None:
        while not self._stopping:
            job = await self._queue.claim_next(model)
            try:
                await self.run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug, not a foreseen failure: refund and tell the user rather than lose the job,
                # and keep this worker alive whatever happens.
                logger.exception("job %s crashed", job.id)
                try:
                    await self._failures.fail(job, BotError("internal error"))
                except Exception:
                    logger.exception("job %s could not be failed cleanly", job.id)
            finally:
                self._queue.release(job.id)

    async def run(self, job: Job) -> None:
        """One queued job, from its images to the delivered result (or its failure)."""
        spec = JobSpec.of(job)
        await self._status.show(job, text("status_working", spec.lang), force=True)
        try:
            request = await self._inputs.request(spec.parsed, job.input_file_id, job.mask_file_id)
            if job.model == Model.QWEN_IMAGE_EDIT.value:
                outcome = await self._client.edit_sync(request)
            else:
                task_id = await self._client.submit(request)
                job = await self._store.mark_submitted(job.id, task_id)
                outcome = await self._client.wait(task_id)
        except (DashScopeError, ImageError, RequestValidationError) as exc:
            await self._failures.fail(job, exc)
            return
        await self._finish_task(job, outcome)

    async def _continue_submitted(self, job: Job) -> None:
        assert job.task_id is not None
        try:
            outcome = await self._client.wait(job.task_id)
        except DashScopeError as exc:
            await self._failures.fail(job, exc)
            return
        await self._finish_task(job, outcome)

    async def _finish_task(self, job: Job, outcome: TaskOutcome) -> None:
        if not outcome.urls:
            no_image = TaskFailedError("NoImage", "the task produced no image")
            await self._failures.fail(job, no_image)
            return
        job = await self._store.mark_succeeded(job.id, outcome.urls)
        await self._deliverer.deliver_shielded(job)
