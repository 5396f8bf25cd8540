"""The Telegram fake's payments in Stars: sendInvoice, the pre-checkout, the payment, refunds,
each validated as the real Bot API does, driven by real python-telegram-bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from telegram import Bot, LabeledPrice, Update
from telegram.error import BadRequest

from bot.offline.bot_api import FakeTelegram
from tests.test_fake_telegram import make_bot

ALICE = 501


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.close()
    assert server.internal_errors == []


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with make_bot(fake) as client:
        yield client


def invoice(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "chat_id": ALICE, "title": "10 images", "description": "Ten more images",
        "payload": "pack:10:50:501", "currency": "XTR",
        "prices": [LabeledPrice("10 images", 50)],
    }
    return params | overrides


async def test_an_invoice_in_stars_is_sent_into_the_chat(fake: FakeTelegram, bot: Bot) -> None:
    fake.private_chat(fake.user(ALICE))
    sent = await bot.send_invoice(**invoice())
    assert sent.invoice is not None
    assert (sent.invoice.title, sent.invoice.currency, sent.invoice.total_amount) == (
        "10 images", "XTR", 50
    )
    assert fake.messages_in(ALICE)[-1]["invoice"]["total_amount"] == 50


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"currency": "USD"}, "PAYMENT_PROVIDER_INVALID"),
        ({"provider_token": "284685063:TEST:abc"}, "PAYMENT_PROVIDER_INVALID"),
        ({"prices": [LabeledPrice("a", 30), LabeledPrice("b", 20)]}, "STARS_INVOICE_INVALID"),
        ({"prices": [LabeledPrice("a", 0)]}, "STARS_INVOICE_INVALID"),
        ({"payload": "x" * 129}, "INVOICE_PAYLOAD_INVALID"),
        ({"title": "t" * 33}, "INVOICE_TITLE_INVALID"),
        ({"description": "d" * 256}, "INVOICE_DESCRIPTION_INVALID"),
    ],
    ids=["other currency", "provider token", "two prices", "zero", "payload 129 bytes",
         "title 33", "description 256"],
)
async def test_an_invoice_the_api_would_refuse_is_refused(
    fake: FakeTelegram, bot: Bot, overrides: dict[str, Any], reason: str
) -> None:
    fake.private_chat(fake.user(ALICE))
    with pytest.raises(BadRequest, match=rf"(?i){reason}"):
        await bot.send_invoice(**invoice(**overrides))
    assert "invoice" not in (fake.messages_in(ALICE) or [{}])[-1]


async def test_a_payload_of_128_bytes_is_the_most_taken(fake: FakeTelegram, bot: Bot) -> None:
    fake.private_chat(fake.user(ALICE))
    await bot.send_invoice(**invoice(payload="é" * 64))  # 128 bytes in UTF-8


async def pre_checkout(fake: FakeTelegram, bot: Bot) -> tuple[dict[str, Any], str]:
    """Alice is sent an invoice and presses Pay; the bot receives the pre-checkout query."""
    alice = fake.user(ALICE)
    fake.private_chat(alice)
    sent = await bot.send_invoice(**invoice())
    query = fake.pay(alice, fake.bot_message(ALICE, sent.message_id))
    updates = await bot.get_updates(timeout=0)
    received = updates[-1].pre_checkout_query
    assert received is not None
    assert (received.invoice_payload, received.total_amount, received.currency) == (
        "pack:10:50:501", 50, "XTR"
    )
    return alice, query["id"]


async def test_a_pre_checkout_is_answered_once(fake: FakeTelegram, bot: Bot) -> None:
    _, query_id = await pre_checkout(fake, bot)
    assert await bot.answer_pre_checkout_query(query_id, ok=True)
    assert fake.pre_checkout_answer(query_id) == {"ok": True, "error_message": None}
    with pytest.raises(BadRequest, match=r"(?i)QUERY_ID_INVALID"):
        await bot.answer_pre_checkout_query(query_id, ok=True)


async def test_a_refusal_needs_its_reason(fake: FakeTelegram, bot: Bot) -> None:
    _, query_id = await pre_checkout(fake, bot)
    with pytest.raises(BadRequest, match=r"(?i)ERROR_MESSAGE_EMPTY"):
        await bot.answer_pre_checkout_query(query_id, ok=False)
    await bot.answer_pre_checkout_query(query_id, ok=False, error_message="Sold out")
    assert fake.pre_checkout_answer(query_id) == {"ok": False, "error_message": "Sold out"}


async def test_an_answer_after_the_timeout_is_too_late(fake: FakeTelegram, bot: Bot) -> None:
    _, query_id = await pre_checkout(fake, bot)
    fake.pre_checkout_timeout = 0.0  # Telegram's 10 s, already past
    with pytest.raises(BadRequest, match="too old"):
        await bot.answer_pre_checkout_query(query_id, ok=True)
    assert fake.pre_checkout_answer(query_id) is None


async def test_a_payment_follows_an_approved_pre_checkout_and_refunds_once(
    fake: FakeTelegram, bot: Bot
) -> None:
    _, query_id = await pre_checkout(fake, bot)
    query = fake._pre_checkouts[query_id].query
    with pytest.raises(AssertionError, match="not approved"):
        fake.complete_payment(query)
    await bot.answer_pre_checkout_query(query_id, ok=True)
    fake.complete_payment(query)
    updates = await bot.get_updates(offset=0, timeout=0)
    paid = [u for u in updates if u.message and u.message.successful_payment]
    assert len(paid) == 1
    assert isinstance(paid[0], Update) and paid[0].message is not None
    payment = paid[0].message.successful_payment
    assert payment is not None
    assert (payment.currency, payment.total_amount, payment.invoice_payload) == (
        "XTR", 50, "pack:10:50:501"
    )
    charge = payment.telegram_payment_charge_id
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_ID_INVALID"):
        await bot.refund_star_payment(ALICE + 1, charge)
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_ID_INVALID"):
        await bot.refund_star_payment(ALICE, "no-such-charge")
    assert await bot.refund_star_payment(ALICE, charge)
    assert fake.star_refunded(charge)
    with pytest.raises(BadRequest, match=r"(?i)CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(ALICE, charge)
