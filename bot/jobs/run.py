"""Running jobs: workers take queued jobs in fair order, submit them, wait, hand results on.

wanx jobs are submitted within the adapter's QPS and in-flight caps and waited for through its
poller; the task id is stored as soon as it is known, so a restart polls the same task instead of
paying for a second one. qwen jobs are one synchronous call.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import TypeVar

from bot.alerts import AdminAlerts
from bot.bailian import BailianClient
from bot.bailian.models import EditRequest, Model, TaskOutcome
from bot.errors import (
    BotError,
    DashScopeError,
    ImageError,
    RequestValidationError,
    RetryableError,
    StoreUnavailableError,
    TaskFailedError,
)
from bot.jobs.deliver import Deliverer
from bot.jobs.inputs import Inputs
from bot.jobs.notify import Failures, StatusLines
from bot.jobs.persist import persist
from bot.jobs.queue import RENEW_INTERVAL, WorkQueue
from bot.jobs.requests import JobSpec
from bot.logging_setup import job_fields
from bot.texts import Lang, text
from storage.models import Job, JobState, Store

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long a job not yet submitted waits out an outage before it is refunded
# (DASHSCOPE_OUTAGE_WAIT).
OUTAGE_WAIT = 300.0
# Pauses between attempts to submit through an outage double up to this; the first is a tenth
# of the outage wait, at most a second.
MAX_OUTAGE_PAUSE = 30.0
# How often unfinished jobs nobody works on (a state write that failed, a crashed resumption)
# are looked for and picked up again.
SWEEP_INTERVAL = 60.0
# With several instances on one database, the leader looks this often for jobs other instances
# queued and for jobs a dead leader left once their claims ran out (bot/jobs/queue.py).
WATCH_INTERVAL = 1.0
# A new leader looks this often whether another instance's claims on submitted jobs ended.
TAKE_OVER_POLL = 0.25
# How long a stop waits for a submit that may have reached DashScope to come back with its task
# id. A submit answers within a second or two; one still out after this is given up, and its job
# is submitted again by whoever runs the jobs next (with deliveries' 15 s, a stop stays within
# compose.yaml's 40 s grace).
SUBMIT_GRACE = 10.0
# A job whose state has not changed for this many seconds is reported to the admins as stuck
# (at most hourly): far past the outage wait and a task's usual minute, far short of the 24 h a
# submitted task may be polled through errors.
STUCK_AFTER = 1800.0


def waiting_text(lang: Lang, ahead: int) -> str:
    """A taken wanx job waiting for a task slot, ``ahead`` others before it.

    The count is the client's line of slot waiters (other workers' submits, resumed tasks) as
    the wait starts; it is not updated while the line moves.
    """
    return text("status_waiting_slot", lang, ahead=ahead)


class _StatusLine:
    """A running job's status line as this worker set it: edited only when the words change."""

    def __init__(self, status: StatusLines, job: Job) -> None:
        self._status = status
        self._job = job
        self._shown: str | None = None

    async def say(self, message: str) -> None:
        if message != self._shown:
            self._shown = message
            await self._status.show(self._job, message, force=True)


