"""Images bought with Telegram Stars in the store: the ledger credits once per charge, jobs take
the monthly quota first, give back to where they took from, and a month's end keeps them.
On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.errors import QuotaExceededError, StarPaymentNotFoundError
from storage import SqliteStore
from storage.models import NewStarPayment, StarPaymentState
from tests.stores import Stores
from tests.test_storage import SHANGHAI, FakeClock, new_job

ALICE = 1


def paid(charge: str = "charge-1", images: int = 10, stars: int = 50,
         user_id: int = ALICE) -> NewStarPayment:
    return NewStarPayment(
        user_id=user_id, pack_images=images, stars=stars, telegram_payment_charge_id=charge,
        provider_payment_charge_id=None, payload=f"pack:{images}:{stars}:{user_id}",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
async def store(stores: Stores, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    # A monthly quota of 2, so purchased images come into play quickly.
    async with await stores.open(default_limit=2, tz=SHANGHAI, clock=clock) as opened:
        await opened.touch_user(ALICE, "alice", "Alice", "en")
        yield opened


async def test_a_payment_is_recorded_and_credited_once_per_charge(store: SqliteStore) -> None:
    first = await store.record_star_payment(paid())
    assert first.credited and first.purchased == 10
    assert first.payment.state is StarPaymentState.PAID
    assert (first.payment.stars, first.payment.month) == (50, "2026-11")
    again = await store.record_star_payment(paid())
    assert not again.credited and again.purchased == 10
    assert again.payment == first.payment
    status = await store.quota_status(ALICE)
    assert (status.purchased, status.monthly_remaining, status.remaining) == (10, 2, 12)


async def test_the_same_charge_at_once_from_two_stores_is_credited_once(
    stores: Stores, store: SqliteStore, clock: FakeClock
) -> None:
    async with await stores.open(default_limit=2, tz=SHANGHAI, clock=clock) as other:
        results = await asyncio.gather(*(
            s.record_star_payment(paid()) for s in (store, other, store, other)
        ))
    assert [r.credited for r in results].count(True) == 1
    assert (await store.quota_status(ALICE)).purchased == 10


async def test_a_payer_never_seen_is_created_and_credited(store: SqliteStore) -> None:
    credit = await store.record_star_payment(paid(user_id=77))
    assert credit.credited and credit.purchased == 10
    assert await store.get_user(77) is not None


async def test_jobs_take_the_monthly_quota_first_then_purchased(store: SqliteStore) -> None:
    await store.record_star_payment(paid(images=3))
    job = await store.create_job(new_job(ALICE, 4))  # 2 monthly + 2 purchased
    status = await store.quota_status(ALICE)
    assert (status.reserved, status.purchased, status.remaining) == (2, 1, 1)
    with pytest.raises(QuotaExceededError) as refused:
        await store.create_job(new_job(ALICE, 2))
    assert refused.value.remaining == 1
    # Three of four delivered: the undelivered one goes back to purchased (taken last).
    await store.settle(job.id, 3)
    status = await store.quota_status(ALICE)
    assert (status.used, status.reserved, status.purchased) == (2, 0, 2)


async def test_a_refunded_job_gives_back_to_where_it_took_from(store: SqliteStore) -> None:
    await store.record_star_payment(paid(images=5))
    job = await store.create_job(new_job(ALICE, 4))
    assert (await store.quota_status(ALICE)).purchased == 3
    await store.mark_failed(job.id, "X", "failed")
    status = await store.quota_status(ALICE)
    assert (status.used, status.reserved, status.purchased, status.remaining) == (0, 0, 5, 7)


async def test_a_job_within_the_monthly_quota_leaves_purchased_alone(store: SqliteStore) -> None:
    await store.record_star_payment(paid(images=5))
    job = await store.create_job(new_job(ALICE, 2))
    await store.settle(job.id, 1)
    status = await store.quota_status(ALICE)
    assert (status.used, status.purchased) == (1, 5)


async def test_an_admins_unlimited_job_takes_no_purchased_images(store: SqliteStore) -> None:
    await store.record_star_payment(paid(images=5))
    job = await store.create_job(new_job(ALICE, 4, unlimited=True))
    assert (await store.quota_status(ALICE)).purchased == 5
    await store.settle(job.id, 4)
    status = await store.quota_status(ALICE)
    assert (status.used, status.purchased) == (4, 5)


async def test_an_album_takes_monthly_first_in_order_then_purchased(store: SqliteStore) -> None:
    await store.record_star_payment(paid(images=5))
    jobs = await store.create_album_jobs([new_job(ALICE, 1) for _ in range(4)])
    assert (await store.quota_status(ALICE)).purchased == 3
    for creation in jobs:  # every image fails: all back where they came from
        await store.refund(creation.job.id)
    status = await store.quota_status(ALICE)
    assert (status.reserved, status.purchased, status.remaining) == (0, 5, 7)


async def test_purchased_images_outlive_the_month(store: SqliteStore, clock: FakeClock) -> None:
    await store.record_star_payment(paid(images=5))
    job = await store.create_job(new_job(ALICE, 3))
    await store.settle(job.id, 3)
    assert (await store.quota_status(ALICE)).purchased == 4
    clock.now = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
    status = await store.quota_status(ALICE)
    assert (status.month, status.used, status.purchased, status.remaining) == (
        "2026-12", 0, 4, 6
    )


async def test_a_refund_takes_back_only_the_unused_images(store: SqliteStore) -> None:
    await store.record_star_payment(paid("charge-1", images=10))
    await store.record_star_payment(paid("charge-2", images=3))
    job = await store.create_job(new_job(ALICE, 2 + 11))  # 11 of the 13 purchased
    await store.settle(job.id, 13)
    refund = await store.refund_star_payment(9000, "charge-1")
    assert refund.refunded and (refund.images_removed, refund.purchased) == (2, 0)
    assert refund.payment.state is StarPaymentState.REFUNDED
    assert refund.payment.images_removed == 2 and refund.payment.refunded_at is not None
    again = await store.refund_star_payment(9000, "charge-1")
    assert not again.refunded and again.images_removed == 2
    assert [(e.action, e.value) for e in await store.audit_log()] == [
        ("star_refund", "charge-1 -2")
    ]
    with pytest.raises(StarPaymentNotFoundError):
        await store.refund_star_payment(9000, "no-such-charge")


async def test_revenue_by_month_and_in_all(store: SqliteStore, clock: FakeClock) -> None:
    await store.record_star_payment(paid("c1", stars=50))
    await store.record_star_payment(paid("c2", images=50, stars=200))
    clock.now = datetime(2026, 12, 2, tzinfo=UTC)
    await store.record_star_payment(paid("c3", stars=50))
    await store.refund_star_payment(9000, "c1")
    december = await store.star_revenue()
    assert (december.paid_month, december.payments_month, december.refunded_month,
            december.refunds_month) == (50, 1, 50, 1)
    assert (december.paid_total, december.payments_total, december.refunded_total,
            december.refunds_total) == (300, 3, 50, 1)
    november = await store.star_revenue("2026-11")
    assert (november.paid_month, november.refunded_month) == (250, 0)
