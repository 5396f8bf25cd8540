"""The job pipeline: from an accepted request to delivered images, durable across restarts.

Life of a job (``storage.models.JobState``):

1. ``accept`` (called by a handler): ban check, validation, the input image is fetched and
   prepared once (so a bad image is refused before anything is reserved), the quota is
   reserved and the job persisted in one transaction, and one status message answers the request.
2. Workers take queued jobs in fair order (round robin across users). wanx jobs are submitted
   within the adapter's QPS and in-flight caps and waited for through its poller; the task id is
   stored as soon as it is known. qwen jobs are one synchronous call.
3. Results are downloaded, delivered as a reply, and the quota is settled for the images actually
   delivered in the same transaction that marks the job delivered.
4. Any failure refunds the reservation and tells the user in plain words.

On restart ``JobRunner.start`` continues every unfinished job from the state it was left in.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.bailian import BailianClient, validate_request
from bot.bailian.models import EditRequest, Model, TaskOutcome
from bot.commands import SPECS, Command, ParsedCommand, build_edit_request
from bot.errors import (
    AccountError,
    BotError,
    ContentRefusedError,
    DashScopeError,
    DeliveryError,
    ImageError,
    InvalidRequestError,
    QuotaExceededError,
    RequestValidationError,
    ResultExpiredError,
    RetryableError,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskUnknownError,
)
from bot.images import (
    PreparedImage,
    expand_scales_for_ratio,
    fits_telegram_photo,
    image_info,
    prepare_image_async,
    prepare_mask_async,
)
from bot.ports import Button, Keyboard, Messenger, OutgoingImage
from bot.texts import Lang, text
from storage.models import Job, JobState, NewJob, Store

logger = logging.getLogger(__name__)

# Placeholders used to validate a request's options before any image is fetched.
_PLACEHOLDER_IMAGE = "data:image/png;base64,"
# Prepared inputs kept between acceptance and the worker, so a queued job usually needs no second
# download; bounded so a deep queue holds ids, not image bytes.
PREPARED_CACHE_BYTES = 16 * 1024 * 1024
# Images decoded at once: a 64-megapixel input takes ~256 MB while it is converted, and there
# are only two cores to share anyway.
PREPARE_CONCURRENCY = 2
# Status-message edits: at most one per this many seconds per chat (final states always go out).
STATUS_EDIT_INTERVAL_PRIVATE = 1.0
STATUS_EDIT_INTERVAL_GROUP = 3.0
# Account alerts reach each admin at most once per error kind per this many seconds.
ADMIN_ALERT_INTERVAL = 3600.0
# How long a stopping bot lets deliveries already under way finish.
STOP_GRACE_SECONDS = 15.0
MAX_SEED = 2_147_483_647


@dataclass(frozen=True)
class Requester:
    """Who asked, where, and how to talk to them."""

    user_id: int
    chat_id: int
    message_id: int
    lang: Lang
    is_admin: bool
    is_group: bool = False


@dataclass(frozen=True)
class Accepted:
    job: Job
    status_message_id: int | None  # None when the status line could not be sent


@dataclass(frozen=True)
class Refused:
    """The request was answered with an explanation; nothing was reserved."""

    message: str


AcceptResult = Accepted | Refused


class PreparedCache:
    """A byte-bounded LRU of prepared inputs, keyed by (file id, model or mask size)."""

    def __init__(self, max_bytes: int = PREPARED_CACHE_BYTES) -> None:
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[str, PreparedImage] = OrderedDict()

    def get(self, key: str) -> PreparedImage | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, image: PreparedImage) -> None:
        if len(image.data) > self._max:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(old.data)
        self._items[key] = image
        self._size += len(image.data)
        while self._size > self._max:
            _, evicted = self._items.popitem(last=False)
            self._size -= len(evicted.data)


def _lang_of(job_lang: str | None) -> Lang:
    return Lang(job_lang) if job_lang in ("zh", "en") else Lang.EN


def explain(exc: BotError, lang: Lang) -> str:
    """What went wrong, in plain words for the user."""
    if isinstance(exc, ImageError):
        body = text(exc.key, lang, **exc.params)
    elif isinstance(exc, ContentRefusedError):
        body = text("fail_content", lang)
    elif isinstance(exc, InvalidRequestError):
        body = text("fail_invalid", lang, detail=html.escape(exc.message or exc.code))
    elif isinstance(exc, RequestValidationError):
        body = text("fail_invalid", lang, detail=html.escape(str(exc)))
    elif isinstance(exc, AccountError):
        body = text("fail_account", lang)
    elif isinstance(exc, RetryableError):
        body = text("fail_busy", lang)
    elif isinstance(exc, SubmitOutcomeUnknownError):
        body = text("fail_unconfirmed", lang)
    elif isinstance(exc, TaskUnknownError | ResultExpiredError):
        body = text("fail_expired", lang)
    elif isinstance(exc, TaskFailedError):
        body = text("fail_task", lang, detail=html.escape(exc.message or exc.code))
    elif isinstance(exc, DeliveryError):
        body = text("fail_delivery", lang)
    else:
        body = text("fail_generic", lang)
    return body


def failure_text(exc: BotError, lang: Lang) -> str:
    """The explanation of a failed job, ending with "nothing was charged"."""
    return f"{explain(exc, lang)}\n{text('not_charged', lang)}"


class JobRunner:
    """Accepts requests, runs the workers, resumes unfinished jobs after a restart."""

    def __init__(
        self,
        *,
        store: Store,
        client: BailianClient,
        messenger: Messenger,
        admin_ids: Iterable[int] = (),
        wanx_workers: int = 3,
        qwen_workers: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.client = client
        self.messenger = messenger
        self.admin_ids = frozenset(admin_ids)
        self._wanx_workers = wanx_workers
        self._qwen_workers = qwen_workers
        self._clock = clock
        self._cache = PreparedCache()
        self._preparing = asyncio.Semaphore(PREPARE_CONCURRENCY)
        self._wake = asyncio.Event()
        self._claimed: set[int] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._resumed: set[asyncio.Task[None]] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._last_status_edit: dict[int, float] = {}
        self._shown_position: dict[int, int] = {}  # job id -> queue position its status shows
        self._refresh: asyncio.Task[None] | None = None
        self._refresh_again = False
        self._stopping = False

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume unfinished jobs and start the workers."""
        for job in await self.store.resumable_jobs():
            if job.state is JobState.QUEUED:
                continue  # the workers take it in fair order
            await self.store.note_attempt(job.id)
            logger.info("resuming job %s in state %s", job.id, job.state)
            if job.state is JobState.SUBMITTED:
                self._spawn_resumed(self._continue_submitted(job))
            elif job.state is JobState.SUCCEEDED:
                self._spawn_resumed(self._deliver(job))
        for _ in range(self._wanx_workers):
            self._workers.append(asyncio.create_task(self._worker(Model.WANX_IMAGE_EDIT)))
        for _ in range(self._qwen_workers):
            self._workers.append(asyncio.create_task(self._worker(Model.QWEN_IMAGE_EDIT)))
        self._wake.set()

    async def stop(self) -> None:
        """Stop taking work; let deliveries under way finish; leave the rest resumable."""
        self._stopping = True
        tasks = [*self._workers, *self._resumed]
        if self._refresh is not None:
            tasks.append(self._refresh)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._deliveries:
            done, pending = await asyncio.wait(self._deliveries, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*done, *pending, return_exceptions=True)
        self._workers.clear()

    def wake(self) -> None:
        self._wake.set()

    def _spawn_resumed(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._resumed.add(task)
        task.add_done_callback(self._resumed.discard)

    # --- accepting a request -----------------------------------------------------------------

    async def accept(
        self,
        who: Requester,
        parsed: ParsedCommand,
        input_file_id: str,
        *,
        mask_file_id: str | None = None,
    ) -> AcceptResult:
        """Check, prepare, reserve, persist, answer: the job is then durable and queued."""
        lang = who.lang
        user = await self.store.get_user(who.user_id)
        if user is not None and user.banned and not who.is_admin:
            return await self._refuse(who, text("banned", lang))
        spec = SPECS[parsed.command]
        try:
            self.check_request(parsed, with_mask=mask_file_id is not None)
            base = await self.prepared_input(input_file_id, spec.model)
            if mask_file_id is not None:
                await self.prepared_mask(mask_file_id, (base.width, base.height))
            if parsed.ratio is not None:
                expand_scales_for_ratio(base.width, base.height, *parsed.ratio)
        except (RequestValidationError, ImageError) as exc:
            return await self._refuse(who, explain(exc, lang))
        if parsed.seed is None and spec.model is Model.WANX_IMAGE_EDIT:
            # A seed we chose ourselves, so the caption can show it and "again" can change it.
            parsed = parsed.with_seed(secrets.randbelow(MAX_SEED + 1))
        try:
            job = await self.store.create_job(
                NewJob(
                    user_id=who.user_id,
                    chat_id=who.chat_id,
                    request_message_id=who.message_id,
                    command=parsed.command.value,
                    model=spec.model.value,
                    function=spec.function.value if spec.function else None,
                    spec_json=json.dumps({"parsed": parsed.to_json(), "lang": lang.value}),
                    input_file_id=input_file_id,
                    mask_file_id=mask_file_id,
                    images_requested=parsed.n,
                    unlimited=who.is_admin,
                )
            )
        except QuotaExceededError as exc:
            status = await self.store.quota_status(who.user_id)
            return await self._refuse(
                who,
                text("quota_exceeded", lang, remaining=exc.remaining, requested=exc.requested,
                     limit=status.limit + status.granted),
            )
        position = await self._waiting_position(job.id)
        try:
            status_id = await self.messenger.send_text(
                who.chat_id, self._queued_text(lang, position), reply_to=who.message_id
            )
        except DeliveryError as exc:
            # The job is durable already: it runs, and its result or failure is sent as usual.
            logger.info("job %s: the queued status could not be sent: %s", job.id, exc)
            self._wake.set()
            return Accepted(job=job, status_message_id=None)
        self._shown_position[job.id] = position
        await self.store.set_status_message(job.id, status_id)
        self._wake.set()
        return Accepted(job=job, status_message_id=status_id)

    @staticmethod
    def model_of(parsed: ParsedCommand) -> Model:
        return SPECS[parsed.command].model

    def check_request(self, parsed: ParsedCommand, *, with_mask: bool) -> None:
        """Validate the options against the API's limits before any image is fetched."""
        mask = _PLACEHOLDER_IMAGE if with_mask else None
        scales = (1.5, 1.5, 1.5, 1.5) if parsed.ratio is not None else None
        validate_request(build_edit_request(parsed, _PLACEHOLDER_IMAGE, mask, scales))

    async def prepared_input(self, file_id: str, model: Model) -> PreparedImage:
        return await self._prepared(
            f"{file_id}|{model.value}", file_id, lambda raw: prepare_image_async(raw, model)
        )

    async def prepared_mask(self, file_id: str, size: tuple[int, int]) -> PreparedImage:
        return await self._prepared(
            f"{file_id}|mask|{size[0]}x{size[1]}", file_id,
            lambda raw: prepare_mask_async(raw, size),
        )

    async def _prepared(
        self, key: str, file_id: str, prepare: Callable[[bytes], Awaitable[PreparedImage]]
    ) -> PreparedImage:
        """Download and prepare once; later calls for the same key come from the cache."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        raw = await self.messenger.download(file_id)
        async with self._preparing:
            prepared = await prepare(raw)
        self._cache.put(key, prepared)
        return prepared

    async def _refuse(self, who: Requester, message: str) -> Refused:
        await self.messenger.send_text(who.chat_id, message, reply_to=who.message_id)
        return Refused(message)

    def _queued_text(self, lang: Lang, position: int) -> str:
        return text("status_queued", lang, position=position)

    async def _waiting(self) -> list[Job]:
        """Queued jobs no worker has taken yet, in the order they will be taken."""
        return [job for job in await self.store.queued_jobs_fair() if job.id not in self._claimed]

    async def _waiting_position(self, job_id: int) -> int:
        waiting = await self._waiting()
        return next((i for i, job in enumerate(waiting, start=1) if job.id == job_id), 1)

    def _queue_moved(self) -> None:
        """Refresh the positions shown in status messages, one refresh at a time."""
        if self._refresh is not None and not self._refresh.done():
            self._refresh_again = True
            return
        self._refresh = asyncio.create_task(self._refresh_positions())

    async def _refresh_positions(self) -> None:
        while True:
            self._refresh_again = False
            for position, job in enumerate(await self._waiting(), start=1):
                if self._shown_position.get(job.id) in (None, position):
                    continue  # not announced by this process yet, or unchanged
                _, lang = self.spec_of(job)
                if await self._status(job, self._queued_text(lang, position)):
                    self._shown_position[job.id] = position
            if not self._refresh_again:
                return

    # --- workers ---------------------------------------------------------------------------

    async def _next_job(self, model: Model) -> Job:
        while True:
            self._wake.clear()
            for job in await self.store.queued_jobs_fair():
                if job.model == model.value and job.id not in self._claimed:
                    self._claimed.add(job.id)
                    self._shown_position.pop(job.id, None)
                    self._queue_moved()
                    return job
            await self._wake.wait()

    async def _worker(self, model: Model) -> None:
        while not self._stopping:
            job = await self._next_job(model)
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug, not a foreseen failure: refund and tell the user rather than lose the job,
                # and keep this worker alive whatever happens.
                logger.exception("job %s crashed", job.id)
                try:
                    await self._fail(job, BotError("internal error"))
                except Exception:
                    logger.exception("job %s could not be failed cleanly", job.id)
            finally:
                self._claimed.discard(job.id)
                self._wake.set()

    async def _run(self, job: Job) -> None:
        parsed, lang = self.spec_of(job)
        await self._status(job, text("status_working", lang), force=True)
        try:
            request = await self._build_request(job, parsed)
            if job.model == Model.QWEN_IMAGE_EDIT.value:
                outcome = await self.client.edit_sync(request)
            else:
                task_id = await self.client.submit(request)
                job = await self.store.mark_submitted(job.id, task_id)
                outcome = await self.client.wait(task_id)
        except (DashScopeError, ImageError, RequestValidationError) as exc:
            await self._fail(job, exc)
            return
        await self._finish_task(job, outcome)

    async def _continue_submitted(self, job: Job) -> None:
        assert job.task_id is not None
        try:
            outcome = await self.client.wait(job.task_id)
        except DashScopeError as exc:
            await self._fail(job, exc)
            return
        await self._finish_task(job, outcome)

    async def _finish_task(self, job: Job, outcome: TaskOutcome) -> None:
        if not outcome.urls:
            await self._fail(job, TaskFailedError("NoImage", "the task produced no image"))
            return
        job = await self.store.mark_succeeded(job.id, outcome.urls)
        # Delivery runs in its own task so a stopping bot lets it finish instead of sending twice.
        delivery = asyncio.create_task(self._deliver(job))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)
        await asyncio.shield(delivery)

    async def _build_request(self, job: Job, parsed: ParsedCommand) -> EditRequest:
        model = Model(job.model)
        base = await self.prepared_input(job.input_file_id, model)
        mask = None
        if job.mask_file_id is not None:
            mask = await self.prepared_mask(job.mask_file_id, (base.width, base.height))
        scales = None
        if parsed.ratio is not None:
            scales = expand_scales_for_ratio(base.width, base.height, *parsed.ratio)
        request = build_edit_request(
            parsed, base.data_uri(), mask.data_uri() if mask else None, scales
        )
        validate_request(request)
        return request

    # --- delivery --------------------------------------------------------------------------

    async def _deliver(self, job: Job) -> None:
        parsed, lang = self.spec_of(job)
        images: list[OutgoingImage] = []
        last_error: BotError | None = None
        for index, url in enumerate(job.result_urls):
            try:
                data = await self.client.download(url)
                info = image_info(data)
            except (DashScopeError, ImageError) as exc:
                logger.warning("job %s: result %s unusable: %s", job.id, index, exc)
                last_error = exc
                continue
            ext = "jpg" if info.mime == "image/jpeg" else info.format.lower()
            images.append(
                OutgoingImage(
                    data=data,
                    filename=f"{job.command}-{job.id}-{index + 1}.{ext}",
                    as_photo=fits_telegram_photo(info),
                    also_document=parsed.command is Command.UPSCALE,
                )
            )
        if not images:
            await self._fail(job, last_error or ResultExpiredError("NoResult"))
            return
        await self._status(job, text("status_sending", lang), force=True)
        await self.messenger.show_uploading(job.chat_id)
        caption = await self._caption(job, parsed, lang, delivered=len(images))
        try:
            file_ids = await self.messenger.send_images(
                job.chat_id, images, caption=caption, reply_to=job.request_message_id,
                keyboard=self._result_keyboard(job, len(images), lang),
            )
        except DeliveryError as exc:
            await self._fail(job, exc)
            return
        await self.store.mark_delivered(job.id, len(images))
        await self.store.set_setting(f"results:{job.id}", json.dumps(list(file_ids)))
        if job.status_message_id is not None:
            await self.messenger.delete(job.chat_id, job.status_message_id)

    async def _caption(self, job: Job, parsed: ParsedCommand, lang: Lang, delivered: int) -> str:
        what = text(f"cmd_{parsed.command.value}", lang)
        parts = [f"✅ {what}"]
        if parsed.seed is not None and job.model == Model.WANX_IMAGE_EDIT.value:
            parts.append(text("caption_seed", lang, seed=parsed.seed))
        if delivered < job.images_requested:
            parts.append(text("caption_partial", lang, delivered=delivered,
                              requested=job.images_requested))
        if job.user_id in self.admin_ids:
            parts.append(text("caption_unlimited", lang))
        else:
            status = await self.store.quota_status(job.user_id)
            # The settle happens right after sending: the reservation's undelivered part
            # comes back then.
            remaining = status.remaining
            if job.reservation_open:
                remaining += job.images_requested - delivered
            parts.append(text("caption_remaining", lang, remaining=remaining))
        return " · ".join(parts)

    def _result_keyboard(self, job: Job, count: int, lang: Lang) -> Keyboard:
        row: list[Button] = [Button(text("btn_again", lang), f"again:{job.id}")]
        if count == 1:
            row.append(Button(text("btn_upscale", lang), f"up:{job.id}:0"))
            return (tuple(row),)
        ups = tuple(Button(text("btn_upscale_n", lang, index=i + 1), f"up:{job.id}:{i}")
                    for i in range(count))
        return (tuple(row), ups)

    # --- failures and status ---------------------------------------------------------------

    async def _fail(self, job: Job, exc: BotError) -> None:
        """Refund, finish the job, tell the user in a reply (replies notify; edits do not)."""
        _, lang = self.spec_of(job)
        code = getattr(exc, "code", None) or getattr(exc, "key", None) or type(exc).__name__
        logger.info("job %s failed: %s", job.id, exc)
        current = await self.store.get_job(job.id)
        if current.state.is_final:
            return  # already finished and announced (a resumed job failing again)
        await self.store.mark_failed(job.id, str(code), str(exc)[:500])
        try:
            await self.messenger.send_text(
                job.chat_id, f"❌ {failure_text(exc, lang)}", reply_to=job.request_message_id
            )
        except BotError as send_error:  # e.g. the user blocked the bot: nothing more to do
            logger.info("job %s: could not announce the failure: %s", job.id, send_error)
        if job.status_message_id is not None:
            await self.messenger.delete(job.chat_id, job.status_message_id)
        if isinstance(exc, AccountError):
            await self._alert_admins(exc)

    async def _alert_admins(self, exc: AccountError) -> None:
        key = f"alert:{exc.code}"
        last = await self.store.get_setting(key)
        now = datetime.now(UTC)
        if last is not None and (now - datetime.fromisoformat(last)).total_seconds() < (
            ADMIN_ALERT_INTERVAL
        ):
            return
        await self.store.set_setting(key, now.isoformat())
        for admin_id in sorted(self.admin_ids):
            admin = await self.store.get_user(admin_id)
            lang = Lang(admin.language) if admin and admin.language else Lang.from_code(
                admin.telegram_language if admin else None)
            with contextlib.suppress(BotError):
                await self.messenger.send_text(
                    admin_id, text("admin_alert", lang, code=html.escape(exc.code),
                                   message=html.escape(exc.message))
                )

    async def _status(self, job: Job, message: str, *, force: bool = False) -> bool:
        """Edit the job's status line, at most once per interval per chat; True if edited."""
        if job.status_message_id is None:
            return False
        now = self._clock()
        interval = STATUS_EDIT_INTERVAL_GROUP if job.chat_id < 0 else STATUS_EDIT_INTERVAL_PRIVATE
        last = self._last_status_edit.get(job.chat_id)
        if not force and last is not None and now - last < interval:
            return False
        self._last_status_edit[job.chat_id] = now
        try:
            await self.messenger.edit_text(job.chat_id, job.status_message_id, message)
        except BotError as exc:  # a status line is never worth failing a job over
            logger.info("status edit for job %s failed: %s", job.id, exc)
            return False
        return True

    @staticmethod
    def spec_of(job: Job) -> tuple[ParsedCommand, Lang]:
        data = json.loads(job.spec_json)
        return ParsedCommand.from_json(data["parsed"]), _lang_of(data.get("lang"))
