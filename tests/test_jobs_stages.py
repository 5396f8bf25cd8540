"""The job pipeline stage by stage (``bot/jobs``): inputs, queue, notify, accept, run, deliver.

Each stage is driven directly, against an in-memory Messenger (tests/fakes/messenger.py), the
real SQLite store on a temporary file and the real DashScope adapter talking over loopback to
the emulator, whose tasks take a few hundredths of a second here.
"""

from __future__ import annotations

import asyncio
import html
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from PIL import Image

from bot import callback_data
from bot.api_limits import MAX_SEED
from bot.bailian import BailianClient, Model, PollPolicy, RetryPolicy
from bot.callback_data import Again, Upscale
from bot.commands import Command, ParsedCommand, parse_command
from bot.errors import (
    AccountError,
    DeliveryError,
    ImageError,
    QuotaExceededError,
    RequestValidationError,
    TaskFailedError,
)
from bot.images import PreparedImage
from bot.jobs import Accepted, JobService, JobSpec, Refused, Requester
from bot.jobs.inputs import Inputs, PreparedCache, check_options
from bot.jobs.notify import failure_text, queued_text
from bot.jobs.queue import WorkQueue
from bot.offline.dashscope import DashScopeEmulator
from bot.ports import Keyboard
from bot.texts import Lang, render_error, text
from storage import Job, JobState, NewJob, SqliteStore
from tests.fakes.messenger import FakeMessenger, SentImages
from tests.harness import make_image, make_mask, wait_until

API_KEY = "sk-jobs-stages-0123456789"
BOT_NAME = "Bot"
USER = 101
OTHER = 102
ADMIN = 9000
ADMIN_ZH = 9001  # an admin whose Telegram speaks Chinese
LIMIT = 5
SHANGHAI = ZoneInfo("Asia/Shanghai")
STORE_TIME = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)
EN, ZH = Lang.EN, Lang.ZH
PHOTO = "photo-1"

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.02, total_budget=1.0)
# The emulator's tasks take 0.01-0.03 s here: poll early and densely.
FAST_POLL = PollPolicy(
    first_delay=0.02, lag_per_poll=0.001, min_interval=0.01, max_dense_interval=0.02,
    max_interval=0.1, prior_latency=(0.01, 0.05), margin=0.01,
)


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
async def dashscope() -> AsyncIterator[DashScopeEmulator]:
    emulator = DashScopeEmulator(api_key=API_KEY, latency=(0.01, 0.03), seed=11)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.close()


def new_client(session: aiohttp.ClientSession, emulator: DashScopeEmulator) -> BailianClient:
    return BailianClient(
        session, api_root=emulator.base_url + "/api/v1", api_key=API_KEY, qps=50, max_tasks=4,
        retry=FAST_RETRY, request_timeout=5.0, poll_policy=FAST_POLL,
    )


@pytest.fixture
async def client(dashscope: DashScopeEmulator) -> AsyncIterator[BailianClient]:
    async with aiohttp.ClientSession() as session:
        bailian = new_client(session, dashscope)
        try:
            yield bailian
        finally:
            await bailian.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    # A fixed time: a month boundary passing mid-test cannot move the quota figures.
    opened = await SqliteStore.open(
        tmp_path / "jobs.sqlite3", default_limit=LIMIT, tz=SHANGHAI, clock=lambda: STORE_TIME
    )
    async with opened:
        for user_id, language in ((USER, "en"), (OTHER, "en"), (ADMIN, "en"), (ADMIN_ZH, "zh")):
            await opened.touch_user(user_id, f"user{user_id}", f"User {user_id}", language)
        yield opened


@pytest.fixture
def messenger() -> FakeMessenger:
    fake = FakeMessenger()
    fake.add_file(PHOTO, make_image(512, 512))
    return fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def new_service(
    store: SqliteStore, client: BailianClient, messenger: FakeMessenger, clock: ManualClock
) -> JobService:
    return JobService(
        store=store, client=client, messenger=messenger, admin_ids=(ADMIN, ADMIN_ZH),
        wanx_workers=2, qwen_workers=1, clock=clock,
    )


@pytest.fixture
async def service(
    store: SqliteStore, client: BailianClient, messenger: FakeMessenger, clock: ManualClock
) -> AsyncIterator[JobService]:
    jobs = new_service(store, client, messenger, clock)
    try:
        yield jobs
    finally:
        await jobs.stop()


# --- helpers -------------------------------------------------------------------------------------


def parse(command_text: str) -> ParsedCommand:
    parsed = parse_command(command_text, BOT_NAME)
    assert parsed is not None
    return parsed


def requester(
    message_id: int, *, user_id: int = USER, chat_id: int | None = None, lang: Lang = EN,
    is_admin: bool = False,
) -> Requester:
    return Requester(
        user_id=user_id, chat_id=user_id if chat_id is None else chat_id, message_id=message_id,
        lang=lang, is_admin=is_admin, is_group=chat_id is not None and chat_id < 0,
    )


