"""Delivery: results downloaded, sent as a reply with their buttons, and the quota settled."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from bot.bailian import BailianClient
from bot.bailian.models import Model
from bot.callback_data import Again, Upscale
from bot.commands import Command
from bot.errors import (
    BotError,
    BrokenResultError,
    DashScopeError,
    DeliveryError,
    ImageError,
    ResultExpiredError,
    RetryableError,
)
from bot.images import CheckedResult, check_result_async
from bot.jobs.notify import Failures, StatusLines
from bot.jobs.persist import persist
from bot.jobs.requests import JobSpec
from bot.metrics import Metrics
from bot.ports import Button, Keyboard, Messenger, OutgoingImage
from bot.texts import Lang, text
from storage.models import Job, JobState, QuotaStatus, Store

logger = logging.getLogger(__name__)

# How often an album's watcher looks whether all of its jobs are done.
ALBUM_POLL_SECONDS = 0.25
# How long a stopping bot lets deliveries already under way finish.
STOP_GRACE_SECONDS = 15.0
# Result URLs live 24 h: a download is tried through an outage for that long
# (DASHSCOPE_TASK_PATIENCE), with pauses doubling up to a minute.
RESULT_PATIENCE = 24 * 3600.0
MAX_OUTAGE_PAUSE = 60.0


async def _checked(data: bytes) -> CheckedResult:
    """The result read to its end; BrokenResultError when it is not a readable image."""
    try:
        return await check_result_async(data)
    except ImageError as exc:
        raise BrokenResultError("BrokenResult", str(exc)) from exc


def result_keyboard(job: Job, count: int, lang: Lang) -> Keyboard:
    """"Again" for the whole request (with a new seed where the model takes one), "Upscale"
    for each result."""
    again_key = "btn_again" if job.model == Model.WANX_IMAGE_EDIT.value else "btn_again_qwen"
    again = Button(text(again_key, lang), Again(job.id).encode())
    if count == 1:
        return ((again, Button(text("btn_upscale", lang),
                               Upscale(job.id, 0).encode())),)
    ups = tuple(Button(text("btn_upscale_n", lang, index=i + 1),
                       Upscale(job.id, i).encode()) for i in range(count))
    return ((again,), ups)


def album_keyboard(jobs: Sequence[Job], lang: Lang) -> Keyboard:
    """"Upscale" for each image of an album, in rows of five. No "Again": it would run one
    image of the album again, not the album."""
    ups = [Button(text("btn_upscale_n", lang, index=i + 1), Upscale(job.id, 0).encode())
           for i, job in enumerate(jobs)]
    return tuple(tuple(ups[i:i + 5]) for i in range(0, len(ups), 5))


class Deliverer:
    """Sends a succeeded job's images; each delivery runs to its end even while stopping."""

    def __init__(
        self, *, store: Store, client: BailianClient, messenger: Messenger,
        status: StatusLines, failures: Failures, admin_ids: Iterable[int],
        patience: float = RESULT_PATIENCE, clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._patience = patience
        self._clock = clock
        self._store = store
        self._client = client
        self._messenger = messenger
        self._status = status
        self._failures = failures
        self._admin_ids = frozenset(admin_ids)
        self._deliveries: set[asyncio.Task[None]] = set()
        # Albums whose jobs are not all done yet, by album id: one watcher each.
        self._album_watchers: dict[int, asyncio.Task[None]] = {}

    async def deliver_shielded(self, job: Job) -> None:
        """Deliver in a task of its own, so a stopping bot lets it finish instead of sending
        twice after the restart."""
        delivery = asyncio.create_task(self.deliver(job))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)
        await asyncio.shield(delivery)

    async def drain(self) -> None:
        """Let deliveries under way finish (up to STOP_GRACE_SECONDS), then cancel the rest."""
        for watcher in list(self._album_watchers.values()):
            watcher.cancel()  # albums still waiting for a job: the restart delivers them
        if not self._deliveries:
            return
        done, pending = await asyncio.wait(self._deliveries, timeout=STOP_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*done, *pending, return_exceptions=True)

    async def deliver(self, job: Job) -> None:
        if job.album_id is not None:
            self._watch_album(job.album_id)
            return
        spec = JobSpec.of(job)
        images, last_error = await self._download_results(job, spec)
        if not images:
            await self._failures.fail(job, last_error or ResultExpiredError("NoResult"))
            return
        await self._status.show(job, text("status_sending", spec.lang), force=True)
        await self._messenger.show_uploading(job.chat_id)
        caption = await self._caption(job, spec, delivered=len(images))
        try:
            file_ids = await self._messenger.send_images(
                job.chat_id, images, caption=caption, reply_to=job.request_message_id,
                keyboard=result_keyboard(job, len(images), spec.lang),
            )
        except DeliveryError as exc:
            await self._failures.fail(job, exc)
            return
        # Telegram has the images: this write is retried, never the send.
        await persist(lambda: self._store.mark_delivered(job.id, len(images), tuple(file_ids)),
                      f"job {job.id}: delivered")
        self._metrics.delivered((datetime.now(UTC) - job.created_at).total_seconds())
        await self._status.clear(job)

    def watches(self, album_id: int) -> bool:
        """Whether this process waits for the album's jobs to deliver them together."""
        return album_id in self._album_watchers

    def _watch_album(self, album_id: int) -> None:
        """An album goes back as one media group once none of its jobs still runs."""
        if album_id not in self._album_watchers:
            watcher = asyncio.create_task(self._deliver_album_when_done(album_id))
            self._album_watchers[album_id] = watcher
            watcher.add_done_callback(lambda _: self._album_watchers.pop(album_id, None))

    async def _deliver_album_when_done(self, album_id: int) -> None:
        """Wait (polling the store: jobs finish in the workers, or fail anywhere) until every
        job of the album is succeeded or final, then send the succeeded ones together."""
        while True:
            jobs = await persist(lambda: self._store.album_jobs(album_id), f"album {album_id}")
            if not any(job.state in (JobState.QUEUED, JobState.SUBMITTED) for job in jobs):
                break
            await asyncio.sleep(ALBUM_POLL_SECONDS)
        if any(job.state is JobState.SUCCEEDED for job in jobs):
            delivery = asyncio.create_task(self._deliver_album(jobs))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)
            await asyncio.shield(delivery)

    async def _deliver_album(self, album: list[Job]) -> None:
        """The album's results as one media group, replying to its request; each job settled
        for its own images. Its first job holds the album's status line."""
        lead, spec = album[0], JobSpec.of(album[0])
        images: list[OutgoingImage] = []
        sent_jobs: list[tuple[Job, int]] = []
        for job in album:
            if job.state is not JobState.SUCCEEDED:
                continue
            got, last_error = await self._download_results(job, JobSpec.of(job))
            if not got:
                await self._failures.fail(job, last_error or ResultExpiredError("NoResult"))
                continue
            images.extend(got)
            sent_jobs.append((job, len(got)))
        if not images:
            return
        # A failed lead took the status line with it (Failures.fail clears it).
        has_status = sent_jobs[0][0].id == lead.id
        if has_status:
            await self._status.show(lead, text("status_sending", spec.lang), force=True)
        await self._messenger.show_uploading(lead.chat_id)
        try:
            file_ids = await self._messenger.send_images(
                lead.chat_id, images, caption=await self._album_caption(lead, spec, sent_jobs),
                reply_to=lead.request_message_id,
                keyboard=album_keyboard([job for job, _ in sent_jobs], spec.lang),
            )
        except DeliveryError as exc:
            for job, _ in sent_jobs:
                await self._failures.fail(job, exc)
            return
        # Telegram has the images: these writes are retried, never the send.
        start = 0
        for job, count in sent_jobs:
            ids = tuple(file_ids[start:start + count])
            start += count
            await persist(functools.partial(self._store.mark_delivered, job.id, count, ids),
                          f"job {job.id}: delivered")
            self._metrics.delivered((datetime.now(UTC) - job.created_at).total_seconds())
        if has_status:
            await self._status.clear(lead)

    async def _album_caption(
        self, lead: Job, spec: JobSpec, sent_jobs: list[tuple[Job, int]]
    ) -> str:
        lang = spec.lang
        delivered = sum(count for _, count in sent_jobs)
        parts = [f"✅ {text(f'cmd_{spec.parsed.command.value}', lang)}",
                 text("caption_album", lang, n=delivered)]
        if lead.user_id in self._admin_ids:
            parts.append(text("caption_unlimited", lang))
        else:
            # As in _caption: what is reserved and not delivered comes back at the settle.
            unsent = sum(job.images_requested - count for job, count in sent_jobs)
            status = await self._store.quota_status(lead.user_id)
            parts.append(_remaining(status, status.remaining + unsent, lang))
        return " · ".join(parts)

    async def _download_results(
        self, job: Job, spec: JobSpec
    ) -> tuple[list[OutgoingImage], BotError | None]:
        """The results that could be fetched and read, and the last error of those that could
        not (a partial delivery is charged for what arrives)."""
        images: list[OutgoingImage] = []
        last_error: BotError | None = None
        told: list[bool] = [False]
        for index, url in enumerate(job.result_urls):
            try:
                data = await self._download(job, spec, url, told)
                result = await _checked(data)
            except DashScopeError as exc:
                logger.warning("job %s: result %s unusable: %s", job.id, index, exc)
                last_error = exc
                continue
            info = result.info
            ext = "jpg" if info.mime == "image/jpeg" else info.format.lower()
            images.append(OutgoingImage(
                data=data,
                filename=f"{job.command}-{job.id}-{index + 1}.{ext}",
                as_photo=result.fits_photo,
                also_document=spec.parsed.command is Command.UPSCALE,
                preview=result.preview.data if result.preview is not None else None,
            ))
        return images, last_error

    async def _download(self, job: Job, spec: JobSpec, url: str, told: list[bool]) -> bytes:
        """A result DashScope made (and billed): tried through an outage while the URL lives,
        the status line saying so once (``told`` is shared by the job's results)."""
        give_up_at = self._clock() + self._patience
        pause = 1.0
        while True:
            try:
                return await self._client.download(url)
            except RetryableError as exc:
                remaining = give_up_at - self._clock()
                if remaining <= 0:
                    raise
                logger.warning("job %s: the result cannot be fetched (%s); trying again",
                               job.id, exc.code)
            if not told[0]:
                told[0] = True
                await self._status.show(job, text("status_service_slow", spec.lang), force=True)
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, MAX_OUTAGE_PAUSE)

    async def _caption(self, job: Job, spec: JobSpec, delivered: int) -> str:
        lang, parsed = spec.lang, spec.parsed
        parts = [f"✅ {text(f'cmd_{parsed.command.value}', lang)}"]
        # The seed is for the person who asked, to repeat a result: not for a group to read.
        private = job.chat_id == job.user_id
        if private and parsed.seed is not None and job.model == Model.WANX_IMAGE_EDIT.value:
            parts.append(text("caption_seed", lang, seed=parsed.seed))
        if delivered < job.images_requested:
            parts.append(text("caption_partial", lang, delivered=delivered,
                              requested=job.images_requested))
        if job.user_id in self._admin_ids:
            parts.append(text("caption_unlimited", lang))
        else:
            status = await self._store.quota_status(job.user_id)
            # The settle happens right after sending: the reservation's undelivered part
            # comes back then.
            remaining = status.remaining
            if job.reservation_open:
                remaining += job.images_requested - delivered
            parts.append(_remaining(status, remaining, lang))
        return " · ".join(parts)


def _remaining(status: QuotaStatus, remaining: int, lang: Lang) -> str:
    """"N left this month", or, with images bought (which do not expire), "N left" in all."""
    key = "caption_remaining_purchased" if status.purchased else "caption_remaining"
    return text(key, lang, remaining=remaining)