class Workers:
    """The worker loops, and the resumption of jobs a restart found half done."""

    def __init__(
        self, *, store: Store, client: BailianClient, queue: WorkQueue, inputs: Inputs,
        status: StatusLines, failures: Failures, deliverer: Deliverer, alerts: AdminAlerts,
        wanx_workers: int, qwen_workers: int, outage_wait: float = OUTAGE_WAIT,
        sweep_interval: float = SWEEP_INTERVAL, stuck_after: float = STUCK_AFTER,
        watch_interval: float | None = None, clock: Callable[[], float] = time.monotonic,
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
        self._renewer: asyncio.Task[None] | None = None
        # Submits under way, with whether their request may have been sent (see _submit).
        self._submits: dict[asyncio.Task[Job], asyncio.Event] = {}
        self._watch_interval = watch_interval
        self._resumed: dict[int, asyncio.Task[None]] = {}  # job id -> its resumption
        self._stopping = False
        self._sweep_interval = sweep_interval
        self._stuck_after = stuck_after
        self._alerts = alerts
        self._outage_wait = outage_wait
        self._clock = clock

    async def start(self) -> int:
        """Resume unfinished jobs, then start the workers and the sweep; returns how many
        unfinished jobs were taken up again (queued ones included). Once stopped, they may be
        started again (a leader elected anew)."""
        self._stopping = False
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_claims())
        resumed = await self._take_over_submitted()
        queued = len(await self._store.queued_jobs_fair())
        for model, count in self._counts.items():
            self._tasks.extend(asyncio.create_task(self._work(model)) for _ in range(count))
        self._tasks.append(asyncio.create_task(self._sweep()))
        if self._watch_interval is not None:
            self._tasks.append(asyncio.create_task(self._watch(self._watch_interval)))
        self._queue.wake()
        return resumed + queued

    async def stop(self) -> None:
        """Cancel the workers and resumptions; what they were doing stays resumable."""
        self._stopping = True
        tasks = [*self._tasks, *self._resumed.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await self._finish_submits()
        # From here on this instance makes no DashScope request for the jobs (the next leader
        # follows their tasks); deliveries under way still download their results.
        await self._client.stand_down()

    async def let_go(self) -> None:
        """After :meth:`stop` and the last deliveries: stop renewing this instance's claims and
        drop them, so that another instance may take the jobs at once instead of after their
        leases (best effort: unrenewed, they end anyway)."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
        try:
            await self._store.release_claims(self._queue.owner)
        except BotError as exc:
            logger.warning("claims not released (%s); they end with their leases", exc)

    async def _renew_claims(self) -> None:
        while True:
            await asyncio.sleep(RENEW_INTERVAL)
            try:
                await self._store.renew_claims(self._queue.owner, self._queue.lease)
            except BotError as exc:
                logger.error("claims not renewed (%s); trying again in %.0f s", exc,
                             RENEW_INTERVAL)

    async def _take_over_submitted(self) -> int:
        """Resume what was left, and before any new submit wait (at most a lease) for the tasks
        another instance submitted: they hold DashScope's slots until they end, so submitting
        beside them would go past the account's cap. Returns how many jobs were resumed."""
        deadline = self._clock() + self._queue.lease.total_seconds() + RENEW_INTERVAL
        resumed = 0
        while True:
            unfinished = await self._store.resumable_jobs()
            resumed += await self._resume_unattended(unfinished)
            held_elsewhere = [job for job in unfinished
                              if job.state is JobState.SUBMITTED and job.id not in self._resumed]
            if not held_elsewhere or self._clock() >= deadline:
                await asyncio.sleep(0)  # the resumptions ask for their slots first
                return resumed
            await asyncio.sleep(TAKE_OVER_POLL)

    async def _resume_unattended(self, unfinished: list[Job] | None = None) -> int:
        """Continue every submitted or succeeded job nobody here works on (of ``unfinished``
        when the caller read them already); returns how many."""
        resumed = 0
        if unfinished is None:
            unfinished = await self._store.resumable_jobs()
        for job in unfinished:
            if job.state is JobState.QUEUED:
                continue  # the workers take it in fair order
            if job.id in self._resumed or self._queue.is_claimed(job.id):
                continue
            if job.album_id is not None and self._deliverer.watches(job.album_id):
                continue  # its album's watcher here delivers it with the others
            if await self._queue.claim(job.id) is None:
                continue  # another instance has it (a leader that may still be alive)
            await persist(functools.partial(self._store.note_attempt, job.id),
                          f"job {job.id}: attempt")
            logger.info("resuming job %s in state %s", job.id, job.state, extra=job_fields(job))
            if job.state is JobState.SUBMITTED:
                self._spawn_resumed(job.id, self._continue_submitted(job))
            elif job.state is JobState.SUCCEEDED:
                self._spawn_resumed(job.id, self._deliverer.deliver_shielded(job))
            resumed += 1
        return resumed

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            await self.sweep_once()

    async def sweep_once(self) -> None:
        """Report stuck jobs, resume unattended ones, wake the workers (the sweep's round)."""
        await self._report_stuck()  # first: a resumption counts as a change of the job
        try:
            if found := await self._resume_unattended():
                logger.warning("sweep: %d unfinished jobs nobody worked on resumed", found)
        except StoreUnavailableError as exc:
            logger.error("sweep: the database is unavailable (%s)", exc)
        self._queue.wake()  # queued jobs a failed write left unclaimed

    async def _watch(self, interval: float) -> None:
        """Several instances: take up what others left (see WATCH_INTERVAL)."""
        while True:
            await asyncio.sleep(interval)
            try:
                if found := await self._resume_unattended():
                    logger.info("took up %d unfinished jobs another instance left", found)
                if await self._queue.waiting():
                    self._queue.wake()
            except BotError as exc:
                logger.error("watch: the database is unavailable (%s)", exc)

    async def _report_stuck(self) -> None:
        """Jobs unchanged for STUCK_AFTER seconds: logged each round, the admins told hourly."""
        try:
            stuck = await self._store.stuck_jobs(timedelta(seconds=self._stuck_after))
            if not stuck:
                return
            logger.warning("sweep: %d jobs unchanged for over %.0f s: %s", len(stuck),
                           self._stuck_after, ", ".join(f"#{job.id}" for job in stuck[:10]))
            await self._alerts.stuck(stuck, max(1, round(self._stuck_after / 60)))
        except BotError as exc:
            logger.error("sweep: stuck jobs could not be reported (%s)", exc)

    def _spawn_resumed(self, job_id: int, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._resumed[job_id] = task
        task.add_done_callback(lambda _: self._resumed.pop(job_id, None))

    async def _work(self, model: Model) -> None:
        while not self._stopping:
            # Claimed in the store while still queued: a cancel can no longer win.
            job = await self._queue.claim_next(model)
            try:
                await self.run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug, not a foreseen failure: refund and tell the user rather than lose the job,
                # and keep this worker alive whatever happens.
                logger.exception("job %s crashed", job.id, extra=job_fields(job))
                try:
                    await self._failures.fail(job, BotError("internal error"))
                except Exception:
                    logger.exception("job %s could not be failed cleanly", job.id)
            finally:
                self._queue.release(job.id)

    async def run(self, job: Job) -> None:
        """One queued job, from its images to the delivered result (or its failure)."""
        spec = JobSpec.of(job)
        line = _StatusLine(self._status, job)
        working = text("status_working", spec.lang)
        slots = self._client.slots
        if job.model == Model.QWEN_IMAGE_EDIT.value or slots.free:  # qwen takes no slot
            await line.say(working)
        else:  # a first guess while the images are prepared; submit tells how it really goes
            await line.say(waiting_text(spec.lang, slots.waiting))
        try:
            request = await self._inputs.request(spec.parsed, job.input_file_id, job.mask_file_id,
                                                 job.mask_png)
            if job.model == Model.QWEN_IMAGE_EDIT.value:
                outcome = await self._through_outage(job, lambda: self._client.edit_sync(request))
            else:
                job = await self._submit(job, request, line)
                assert job.task_id is not None
                outcome = await self._client.wait(job.task_id, on_trouble=self._tell_slow(job))
        except (DashScopeError, ImageError, RequestValidationError) as exc:
            await self._failures.fail(job, exc)
            return
        await self._finish_task(job, outcome)

    async def _submit(self, job: Job, request: EditRequest, line: _StatusLine) -> Job:
        """Create the job's task and record its id; the job as recorded.

        Once a slot is granted the request may be on its way, and DashScope cannot be asked for
        a task whose id we never read: a stop from then on (leadership lost, SIGTERM) lets the
        submit finish and its id be recorded (up to SUBMIT_GRACE) instead of cancelling it, so
        whoever runs the jobs next follows that task rather than paying for a second one.
        """
        lang = JobSpec.of(job).lang
        sending = asyncio.Event()

        async def on_slot() -> None:
            sending.set()
            await line.say(text("status_working", lang))

        async def submit_and_record() -> Job:
            task_id = await self._through_outage(job, lambda: self._client.submit(
                request, on_wait=lambda ahead: line.say(waiting_text(lang, ahead)),
                on_slot=on_slot,
            ))
            recorded = await persist(lambda: self._store.mark_submitted(job.id, task_id),
                                     f"job {job.id}: submitted as {task_id}")
            logger.info("job %s submitted as task %s", job.id, task_id,
                        extra=job_fields(recorded))
            return recorded

        submit = asyncio.create_task(submit_and_record())
        self._submits[submit] = sending
        submit.add_done_callback(lambda done: self._submits.pop(done, None))
        return await asyncio.shield(submit)

    async def _finish_submits(self) -> None:
        """At a stop: submits still waiting for a slot are cancelled (nothing was sent); those
        that may have reached DashScope get SUBMIT_GRACE to come back and be recorded."""
        submits = list(self._submits.items())
        sent = [submit for submit, sending in submits if sending.is_set()]
        for submit, sending in submits:
            if not sending.is_set():
                submit.cancel()
        if sent:
            _, late = await asyncio.wait(sent, timeout=SUBMIT_GRACE)
            for submit in late:
                logger.warning("a submit did not come back within %.0f s of the stop; its job "
                               "will be submitted again", SUBMIT_GRACE)
                submit.cancel()
        await asyncio.gather(*(submit for submit, _ in submits), return_exceptions=True)

    async def _through_outage(self, job: Job, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` (a submit or a qwen call, nothing paid yet), tried again through an
        outage for up to the outage wait; the status line says so once."""
        give_up_at = self._clock() + self._outage_wait
        pause = min(1.0, self._outage_wait / 10)
        told = False
        while True:
            try:
                return await call()
            except RetryableError as exc:
                remaining = give_up_at - self._clock()
                if remaining <= 0:
                    raise
                pause = min(pause, remaining)  # the last attempt comes at the deadline
                logger.warning("job %s: the service is down (%s); trying again in %.1f s",
                               job.id, exc.code, pause)
            if not told:
                await self._status.show(
                    job, text("status_service_down", JobSpec.of(job).lang), force=True
                )
                told = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_OUTAGE_PAUSE)

    def _tell_slow(self, job: Job) -> Callable[[], Awaitable[None]]:
        """Said once when polls of the job's task meet the service down: it keeps polling."""
        async def tell() -> None:
            await self._status.show(job, text("status_service_slow", JobSpec.of(job).lang),
                                    force=True)
        return tell

    async def _continue_submitted(self, job: Job) -> None:
        assert job.task_id is not None
        try:
            outcome = await self._client.wait(job.task_id, on_trouble=self._tell_slow(job))
        except DashScopeError as exc:
            await self._failures.fail(job, exc)
            return
        await self._finish_task(job, outcome)

    async def _finish_task(self, job: Job, outcome: TaskOutcome) -> None:
        if not outcome.urls:
            no_image = TaskFailedError("NoImage", "the task produced no image")
            await self._failures.fail(job, no_image)
            return
        job = await persist(lambda: self._store.mark_succeeded(job.id, outcome.urls),
                            f"job {job.id}: succeeded")
        await self._deliverer.deliver_shielded(job)