async def accept_job(
    service: JobService, store: SqliteStore, command_text: str, message_id: int, *,
    user_id: int = USER, chat_id: int | None = None, lang: Lang = EN, is_admin: bool = False,
) -> Job:
    """Accept a request for PHOTO and return its job as stored (with its status message id)."""
    who = requester(message_id, user_id=user_id, chat_id=chat_id, lang=lang, is_admin=is_admin)
    result = await service.accept(who, parse(command_text), PHOTO)
    assert isinstance(result, Accepted), result
    return await store.get_job(result.job.id)


async def quota(store: SqliteStore, user_id: int = USER) -> tuple[int, int]:
    status = await store.quota_status(user_id)
    return status.used, status.reserved


def spec_json(command_text: str, lang: Lang = EN) -> str:
    return JobSpec(parse(command_text), lang).to_json()


def new_job(user_id: int, model: Model = Model.WANX_IMAGE_EDIT) -> NewJob:
    command_text = "/colorize" if model is Model.WANX_IMAGE_EDIT else "/edit add a hat"
    parsed = parse(command_text)
    return NewJob(
        user_id=user_id, chat_id=user_id, request_message_id=1, command=parsed.command.value,
        model=model.value, function=parsed.spec.function.value if parsed.spec.function else None,
        spec_json=spec_json(command_text), input_file_id=PHOTO, images_requested=1,
    )


def the_reply(messenger: FakeMessenger, message_id: int) -> str:
    replies = messenger.replies_to(message_id)
    assert len(replies) == 1, replies
    return replies[0].text


def the_reply_after_status(messenger: FakeMessenger, message_id: int) -> str:
    """The reply to a request that follows its queued status line."""
    replies = messenger.replies_to(message_id)
    assert len(replies) == 2, replies
    assert replies[0].text.startswith("🕐")
    return replies[1].text


def the_delivery(messenger: FakeMessenger, message_id: int) -> SentImages:
    deliveries = [d for d in messenger.deliveries if d.reply_to == message_id]
    assert len(deliveries) == 1, deliveries
    return deliveries[0]


def buttons(delivery: SentImages) -> list[object]:
    assert delivery.keyboard is not None
    return [callback_data.parse(button.data) for row in delivery.keyboard for button in row]


def body(emulator: DashScopeEmulator, endpoint: str) -> dict[str, Any]:
    [request] = emulator.requests_to(endpoint)
    assert isinstance(request.body, dict)
    return request.body


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def prepared(size: int) -> PreparedImage:
    return PreparedImage(b"x" * size, "image/png", 1, 1)


# --- inputs --------------------------------------------------------------------------------------


async def test_image_is_downloaded_once_per_file_and_model(messenger: FakeMessenger) -> None:
    inputs = Inputs(messenger)
    first = await inputs.image(PHOTO, Model.WANX_IMAGE_EDIT)
    second = await inputs.image(PHOTO, Model.WANX_IMAGE_EDIT)
    assert second is first
    assert messenger.downloads == [PHOTO]
    # Another model prepares the same photo to other limits: its own entry, from the bytes
    # already downloaded.
    qwen = await inputs.image(PHOTO, Model.QWEN_IMAGE_EDIT)
    assert qwen is not first and await inputs.image(PHOTO, Model.QWEN_IMAGE_EDIT) is qwen
    assert await inputs.raw(PHOTO) == messenger.files[PHOTO]
    assert messenger.downloads == [PHOTO]
    # A mask is cached by its size too, and downloaded once for both sizes.
    messenger.add_file("mask", make_mask(512, 512))
    small = await inputs.mask("mask", (512, 512))
    assert await inputs.mask("mask", (512, 512)) is small
    large = await inputs.mask("mask", (1024, 1024))
    assert (large.width, large.height) == (1024, 1024)
    assert messenger.downloads == [PHOTO, "mask"]


def test_prepared_cache_evicts_the_least_recently_used_past_its_bound() -> None:
    cache = PreparedCache(max_bytes=10)
    a, b, c = prepared(4), prepared(4), prepared(4)
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recently used
    cache.put("c", c)  # 12 bytes: the oldest use, b, goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (a, None, c)
    cache.put("a", prepared(4))  # replacing an entry does not count its old bytes twice
    assert cache.get("c") is c
    cache.put("huge", prepared(11))  # bigger than the whole cache: not kept, nothing evicted
    assert cache.get("huge") is None
    assert cache.get("a") is not None and cache.get("c") is c


async def test_check_refuses_what_is_not_an_image(messenger: FakeMessenger) -> None:
    inputs = Inputs(messenger)
    messenger.add_file("pdf", b"%PDF-1.7\n not a picture at all")
    with pytest.raises(ImageError) as info:
        await inputs.check(parse("/colorize"), "pdf")
    assert info.value.key == "image_not_image"
    with pytest.raises(ImageError) as info:
        await inputs.check(parse("/colorize"), "never-uploaded")
    assert info.value.key == "file_unavailable"


