"""Payments in Stars without Telegram: invoice payloads, the pre-checkout verdict, the credit."""

from __future__ import annotations

import pytest

from bot.config import StarPack
from bot.payments import (
    MAX_PAYLOAD_BYTES,
    Checkout,
    InvoicePayload,
    Paid,
    Refusal,
    credit_for,
    judge_checkout,
)

PACKS = (StarPack(10, 50), StarPack(50, 200))
ALICE = 42


def test_a_payload_round_trips_and_fits_telegram() -> None:
    payload = InvoicePayload(10, 50, ALICE)
    assert payload.encode() == "pack:10:50:42"
    assert InvoicePayload.parse("pack:10:50:42") == payload
    longest = InvoicePayload(999_999, 99_999, 10**16 - 1).encode()
    assert len(longest.encode()) <= MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    "raw",
    ["", "pack:10:50", "pack:10:50:42:1", "pack:010:50:42", "pack:10:50:0", "pack:10:50:-1",
     "pack:１0:50:42", "pack:10:50:42\n", "PACK:10:50:42", "pack:1000000:50:42"],
)
def test_anything_else_is_not_a_payload_of_ours(raw: str) -> None:
    assert InvoicePayload.parse(raw) is None


def checkout(**changes: object) -> Checkout:
    fields: dict[str, object] = {"payer_id": ALICE, "currency": "XTR", "total_amount": 50,
                                 "payload": "pack:10:50:42"}
    return Checkout(**(fields | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "packs", "allowed", "banned", "verdict"),
    [
        (checkout(), PACKS, True, False, None),
        (checkout(), (), True, False, Refusal.OFF),
        (checkout(payload="pack:10:40:42", total_amount=40), PACKS, True, False, Refusal.PACK),
        (checkout(payload="pack:7:35:42", total_amount=35), PACKS, True, False, Refusal.PACK),
        (checkout(total_amount=49), PACKS, True, False, Refusal.PACK),
        (checkout(currency="USD"), PACKS, True, False, Refusal.PACK),
        (checkout(payload="other"), PACKS, True, False, Refusal.PACK),
        (checkout(payer_id=43), PACKS, True, False, Refusal.PAYER),
        (checkout(), PACKS, False, False, Refusal.ACCESS),
        (checkout(), PACKS, True, True, Refusal.BANNED),
    ],
    ids=["ok", "off", "price changed", "unknown pack", "wrong total", "not Stars",
         "not a payload", "someone else's", "not allowed", "banned"],
)
def test_the_pre_checkout_verdict(
    query: Checkout, packs: tuple[StarPack, ...], allowed: bool, banned: bool,
    verdict: Refusal | None,
) -> None:
    assert judge_checkout(query, packs=packs, allowed=allowed, banned=banned) is verdict


def paid(**changes: object) -> Paid:
    fields: dict[str, object] = {
        "payer_id": ALICE, "currency": "XTR", "total_amount": 50, "payload": "pack:10:50:42",
        "telegram_payment_charge_id": "ch-1", "provider_payment_charge_id": "",
    }
    return Paid(**(fields | changes))  # type: ignore[arg-type]


def test_a_payment_credits_the_pack_its_payload_names() -> None:
    credit = credit_for(paid())
    assert credit is not None
    assert (credit.user_id, credit.pack_images, credit.stars) == (ALICE, 10, 50)
    assert credit.telegram_payment_charge_id == "ch-1"
    assert credit.provider_payment_charge_id is None


@pytest.mark.parametrize(
    "changes",
    [{"payload": "nope"}, {"currency": "USD"}, {"total_amount": 49}, {"payer_id": 7}],
)
def test_a_payment_that_is_not_a_pack_of_ours_credits_nothing(changes: dict[str, object]) -> None:
    assert credit_for(paid(**changes)) is None
