"""Accepting a request: check it, reserve the quota and persist the job, answer with a status.

Everything that can be refused is checked before anything is reserved (ban, the spend cap,
options, the image itself), so a refusal costs nothing; the reservation and the job are one
transaction (which checks the quota and the spend cap again), so from then on the job is durable
and a restart continues it. The job is keyed by the update that asked for it: when Telegram
sends that update again (a crash before its offset was confirmed, a retried webhook), the same
transaction finds the job, reserves nothing, and nothing new is answered; the job already runs,
and its status line, if it got one, is the first copy's.

The spend cap (MONTHLY_BUDGET_YUAN) refuses everyone, admins too: it protects the account's
bill, and the refusal says an admin can raise it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from decimal import Decimal

from bot.alerts import AdminAlerts
from bot.api_limits import MAX_SEED
from bot.bailian.models import Model
from bot.commands import ParsedCommand
from bot.errors import (
    BannedError,
    BotError,
    BudgetExceededError,
    DeliveryError,
    ImageError,
    QuotaExceededError,
    RequestValidationError,
)
from bot.jobs.inputs import Inputs
from bot.jobs.notify import StatusLines
from bot.jobs.persist import persist
from bot.jobs.queue import WorkQueue
from bot.jobs.requests import (
    Accepted,
    AcceptResult,
    AlbumImage,
    JobSpec,
    Refused,
    Requester,
)
from bot.metrics import Metrics
from bot.ports import Messenger
from bot.texts import render_error, text
from storage.models import Job, NewJob, Store, next_month_start
from storage.pricing import check_budget

logger = logging.getLogger(__name__)


def new_seed() -> int:
    """A seed we choose ourselves, so the caption can show it and "again" can change it."""
    return secrets.randbelow(MAX_SEED + 1)


class Acceptor:
    def __init__(
        self, *, store: Store, messenger: Messenger, inputs: Inputs, queue: WorkQueue,
        status: StatusLines, alerts: AdminAlerts, budget_yuan: Decimal | None = None,
        images_for_sale: bool = False, metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._store = store
        self._messenger = messenger
        self._inputs = inputs
        self._queue = queue
        self._status = status
        self._alerts = alerts
        self._budget = budget_yuan  # MONTHLY_BUDGET_YUAN; None: no cap
        self._for_sale = images_for_sale  # STAR_PACKS: a quota refusal points to /buy

    async def accept(
        self, who: Requester, parsed: ParsedCommand, input_file_id: str,
        mask_file_id: str | None = None, mask_png: bytes | None = None,
    ) -> AcceptResult:
        """Check, prepare, reserve, persist, answer: the job is then durable and queued."""
        # The quota is left to the reservation's transaction, which knows the job of an update
        # Telegram sent again; a first look here would refuse that copy at the quota's edge.
        refusal = await self.precheck(who, parsed, quota=False)
        if refusal is not None:
            return await self._refuse(who, render_error(refusal, who.lang))
        try:
            await self._inputs.check(parsed, input_file_id, mask_file_id, mask_png)
            if parsed.seed is None and parsed.spec.model is Model.WANX_IMAGE_EDIT:
                parsed = parsed.with_seed(new_seed())
            created = await self._store.create_or_replay_job(
                self._new_job(who, parsed, input_file_id, mask_file_id, mask_png),
                budget_yuan=self._budget,
            )
        except BudgetExceededError as exc:
            logger.info("request of user %s refused by the spend cap: %s", who.user_id, exc)
            refused = await self._refuse(who, render_error(exc, who.lang))
            await self._alert(self._alerts.budget_refused(exc))
            return refused
        except (RequestValidationError, ImageError, QuotaExceededError) as exc:
            logger.info("request of user %s refused: %s", who.user_id, exc)  # the API's words
            return await self._refuse(who, render_error(self._for_buyers(exc), who.lang))
        job = created.job
        if created.replayed:
            logger.info("job %s: update %s was delivered again; nothing new done", job.id,
                        who.update_id)
            self._queue.wake()
            return Accepted(job=job, status_message_id=job.status_message_id, replayed=True)
        if self._budget is not None:
            await self._alert(self._watch_spend(job.quota_month, self._budget))
        return await self._announce(job, who)

    async def precheck(
        self, who: Requester, parsed: ParsedCommand, *, quota: bool = True
    ) -> BotError | None:
        """Why ``who`` would be refused ``parsed`` (ban, quota, spend cap), or None if not.

        Only reads, nothing downloaded or reserved: a button is answered with it before anything
        slow. The reservation checks the quota and the spend cap again in its transaction.
        """
        user = await self._store.get_user(who.user_id)
        if user is not None and user.banned and not who.is_admin:
            return BannedError()
        if quota and not who.is_admin:
            status = await self._store.quota_status(who.user_id)
            if status.remaining < parsed.n:
                return self._for_buyers(QuotaExceededError(
                    status.remaining, parsed.n, limit=status.limit + status.granted,
                    resets_on=next_month_start(status.month)))
        try:
            await self._check_budget(parsed)
        except BudgetExceededError as exc:
            logger.info("request of user %s refused by the spend cap: %s", who.user_id, exc)
            await self._alert(self._alerts.budget_refused(exc))
            return exc
        return None

    async def accept_album(
        self, who: Requester, parsed: ParsedCommand, images: Sequence[AlbumImage]
    ) -> AcceptResult:
        """An album: every image checked, then all reserved and persisted in one transaction
        (one job per image, sharing an album id), one status line for them all.

        Over the quota or the spend cap the whole album is refused and nothing reserved.
        """
        user = await self._store.get_user(who.user_id)
        if user is not None and user.banned and not who.is_admin:
            return await self._refuse(who, text("banned", who.lang))
        try:
            await self._check_budget(parsed, images=parsed.n * len(images))
            for image in images:
                await self._inputs.check(parsed, image.file_id, None)
            new_jobs = []
            for image in images:
                one = parsed
                if parsed.seed is None and parsed.spec.model is Model.WANX_IMAGE_EDIT:
                    one = parsed.with_seed(new_seed())
                new_jobs.append(self._new_job(replace(who, update_id=image.update_id), one,
                                              image.file_id, None))
            created = await self._store.create_album_jobs(new_jobs, budget_yuan=self._budget)
        except BudgetExceededError as exc:
            logger.info("album of user %s refused by the spend cap: %s", who.user_id, exc)
            refused = await self._refuse(who, render_error(exc, who.lang))
            await self._alert(self._alerts.budget_refused(exc))
            return refused
        except (RequestValidationError, ImageError, QuotaExceededError) as exc:
            logger.info("album of user %s refused: %s", who.user_id, exc)
            return await self._refuse(who, render_error(self._for_buyers(exc), who.lang))
        lead = created[0].job
        if any(creation.replayed for creation in created):
            logger.info("album %s: update %s was delivered again; nothing new done",
                        lead.album_id, who.update_id)
            self._queue.wake()
            return Accepted(job=lead, status_message_id=lead.status_message_id, replayed=True)
        if self._budget is not None:
            await self._alert(self._watch_spend(lead.quota_month, self._budget))
        return await self._announce(lead, who)

    async def _announce(self, job: Job, who: Requester) -> Accepted:
        """The status line of a new job (an album's first job stands for the album)."""
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

    def _for_buyers(self, error: BotError) -> BotError:
        """A quota refusal points to /buy while images are on sale (and is counted)."""
        if isinstance(error, QuotaExceededError):
            self._metrics.quota_refused()
        if self._for_sale and isinstance(error, QuotaExceededError):
            return error.offering_packs()
        return error

    async def _check_budget(self, parsed: ParsedCommand, images: int | None = None) -> None:
        """Refuse a request over the spend cap before anything is downloaded.

        Only a first look: the reservation checks again in its own transaction, which is what
        keeps two requests at the edge from both passing. (A copy of an update Telegram sends
        again after a crash may be refused here although its first copy's job runs: at the
        cap, that job may be what filled it.)
        """
        if self._budget is None:
            return
        month = self._store.current_month()
        check_budget(month=month, spent=await self._store.estimated_spend(month),
                     model=parsed.spec.model.value,
                     images=parsed.n if images is None else images, budget=self._budget)

    async def _watch_spend(self, month: str, budget: Decimal) -> None:
        await self._alerts.spend(month, await self._store.estimated_spend(month), budget)

    @staticmethod
    async def _alert(alerting: Awaitable[None]) -> None:
        """An alert for the admins is never a reason to fail the request."""
        try:
            await alerting
        except BotError as exc:
            logger.warning("an alert for the admins failed: %s", exc)

    @staticmethod
    def _new_job(
        who: Requester, parsed: ParsedCommand, input_file_id: str, mask_file_id: str | None,
        mask_png: bytes | None = None,
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
            mask_png=mask_png,
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
