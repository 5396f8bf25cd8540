"""What the pipeline tells people: status lines, failures, and alerts for the admins."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from bot.alerts import AdminAlerts
from bot.callback_data import CancelJob
from bot.errors import AccountError, BotError
from bot.jobs.persist import persist
from bot.jobs.queue import WorkQueue
from bot.jobs.requests import JobSpec
from bot.logging_setup import job_fields
from bot.ports import Button, Keyboard, Messenger
from bot.texts import Lang, render_error, text
from storage.models import Job, Store

logger = logging.getLogger(__name__)

# Status-message edits: at most one per this many seconds per chat (final states always go out).
STATUS_EDIT_INTERVAL_PRIVATE = 1.0
STATUS_EDIT_INTERVAL_GROUP = 3.0


def failure_text(exc: BotError, lang: Lang, *, admins: bool = True) -> str:
    """The explanation of a failed job, ending with "nothing was charged".

    An account error says the admins were told only when there are ``admins`` to tell.
    """
    problem = (text("fail_account_no_admin", lang) if isinstance(exc, AccountError) and not admins
               else render_error(exc, lang))
    return f"{problem}\n{text('not_charged', lang)}"


def queued_text(lang: Lang, position: int) -> str:
    return text("status_queued", lang, position=position)


def cancel_keyboard(job: Job, lang: Lang) -> Keyboard:
    """The ✖ under a queued status line: a job waiting for a slot can still be cancelled."""
    return ((Button(text("btn_cancel_job", lang), CancelJob(job.id).encode()),),)


class StatusLines:
    """Each job's one status message: edited in place, throttled per chat, positions kept fresh."""

    def __init__(
        self, messenger: Messenger, queue: WorkQueue, store: Store, *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._messenger = messenger
        self._queue = queue
        self._store = store
        self._clock = clock
        self._last_edit: dict[int, float] = {}  # chat id -> when its last status edit went out
        self._shown_position: dict[int, int] = {}  # job id -> queue position its status shows
        self._refresh: asyncio.Task[None] | None = None
        self._refresh_again = False
        queue.on_claimed = self._claimed

    async def announce_queued(self, job: Job, lang: Lang, reply_to: int) -> int:
        """Send the job's status line with its place in the queue; returns its message id.

        Raises DeliveryError when it cannot be sent.
        """
        position = await self._queue.position(job.id)
        message_id = await self._messenger.send_text(
            job.chat_id, queued_text(lang, position), reply_to=reply_to,
            keyboard=cancel_keyboard(job, lang),
        )
        self._shown_position[job.id] = position
        return message_id

    async def show(
        self, job: Job, message: str, *, force: bool = False, keyboard: Keyboard | None = None
    ) -> bool:
        """Edit the job's status line, at most once per interval per chat; True if edited.

        Without ``keyboard`` the line loses its buttons (the ✖ goes once the job runs).
        """
        if job.status_message_id is None:
            # A worker may have taken the job while its status line was still being sent.
            job = await persist(lambda: self._store.get_job(job.id), f"job {job.id}")
            if job.status_message_id is None:
                return False
        now = self._clock()
        interval = STATUS_EDIT_INTERVAL_GROUP if job.chat_id < 0 else STATUS_EDIT_INTERVAL_PRIVATE
        last = self._last_edit.get(job.chat_id)
        if not force and last is not None and now - last < interval:
            return False
        self._last_edit[job.chat_id] = now
        try:
            await self._messenger.edit_text(job.chat_id, job.status_message_id, message,
                                            keyboard=keyboard)
        except BotError as exc:  # a status line is never worth failing a job over
            logger.info("status edit for job %s failed: %s", job.id, exc)
            return False
        return True

    async def clear(self, job: Job) -> None:
        """Delete the job's status line (as stored now: the caller's copy may predate it)."""
        self._shown_position.pop(job.id, None)
        message_id = (
            await persist(lambda: self._store.get_job(job.id), f"job {job.id}")
        ).status_message_id
        if message_id is not None:
            await self._messenger.delete(job.chat_id, message_id)

    async def stop(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)

    def _claimed(self, job_id: int) -> None:
        """A worker took a job: it leaves the queue and everyone behind it moves up."""
        self._shown_position.pop(job_id, None)
        if self._refresh is not None and not self._refresh.done():
            self._refresh_again = True  # one refresh at a time; it goes round once more
            return
        self._refresh = asyncio.create_task(self._refresh_positions())

    async def _refresh_positions(self) -> None:
        while True:
            self._refresh_again = False
            for position, job in enumerate(await self._queue.waiting(), start=1):
                # Lines this process did not send (another instance took the request, or the
                # process restarted) are set too: "not modified" counts as done.
                if self._shown_position.get(job.id) == position:
                    continue
                lang = JobSpec.of(job).lang
                if await self.show(job, queued_text(lang, position),
                                   keyboard=cancel_keyboard(job, lang)):
                    self._shown_position[job.id] = position
            if not self._refresh_again:
                return


class Failures:
    """Ends a job that cannot succeed: refund, tell the requester, alert admins if theirs."""

    def __init__(
        self, store: Store, messenger: Messenger, status: StatusLines, admin_ids: Iterable[int],
        *, alerts: AdminAlerts | None = None,
    ) -> None:
        self._store = store
        self._messenger = messenger
        self._status = status
        self._admin_ids = frozenset(admin_ids)
        self._alerts = alerts or AdminAlerts(store, messenger, self._admin_ids)

    async def fail(self, job: Job, exc: BotError) -> None:
        """Refund, finish the job, tell the user in a reply (replies notify; edits do not)."""
        lang = JobSpec.of(job).lang
        if isinstance(exc, AccountError):  # every job fails until someone fixes the account
            logger.error("job %s failed on a DashScope account problem: %s%s", job.id, exc,
                         "" if self._admin_ids else " (no admin to alert: set ADMIN_USER_IDS)",
                         extra=job_fields(job))
        else:
            logger.info("job %s failed: %s", job.id, exc, extra=job_fields(job))
        current = await persist(lambda: self._store.get_job(job.id), f"job {job.id}")
        if current.state.is_final:
            return  # already finished and announced (a resumed job failing again)
        await persist(lambda: self._store.mark_failed(job.id, exc.reason_code, str(exc)[:500]),
                      f"job {job.id}: failed")
        try:
            await self._messenger.send_text(
                job.chat_id, f"❌ {failure_text(exc, lang, admins=bool(self._admin_ids))}",
                reply_to=job.request_message_id,
            )
        except BotError as send_error:  # e.g. the user blocked the bot: nothing more to do
            logger.info("job %s: could not announce the failure: %s", job.id, send_error)
        await self._status.clear(job)
        if isinstance(exc, AccountError):
            await self._alert_admins(exc)

    async def _alert_admins(self, exc: AccountError) -> None:
        """Once per error code per hour (bot/alerts.py)."""
        await self._alerts.account_problem(exc)
