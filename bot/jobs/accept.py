"""Accepting a request: check it, reserve the quota and persist the job, answer with a status.

Everything that can be refused is checked before anything is reserved (ban, options, the image
itself), so a refusal costs nothing; the reservation and the job are one transaction, so from
then on the job is durable and a restart continues it. The job is keyed by the update that asked
for it: when Telegram sends that update again (a crash before its offset was confirmed, a retried
webhook), the same transaction finds the job, reserves nothing, and nothing new is answered; the
job already runs, and its status line, if it got one, is the first copy's.
"""

from __future__ import annotations

import logging
import secrets

from bot.api_limits import MAX_SEED
from bot.bailian.models import Model
from bot.commands import ParsedCommand
from bot.errors import DeliveryError, ImageError, QuotaExceededError, RequestValidationError
from bot.jobs.inputs import Inputs
from bot.jobs.notify import StatusLines
from bot.jobs.persist import persist
from bot.jobs.queue import WorkQueue
from bot.jobs.requests import Accepted, AcceptResult, JobSpec, Refused, Requester
from bot.ports import Messenger
from bot.texts import render_error, text
from storage.models import NewJob, Store

logger = logging.getLogger(__name__)


def new_seed() -> int:
    """A seed we choose ourselves, so the caption can show it and "again" can change it."""
    return secrets.randbelow(MAX_SEED + 1)


class Acceptor:
    def __init__(
        self, *, store: Store, messenger: Messenger, inputs: Inputs, queue: WorkQueue,
        status: StatusLines,
    ) -> None:
        self._store = store
        self._messenger = messenger
        self._inputs = inputs
        self._queue = queue
        self._status = status

    async def accept(
        self, who: Requester, parsed: ParsedCommand, input_file_id: str,
        mask_file_id: str | None = None,
    ) -> AcceptResult:
        """Check, prepare, reserve, persist, answer: the job is then durable and queued."""
        user = await self._store.get_user(who.user_id)
        if user is not None and user.banned and not who.is_admin:
            return await self._refuse(who, text("banned", who.lang))
        try:
            await self._inputs.check(parsed, input_file_id, mask_file_id)
            if parsed.seed is None and parsed.spec.model is Model.WANX_IMAGE_EDIT:
                parsed = parsed.with_seed(new_seed())
            created = await self._store.create_or_replay_job(
                self._new_job(who, parsed, input_file_id, mask_file_id)
            )
        except (RequestValidationError, ImageError, QuotaExceededError) as exc:
            return await self._refuse(who, render_error(exc, who.lang))
        job = created.job
        if created.replayed:
            logger.info("job %s: update %s was delivered again; nothing new done", job.id,
                        who.update_id)
            self._queue.wake()
            return Accepted(job=job, status_message_id=job.status_message_id, replayed=True)
        try:
            status_id = await self._status.announce_queued(job, who.lang, who.message_id)
        except DeliveryError as exc:
            # The job is durable already: it runs, and its result or failure is sent as usual.
            logger.info("job %s: the queued status could not be sent: %s", job.id, exc)
            self._queue.wake()
            return Accepted(job=job, status_message_id=None)
        await persist(lambda: self._store.set_status_message(job.id, status_id),
                      f"job {job.id}: status line")
        if (await persist(lambda: self._store.get_job(job.id), f"job {job.id}")).state.is_final:
            # A worker took the job while its status line was on its way, and finished it.
            await self._status.clear(job)
        self._queue.wake()
        return Accepted(job=job, status_message_id=status_id)

    @staticmethod
    def _new_job(
        who: Requester, parsed: ParsedCommand, input_file_id: str, mask_file_id: str | None
    ) -> NewJob:
        spec = parsed.spec
        return NewJob(
            user_id=who.user_id,
            chat_id=who.chat_id,
            request_message_id=who.message_id,
            command=parsed.command.value,
            model=spec.model.value,
            function=spec.function.value if spec.function else None,
            spec_json=JobSpec(parsed, who.lang).to_json(),
            input_file_id=input_file_id,
            mask_file_id=mask_file_id,
            images_requested=parsed.n,
            unlimited=who.is_admin,
            update_id=who.update_id,
        )

    async def _refuse(self, who: Requester, message: str) -> Refused:
        try:
            await self._messenger.send_text(who.chat_id, message, reply_to=who.message_id)
        except DeliveryError as exc:  # e.g. blocked meanwhile: nothing was reserved anyway
            logger.info("a refusal could not be sent to %s: %s", who.chat_id, exc)
        return Refused(message)