async def test_check_refuses_bad_options_before_downloading(messenger: FakeMessenger) -> None:
    inputs = Inputs(messenger)
    too_many = ParsedCommand(command=Command.COLORIZE, prompt="", n=5)
    with pytest.raises(RequestValidationError) as info:
        await inputs.check(too_many, PHOTO)
    assert info.value.field == "n"
    with pytest.raises(RequestValidationError) as info:
        await inputs.check(parse("/erase a clean table"), PHOTO)  # masked edit, no mask
    assert info.value.field == "mask_image"
    with pytest.raises(RequestValidationError) as info:
        await inputs.check(parse("/upscale 2"), PHOTO, "some-mask")  # a mask it cannot take
    assert info.value.field == "mask_image"
    assert messenger.downloads == []


async def test_check_refuses_a_mask_or_ratio_that_does_not_fit(messenger: FakeMessenger) -> None:
    inputs = Inputs(messenger)
    messenger.add_file("wide-mask", make_mask(1024, 512))
    with pytest.raises(ImageError) as info:
        await inputs.check(parse("/erase a clean table"), PHOTO, "wide-mask")
    assert info.value.key == "mask_aspect_mismatch"
    with pytest.raises(ImageError) as info:
        await inputs.check(parse("/expand ratio=9:1"), PHOTO)
    assert info.value.key == "expand_ratio_unreachable"
    messenger.add_file("mask", make_mask(256, 256))
    await inputs.check(parse("/erase a clean table"), PHOTO, "mask")  # same shape: fine


def test_check_options_needs_a_mask_for_erase_and_refuses_one_elsewhere() -> None:
    with pytest.raises(RequestValidationError) as info:
        check_options(parse("/erase a clean table"), with_mask=False)
    assert info.value.field == "mask_image"
    check_options(parse("/erase a clean table"), with_mask=True)
    with pytest.raises(RequestValidationError):
        check_options(parse("/colorize"), with_mask=True)
    check_options(parse("/expand ratio=16:9"), with_mask=False)  # scales come from the image


# --- queue ---------------------------------------------------------------------------------------


async def test_claims_follow_the_fair_order_and_never_repeat(store: SqliteStore) -> None:
    queue = WorkQueue(store)
    claimed_ids: list[int] = []
    queue.on_claimed = claimed_ids.append
    created = [
        await store.create_job(new_job(user_id, model))
        for user_id, model in (
            (USER, Model.WANX_IMAGE_EDIT), (USER, Model.WANX_IMAGE_EDIT),
            (OTHER, Model.WANX_IMAGE_EDIT), (ADMIN, Model.QWEN_IMAGE_EDIT),
            (USER, Model.WANX_IMAGE_EDIT), (OTHER, Model.WANX_IMAGE_EDIT),
        )
    ]
    u1, u2, o1, q1, u3, o2 = (job.id for job in created)
    # Round robin across users, each user's oldest first.
    assert [job.id for job in await queue.waiting()] == [u1, o1, q1, u2, o2, u3]
    assert await queue.position(u2) == 4

    first = await queue.claim_next(Model.WANX_IMAGE_EDIT)
    assert first.id == u1
    assert await queue.position(u2) == 3  # everyone behind the claimed job moved up
    assert await queue.position(u1) == 1  # claimed: not waiting any more
    rest = [await queue.claim_next(Model.WANX_IMAGE_EDIT) for _ in range(4)]
    assert [job.id for job in rest] == [o1, u2, o2, u3]
    with pytest.raises(TimeoutError):  # every wanx job is claimed: none is handed out twice
        await asyncio.wait_for(queue.claim_next(Model.WANX_IMAGE_EDIT), 0.05)
    assert (await queue.claim_next(Model.QWEN_IMAGE_EDIT)).id == q1
    assert await queue.waiting() == []
    assert claimed_ids == [u1, o1, u2, o2, u3, q1]


async def test_release_wakes_a_waiting_claimer(store: SqliteStore) -> None:
    queue = WorkQueue(store)
    done = await store.create_job(new_job(USER))
    assert (await queue.claim_next(Model.WANX_IMAGE_EDIT)).id == done.id
    claimer = asyncio.create_task(queue.claim_next(Model.WANX_IMAGE_EDIT))
    await asyncio.sleep(0.02)  # it looked, found nothing unclaimed, and sleeps
    waiting = await store.create_job(new_job(OTHER))  # stored without a wake-up
    await asyncio.sleep(0.02)
    assert not claimer.done()  # it sleeps until told something changed
    await store.mark_failed(done.id, "x", "finished")
    queue.release(done.id)
    claimed = await asyncio.wait_for(claimer, 1.0)
    assert claimed.id == waiting.id


# --- notify --------------------------------------------------------------------------------------


