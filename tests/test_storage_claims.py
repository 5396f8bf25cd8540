"""Claims on jobs (SQLite and PostgreSQL): one instance works a job at a time; a claim holds
until its lease ends unless renewed; a cancel and a worker's claim never both win."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

from storage import JobState, NewJob
from storage.sql import SqlStore
from tests.stores import Stores

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONG = timedelta(seconds=60)
SHORT = timedelta(milliseconds=300)
USER = 7


def new_job() -> NewJob:
    return NewJob(user_id=USER, chat_id=USER, request_message_id=1, command="upscale",
                  model="wanx2.1-imageedit", function="super_resolution", spec_json="{}",
                  input_file_id="f", images_requested=1)


async def queued_jobs(store: SqlStore, count: int) -> list[int]:
    await store.touch_user(USER, None, "U", None)
    return [(await store.create_job(new_job())).id for _ in range(count)]


async def test_a_claim_keeps_other_instances_off_until_its_lease_ends(stores: Stores) -> None:
    async with await stores.open(default_limit=10, tz=SHANGHAI) as store:
        [job_id] = await queued_jobs(store, 1)
        claimed = await store.claim_job(job_id, "a", SHORT)
        assert claimed is not None and claimed.state is JobState.QUEUED
        assert await store.claim_job(job_id, "b", LONG) is None
        assert await store.claim_job(job_id, "a", SHORT) is not None  # its own: renewed
        await asyncio.sleep(SHORT.total_seconds() + 0.1)
        assert await store.claim_job(job_id, "b", LONG) is not None  # a dead owner's job
        assert await store.claim_job(job_id, "a", LONG) is None


async def test_renewed_claims_outlive_their_first_lease_and_released_ones_do_not(
    stores: Stores,
) -> None:
    async with await stores.open(default_limit=10, tz=SHANGHAI) as store:
        first, second, third = await queued_jobs(store, 3)
        for job_id in (first, second):
            assert await store.claim_job(job_id, "a", SHORT) is not None
        assert await store.claim_job(third, "c", LONG) is not None
        assert await store.renew_claims("a", LONG) == 2
        await asyncio.sleep(SHORT.total_seconds() + 0.1)
        assert await store.claim_job(first, "b", LONG) is None  # renewed: still a's
        assert await store.release_claims("a") == 2
        assert await store.claim_job(first, "b", LONG) is not None  # released: free at once
        assert await store.claim_job(third, "b", LONG) is None  # c's claim untouched
        assert await store.release_claims() == 2  # everyone's (the SQLite process starting)
        assert await store.claim_job(third, "b", LONG) is not None


async def test_a_final_job_is_never_claimed(stores: Stores) -> None:
    async with await stores.open(default_limit=10, tz=SHANGHAI) as store:
        [job_id] = await queued_jobs(store, 1)
        await store.mark_failed(job_id, "x", "failed")
        assert await store.claim_job(job_id, "a", LONG) is None
        assert await store.renew_claims("a", LONG) == 0


async def test_a_cancel_wins_only_over_a_job_nobody_holds(stores: Stores) -> None:
    async with await stores.open(default_limit=10, tz=SHANGHAI) as store:
        free, held, expired, submitted = await queued_jobs(store, 4)
        assert (await store.quota_status(USER)).reserved == 4
        canceled = await store.cancel_unclaimed(free)
        assert canceled is not None and canceled.state is JobState.CANCELED
        await store.claim_job(held, "a", LONG)
        assert await store.cancel_unclaimed(held) is None
        assert (await store.get_job(held)).state is JobState.QUEUED
        await store.claim_job(expired, "a", SHORT)
        await asyncio.sleep(SHORT.total_seconds() + 0.1)
        assert await store.cancel_unclaimed(expired) is not None
        await store.mark_submitted(submitted, "task-1")
        assert await store.cancel_unclaimed(submitted) is None
        assert (await store.quota_status(USER)).reserved == 2  # refunded: the two cancelled


async def test_two_instances_racing_claims_and_cancels_never_both_win(stores: Stores) -> None:
    # Two stores on one database, as two processes: each job goes to one claimer or is
    # cancelled, never two of those.
    first = await stores.open(default_limit=100, tz=SHANGHAI)
    second = await stores.open(default_limit=100, tz=SHANGHAI)
    try:
        job_ids = await queued_jobs(first, 30)
        outcomes = await asyncio.gather(*(
            asyncio.gather(first.claim_job(job_id, "a", LONG),
                           second.claim_job(job_id, "b", LONG),
                           second.cancel_unclaimed(job_id))
            for job_id in job_ids
        ))
        for job_id, (by_a, by_b, canceled) in zip(job_ids, outcomes, strict=True):
            winners = [outcome for outcome in (by_a, by_b, canceled) if outcome is not None]
            assert len(winners) == 1, (job_id, by_a, by_b, canceled)
            state = (await first.get_job(job_id)).state
            assert state is (JobState.CANCELED if canceled is not None else JobState.QUEUED)
        cancelled = sum(outcome[2] is not None for outcome in outcomes)
        assert (await first.quota_status(USER)).reserved == 30 - cancelled
    finally:
        await first.close()
        await second.close()