async def test_status_edits_are_throttled_per_chat_but_forced_ones_go_out(
    service: JobService, store: SqliteStore, messenger: FakeMessenger, clock: ManualClock
) -> None:
    mine = await accept_job(service, store, "/colorize", 11)
    other = await accept_job(service, store, "/colorize", 12, user_id=OTHER)
    group = await accept_job(service, store, "/colorize", 13, chat_id=-100500)
    status = service.status
    assert await status.show(mine, "one")
    assert not await status.show(mine, "two")  # same chat, same instant
    assert await status.show(other, "x")  # another chat has its own interval
    clock.advance(0.5)
    assert not await status.show(mine, "three")
    assert await status.show(mine, "forced", force=True)
    clock.advance(0.75)
    assert not await status.show(mine, "four")  # 0.75 s since the forced edit
    clock.advance(0.25)
    assert await status.show(mine, "five")
    assert messenger.edits_of(mine.status_message_id or 0) == ["one", "forced", "five"]
    # Groups get a longer interval.
    assert await status.show(group, "g1")
    clock.advance(2.0)
    assert not await status.show(group, "g2")
    clock.advance(1.0)
    assert await status.show(group, "g3")
    assert messenger.edits_of(group.status_message_id or 0) == ["g1", "g3"]


async def test_the_leader_moves_up_queued_lines_another_instance_sent(
    service: JobService, store: SqliteStore, client: BailianClient, messenger: FakeMessenger,
    clock: ManualClock,
) -> None:
    follower = new_service(store, client, messenger, clock)  # takes requests, runs nothing
    for n in range(3):
        await store.touch_user(USER + 100 + n, None, f"U{n}", "en")
    try:
        jobs = [await accept_job(follower, store, "/colorize", 70 + n, user_id=USER + 100 + n)
                for n in range(3)]
        assert [messenger.texts_to(job.chat_id)[-1] for job in jobs] == [
            queued_text(EN, 1), queued_text(EN, 2), queued_text(EN, 3)]
        claimed = await service.queue.claim_next(Model.WANX_IMAGE_EDIT)  # on the leader
        assert claimed.id == jobs[0].id
        second, third = jobs[1].status_message_id or 0, jobs[2].status_message_id or 0
        await wait_until(lambda: bool(messenger.edits_of(third)), timeout=2)
        assert messenger.edits_of(second) == [queued_text(EN, 1)]
        assert messenger.edits_of(third) == [queued_text(EN, 2)]
    finally:
        await follower.stop()


async def test_a_failing_status_edit_returns_false_and_never_raises(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    job = await accept_job(service, store, "/colorize", 21)
    messenger.fail_edits()
    assert not await service.status.show(job, "working", force=True)
    assert messenger.edits == []
    messenger.fail_send_text()
    silent = await service.accept(requester(22), parse("/colorize"), PHOTO)
    assert isinstance(silent, Accepted) and silent.status_message_id is None
    messenger.edit_error = None
    assert not await service.status.show(silent.job, "working", force=True)  # no line to edit
    assert messenger.edits == []


async def test_failure_refunds_marks_failed_and_explains_once(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    job = await accept_job(service, store, "/colorize", 31, lang=ZH)
    assert await quota(store) == (0, 1)
    error = TaskFailedError("InternalError.Algo", "algorithm <process> error")
    await service.failures.fail(job, error)

    assert await quota(store) == (0, 0)
    failed = await store.get_job(job.id)
    assert failed.state is JobState.FAILED and not failed.reservation_open
    assert failed.error_code == error.reason_code == "InternalError.Algo"
    reply = the_reply_after_status(messenger, 31)
    assert reply == f"❌ {render_error(error, ZH)}\n{text('not_charged', ZH)}"
    assert reply.endswith(text("not_charged", ZH))
    assert text("fail_try_again", ZH) in reply  # advice in the user's language...
    assert "process" not in reply  # ...never the service's own words
    assert messenger.deleted == [(USER, job.status_message_id)]

    sent, deleted = len(messenger.sent), len(messenger.deleted)
    await service.failures.fail(job, TaskFailedError("Other", "again"))  # already final
    assert (len(messenger.sent), len(messenger.deleted)) == (sent, deleted)
    assert (await store.get_job(job.id)).error_code == "InternalError.Algo"
    assert await quota(store) == (0, 0)


async def test_account_errors_alert_each_admin_once_per_code_per_hour(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    jobs = [await accept_job(service, store, "/colorize", 40 + i) for i in range(3)]
    arrears = AccountError("Arrearage", "account <overdue>", status=400)
    await service.failures.fail(jobs[0], arrears)
    en_alert = text("admin_alert", EN, code="Arrearage", message=html.escape("account <overdue>"))
    zh_alert = text("admin_alert", ZH, code="Arrearage", message=html.escape("account <overdue>"))
    assert messenger.texts_to(ADMIN) == [en_alert]
    assert messenger.texts_to(ADMIN_ZH) == [zh_alert]
    assert the_reply_after_status(messenger, 40) == f"❌ {failure_text(arrears, EN)}"

    await service.failures.fail(jobs[1], AccountError("Arrearage", "account <overdue>"))
    assert messenger.texts_to(ADMIN) == [en_alert]  # the same problem within the hour: quiet
    assert messenger.texts_to(ADMIN_ZH) == [zh_alert]
    assert the_reply_after_status(messenger, 41) == f"❌ {failure_text(arrears, EN)}"

    await service.failures.fail(jobs[2], AccountError("InvalidApiKey", "bad key"))
    assert messenger.texts_to(ADMIN)[1:] == [
        text("admin_alert", EN, code="InvalidApiKey", message="bad key")
    ]
    assert len(messenger.texts_to(ADMIN_ZH)) == 2
    assert await quota(store) == (0, 0)


# --- accept --------------------------------------------------------------------------------------


async def test_a_banned_user_is_refused_and_nothing_is_reserved(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    await store.set_banned(ADMIN, USER, True)
    result = await service.accept(requester(51), parse("/colorize"), PHOTO)
    assert result == Refused(text("banned", EN))
    assert the_reply(messenger, 51) == text("banned", EN)
    assert messenger.downloads == []
    assert await quota(store) == (0, 0)
    assert await store.resumable_jobs() == []


async def test_a_bad_image_is_refused_before_reserving(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    messenger.add_file("doc", b"GIF89a but then nothing")
    result = await service.accept(requester(52), parse("/colorize"), "doc")
    assert isinstance(result, Refused)
    assert result.message == text("image_corrupt", EN)
    assert the_reply(messenger, 52) == result.message
    assert await quota(store) == (0, 0)
    assert await store.resumable_jobs() == []


async def test_over_quota_is_refused_naming_remaining_requested_and_limit(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    await accept_job(service, store, "/colorize n=4", 53)
    result = await service.accept(requester(54), parse("/colorize n=2"), PHOTO)
    expected = render_error(QuotaExceededError(1, 2, limit=LIMIT, resets_on="2026-06-01"), EN)
    assert result == Refused(expected)
    assert "2 images needed, 1 left (of 5)" in expected
    assert "resets on 2026-06-01" in expected and "ask an admin" in expected
    assert the_reply(messenger, 54) == expected
    assert await quota(store) == (0, 4)
    assert len(await store.resumable_jobs()) == 1


@pytest.mark.parametrize(
    ("command_text", "seed"),
    [("/upscale 2", "chosen"), ("/upscale 2 seed=42", 42), ("/edit add a red hat", None)],
)
async def test_a_good_request_is_queued_with_its_status_line(
    service: JobService, store: SqliteStore, messenger: FakeMessenger, command_text: str,
    seed: object,
) -> None:
    await accept_job(service, store, "/colorize", 60, user_id=OTHER)  # someone is ahead
    result = await service.accept(requester(61), parse(command_text), PHOTO)
    assert isinstance(result, Accepted)
    job = await store.get_job(result.job.id)
    assert job.state is JobState.QUEUED and job.reservation_open
    assert (job.user_id, job.chat_id, job.request_message_id) == (USER, USER, 61)
    assert job.input_file_id == PHOTO and job.images_requested == 1
    spec = JobSpec.of(job)
    assert spec.lang is EN and spec.parsed.command is parse(command_text).command
    if seed == "chosen":  # wanx without a seed: we choose one, so the caption can show it
        assert spec.parsed.seed is not None and 0 <= spec.parsed.seed <= MAX_SEED
    else:
        assert spec.parsed.seed == seed
    assert await quota(store) == (0, 1)
    [status_line] = messenger.replies_to(61)
    assert status_line.text == queued_text(EN, 2)
    assert result.status_message_id == status_line.message_id == job.status_message_id


async def test_a_request_whose_status_line_fails_is_still_accepted(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    messenger.fail_send_text()
    result = await service.accept(requester(62), parse("/colorize"), PHOTO)
    assert isinstance(result, Accepted) and result.status_message_id is None
    job = await store.get_job(result.job.id)
    assert job.state is JobState.QUEUED and job.status_message_id is None
    assert await quota(store) == (0, 1)
    assert messenger.sent == []


async def test_an_admin_is_neither_limited_nor_banned(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    await store.set_banned(ADMIN_ZH, ADMIN, True)
    first = await accept_job(service, store, "/colorize n=4", 63, user_id=ADMIN, is_admin=True)
    await accept_job(service, store, "/colorize n=4", 64, user_id=ADMIN, is_admin=True)
    assert await quota(store, ADMIN) == (0, 8)  # recorded, though over the limit of 5
    await service.workers.run(first)
    caption = the_delivery(messenger, 63).caption
    assert caption.endswith(text("caption_unlimited", EN))
    assert await quota(store, ADMIN) == (4, 4)


# --- run and deliver -----------------------------------------------------------------------------


async def test_a_wanx_job_runs_to_delivery(
    service: JobService, store: SqliteStore, messenger: FakeMessenger,
    dashscope: DashScopeEmulator,
) -> None:
    job = await accept_job(service, store, "/upscale 2", 71)
    seed = JobSpec.of(job).parsed.seed
    await service.workers.run(job)

    done = await store.get_job(job.id)
    assert done.state is JobState.DELIVERED
    assert done.images_delivered == 1 and not done.reservation_open
    assert await quota(store) == (1, 0)
    delivery = the_delivery(messenger, 71)
    assert done.result_file_ids == delivery.file_ids == ("result-1",)
    [image] = delivery.images
    assert image.as_photo and image.also_document  # /upscale sends the full file as well
    assert image_size(image.data) == (1024, 1024)
    assert image.filename == f"upscale-{job.id}-1.png"
    assert delivery.caption == " · ".join([
        f"✅ {text('cmd_upscale', EN)}", text("caption_seed", EN, seed=seed),
        text("caption_remaining", EN, remaining=LIMIT - 1),
    ])
    assert buttons(delivery) == [Again(job.id), Upscale(job.id, 0)]
    status_id = job.status_message_id
    assert messenger.edits_of(status_id or 0) == [
        text("status_working", EN), text("status_sending", EN)
    ]
    assert messenger.deleted == [(USER, status_id)]
    assert messenger.uploading == [USER]
    # What went to DashScope: the seed we chose, the factor, and the task id is on the job.
    submit = body(dashscope, "submit")
    assert submit["input"]["function"] == "super_resolution"
    assert submit["parameters"] == {"n": 1, "seed": seed, "upscale_factor": 2}
    assert done.task_id == dashscope.requests_to("submit")[0].task_id
    assert messenger.downloads == [PHOTO]  # prepared at acceptance, not fetched again


async def test_a_qwen_edit_job_runs_to_delivery(
    service: JobService, store: SqliteStore, messenger: FakeMessenger,
    dashscope: DashScopeEmulator,
) -> None:
    job = await accept_job(service, store, "/edit make the sky red -- blurry", 72)
    await service.workers.run(job)

    done = await store.get_job(job.id)
    assert done.state is JobState.DELIVERED and done.images_delivered == 1
    assert done.task_id is None  # one synchronous call, no task
    assert await quota(store) == (1, 0)
    delivery = the_delivery(messenger, 72)
    assert done.result_file_ids == delivery.file_ids
    [image] = delivery.images
    assert image.as_photo and not image.also_document
    assert delivery.caption == (
        f"✅ {text('cmd_edit', EN)} · {text('caption_remaining', EN, remaining=LIMIT - 1)}"
    )
    assert buttons(delivery) == [Again(job.id), Upscale(job.id, 0)]
    assert messenger.deleted == [(USER, job.status_message_id)]
    qwen = body(dashscope, "qwen")
    assert qwen["input"]["messages"][0]["content"][1] == {"text": "make the sky red"}
    assert qwen["parameters"] == {"negative_prompt": "blurry"}
    assert dashscope.requests_to("submit") == []


async def test_a_group_caption_shows_no_seed_and_an_edit_offers_no_new_seed(
    service: JobService, store: SqliteStore, messenger: FakeMessenger,
    dashscope: DashScopeEmulator,
) -> None:
    group = await accept_job(service, store, "/colorize seed=42", 78, chat_id=-100500)
    await service.workers.run(group)
    delivery = the_delivery(messenger, 78)
    assert delivery.caption == (
        f"✅ {text('cmd_colorize', EN)} · {text('caption_remaining', EN, remaining=LIMIT - 1)}"
    )
    assert "42" not in delivery.caption  # the seed is for the requester, not the group
    assert delivery.caption.endswith("4 images left this month")
    assert delivery.keyboard is not None
    assert delivery.keyboard[0][0].label == text("btn_again", EN)  # wanx: a new seed
    edit = await accept_job(service, store, "/edit make the sky red", 79)
    await service.workers.run(edit)
    delivery = the_delivery(messenger, 79)
    assert delivery.keyboard is not None
    assert delivery.keyboard[0][0].label == text("btn_again_qwen", EN) == "🔁 Again"
    assert "seed" not in delivery.keyboard[0][0].label


async def test_a_failed_task_fails_the_job_and_refunds(
    service: JobService, store: SqliteStore, messenger: FakeMessenger,
    dashscope: DashScopeEmulator,
) -> None:
    job = await accept_job(service, store, "/colorize", 73)
    dashscope.script_next_task("failed", code="InternalError.Algo", message="model crashed")
    await service.workers.run(job)

    failed = await store.get_job(job.id)
    assert failed.state is JobState.FAILED and failed.error_code == "InternalError.Algo"
    assert failed.task_id is not None  # it was submitted before it failed
    assert await quota(store) == (0, 0)
    assert the_reply_after_status(messenger, 73) == (
        f"❌ {text('fail_try_again', EN)}\n{text('not_charged', EN)}"
    )
    assert failed.error_message is not None and "model crashed" in failed.error_message
    assert messenger.deliveries == []
    assert messenger.deleted == [(USER, job.status_message_id)]


async def test_a_partial_task_charges_only_the_image_that_came_out(
    service: JobService, store: SqliteStore, messenger: FakeMessenger,
    dashscope: DashScopeEmulator,
) -> None:
    job = await accept_job(service, store, "/colorize n=2", 74)
    assert await quota(store) == (0, 2)
    dashscope.script_next_task("partial", code="InternalError.Timeout", failed_images=1)
    await service.workers.run(job)

    done = await store.get_job(job.id)
    assert done.state is JobState.DELIVERED and done.images_delivered == 1
    assert await quota(store) == (1, 0)
    delivery = the_delivery(messenger, 74)
    assert len(delivery.images) == 1
    assert text("caption_partial", EN, delivered=1, requested=2) in delivery.caption
    assert text("caption_remaining", EN, remaining=LIMIT - 1) in delivery.caption
    assert buttons(delivery) == [Again(job.id), Upscale(job.id, 0)]


async def test_delivery_fails_with_the_expired_text_when_no_result_is_usable(
    service: JobService, store: SqliteStore, messenger: FakeMessenger,
    dashscope: DashScopeEmulator,
) -> None:
    job = await accept_job(service, store, "/colorize n=2", 75)
    gone = dashscope.result_url("no-such-task", 0)  # 404
    expired = dashscope.result_url("no-such-task", 1, expires=int(time.time()) - 60)  # 403
    succeeded = await store.mark_succeeded(job.id, (gone, expired))
    await service.deliverer.deliver(succeeded)

    failed = await store.get_job(job.id)
    assert failed.state is JobState.FAILED and failed.error_code == "ResultExpired"
    assert await quota(store) == (0, 0)
    assert the_reply_after_status(messenger, 75) == (
        f"❌ {text('fail_expired', EN)}\n{text('not_charged', EN)}"
    )
    assert messenger.deliveries == []
    assert len(dashscope.requests_to("result")) == 2  # each tried once: 403/404 are final


async def test_delivery_charges_only_the_results_that_could_be_fetched(
    service: JobService, store: SqliteStore, client: BailianClient, messenger: FakeMessenger,
    dashscope: DashScopeEmulator,
) -> None:
    job = await accept_job(service, store, "/colorize n=2", 76)
    request = await service.inputs.request(JobSpec.of(job).parsed, PHOTO, None)
    task_id = await client.submit(request)
    outcome = await client.wait(task_id)
    await store.mark_submitted(job.id, task_id)
    tampered = outcome.urls[1].replace("Signature=", "Signature=x")
    succeeded = await store.mark_succeeded(job.id, (tampered, outcome.urls[0]))
    await service.deliverer.deliver(succeeded)

    done = await store.get_job(job.id)
    assert done.state is JobState.DELIVERED and done.images_delivered == 1
    assert await quota(store) == (1, 0)
    delivery = the_delivery(messenger, 76)
    [image] = delivery.images
    assert image.filename == f"colorize-{job.id}-2.png"  # named after its place in the results
    assert text("caption_partial", EN, delivered=1, requested=2) in delivery.caption
    assert done.result_file_ids == delivery.file_ids


async def test_a_refused_delivery_fails_the_job_and_refunds(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    job = await accept_job(service, store, "/colorize", 77)
    messenger.fail_send_images()
    await service.workers.run(job)

    failed = await store.get_job(job.id)
    assert failed.state is JobState.FAILED
    assert failed.error_code == DeliveryError("x", permanent=True).reason_code
    assert failed.result_file_ids == ()
    assert await quota(store) == (0, 0)
    assert the_reply_after_status(messenger, 77) == (
        f"❌ {text('fail_delivery', EN)}\n{text('not_charged', EN)}"
    )
    assert messenger.deleted == [(USER, job.status_message_id)]


async def test_start_resumes_unfinished_jobs_and_delivers_each_once(
    service: JobService, store: SqliteStore, messenger: FakeMessenger,
    dashscope: DashScopeEmulator,
) -> None:
    submitted = await accept_job(service, store, "/colorize", 81)
    succeeded = await accept_job(service, store, "/upscale 1", 82, user_id=OTHER)
    queued = await accept_job(service, store, "/edit add a hat", 83)
    # A previous process submitted two tasks, saw one of them succeed, and stopped.
    async with aiohttp.ClientSession() as session:
        previous = new_client(session, dashscope)
        try:
            first = await previous.submit(
                await service.inputs.request(JobSpec.of(submitted).parsed, PHOTO, None)
            )
            second = await previous.submit(
                await service.inputs.request(JobSpec.of(succeeded).parsed, PHOTO, None)
            )
            urls = (await previous.wait(second)).urls
        finally:
            await previous.close()
    await store.mark_submitted(submitted.id, first)
    await store.mark_submitted(succeeded.id, second)
    await store.mark_succeeded(succeeded.id, urls)
    submits = len(dashscope.requests_to("submit"))

    await service.start()

    async def all_final() -> bool:
        return not await store.resumable_jobs()

    await wait_until(all_final, timeout=5.0, interval=0.01)
    await service.stop()
    for job, message_id in ((submitted, 81), (succeeded, 82), (queued, 83)):
        done = await store.get_job(job.id)
        assert done.state is JobState.DELIVERED, done
        assert done.result_file_ids == the_delivery(messenger, message_id).file_ids
    assert len(messenger.deliveries) == 3
    assert (await store.get_job(submitted.id)).attempts == 1
    assert (await store.get_job(succeeded.id)).attempts == 1
    assert (await store.get_job(submitted.id)).task_id == first  # polled, not submitted again
    assert len(dashscope.requests_to("submit")) == submits
    assert len(dashscope.requests_to("qwen")) == 1
    assert await quota(store, USER) == (2, 0)
    assert await quota(store, OTHER) == (1, 0)


async def test_stopping_lets_a_delivery_under_way_finish(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    job = await accept_job(service, store, "/colorize", 84)
    messenger.hold_images = asyncio.Event()
    await service.start()
    await asyncio.wait_for(messenger.images_started.wait(), 2.0)
    stopping = asyncio.create_task(service.stop())
    await asyncio.sleep(0.02)
    assert not stopping.done()  # it waits for the images being sent
    messenger.hold_images.set()
    await asyncio.wait_for(stopping, 2.0)
    assert (await store.get_job(job.id)).state is JobState.DELIVERED
    assert len(messenger.deliveries) == 1


# --- races found by these tests, fixed -----------------------------------------------------------


async def test_concurrent_account_errors_alert_each_admin_once(
    service: JobService, store: SqliteStore, messenger: FakeMessenger
) -> None:
    jobs = [await accept_job(service, store, "/colorize", 45 + i) for i in range(2)]
    await asyncio.gather(*(
        service.failures.fail(job, AccountError("Arrearage", "account overdue")) for job in jobs
    ))
    assert len(messenger.texts_to(ADMIN)) == 1


async def test_stopping_lets_a_resumed_delivery_finish(
    service: JobService, store: SqliteStore, client: BailianClient, messenger: FakeMessenger
) -> None:
    job = await accept_job(service, store, "/colorize", 85)
    task_id = await client.submit(
        await service.inputs.request(JobSpec.of(job).parsed, PHOTO, None)
    )
    urls = (await client.wait(task_id)).urls
    await store.mark_submitted(job.id, task_id)
    await store.mark_succeeded(job.id, urls)
    messenger.hold_images = asyncio.Event()
    await service.start()
    await asyncio.wait_for(messenger.images_started.wait(), 2.0)
    stopping = asyncio.create_task(service.stop())
    await asyncio.sleep(0.02)
    messenger.hold_images.set()
    await asyncio.wait_for(stopping, 2.0)
    assert (await store.get_job(job.id)).state is JobState.DELIVERED


class SlowStatusLine(FakeMessenger):
    """Telegram takes a while to accept the status line answering one request."""

    def __init__(self, request_message_id: int) -> None:
        super().__init__()
        self.request_message_id = request_message_id
        self.status_line_sent = asyncio.Event()

    async def send_text(
        self, chat_id: int, text: str, *, reply_to: int | None = None,
        keyboard: Keyboard | None = None,
    ) -> int:
        if text.startswith("🕐") and reply_to == self.request_message_id:
            await self.status_line_sent.wait()
        return await super().send_text(chat_id, text, reply_to=reply_to, keyboard=keyboard)


async def test_a_job_claimed_before_its_status_line_was_stored_still_clears_it(
    store: SqliteStore, client: BailianClient, clock: ManualClock
) -> None:
    messenger = SlowStatusLine(request_message_id=92)
    messenger.add_file(PHOTO, make_image(512, 512))
    service = new_service(store, client, messenger, clock)
    try:
        messenger.hold_images = asyncio.Event()
        await service.start()
        first = await accept_job(service, store, "/colorize", 91)
        await asyncio.wait_for(messenger.images_started.wait(), 2.0)  # the first job is busy
        accepting = asyncio.create_task(service.accept(
            requester(92), parse(f"/instruct a {DashScopeEmulator.CONTENT_TRIGGER} hat"), PHOTO
        ))

        async def second_stored() -> bool:
            return len(await store.resumable_jobs()) == 2

        await wait_until(second_stored, timeout=2.0, interval=0.005)
        # While the second request's status line is on its way, the first job ends and frees a
        # worker, which takes the second job; its prompt is refused at once on submit.
        messenger.hold_images.set()

        async def second_failed() -> bool:
            return len(messenger.replies_to(92)) == 1

        await wait_until(second_failed, timeout=3.0, interval=0.01)
        messenger.status_line_sent.set()
        result = await accepting
    finally:
        await service.stop()
    assert isinstance(result, Accepted) and result.status_message_id is not None
    assert (await store.get_job(first.id)).state is JobState.DELIVERED
    assert (await store.get_job(result.job.id)).state is JobState.FAILED
    assert messenger.replies_to(92)[0].text.startswith("❌")  # the failure came first
    assert (USER, result.status_message_id) in messenger.deleted
