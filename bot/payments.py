"""Selling images for Telegram Stars: the packs on offer, invoice payloads, the pre-checkout
verdict and what a successful payment credits. Plain logic; handlers/payments.py talks to
Telegram.

The flow: /buy shows STAR_PACKS as buttons (``bot.callback_data.BuyPack``); a press sends an
invoice in Stars (currency XTR, one price, no provider token) whose payload names the pack and
the buyer; Telegram asks before charging (pre_checkout_query) and we answer from
:func:`judge_checkout`; after the charge, the successful_payment message is credited once per
``telegram_payment_charge_id`` (the store records the ledger row and the credit in one
transaction, so a redelivered update or a second instance credits nothing more).

A payment is credited for the pack its payload names even if STAR_PACKS changed between the
pre-checkout answer and the charge: the buyer was told that pack and paid for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Self

from bot.config import StarPack
from storage.models import NewStarPayment

# Telegram Stars; invoices in Stars take exactly one price and no provider token.
CURRENCY = "XTR"
# Bot API sendInvoice: "payload: Bot-defined invoice payload, 1-128 bytes".
MAX_PAYLOAD_BYTES = 128


@dataclass(frozen=True)
class InvoicePayload:
    """``pack:<images>:<stars>:<user id>``: what the invoice sells, and to whom."""

    PATTERN: ClassVar[re.Pattern[str]] = re.compile(
        r"\Apack:(?P<images>[1-9][0-9]{0,5}):(?P<stars>[1-9][0-9]{0,4})"
        r":(?P<user>[1-9][0-9]{0,15})\Z",
        re.ASCII,
    )

    images: int
    stars: int
    user_id: int

    def encode(self) -> str:
        payload = f"pack:{self.images}:{self.stars}:{self.user_id}"
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:  # 38 bytes at most with these bounds
            raise ValueError(f"invoice payload over {MAX_PAYLOAD_BYTES} bytes: {payload!r}")
        return payload

    @classmethod
    def parse(cls, raw: str) -> Self | None:
        match = cls.PATTERN.fullmatch(raw)
        if match is None:
            return None
        return cls(int(match["images"]), int(match["stars"]), int(match["user"]))

    @property
    def pack(self) -> StarPack:
        return StarPack(self.images, self.stars)


def offered(packs: Iterable[StarPack], images: int, stars: int) -> StarPack | None:
    """The pack of ``images`` at ``stars`` if it is on offer now (STAR_PACKS)."""
    wanted = StarPack(images, stars)
    return wanted if wanted in tuple(packs) else None


class Refusal(StrEnum):
    """Why a pre-checkout is refused; each value is the catalogue key of the reason."""

    OFF = "stars_refused_off"
    PACK = "stars_refused_pack"
    PAYER = "stars_refused_payer"
    ACCESS = "stars_refused_access"
    BANNED = "stars_refused_banned"


@dataclass(frozen=True)
class Checkout:
    """What Telegram asks to confirm before it charges (a pre_checkout_query)."""

    payer_id: int
    currency: str
    total_amount: int
    payload: str


def judge_checkout(
    checkout: Checkout, *, packs: tuple[StarPack, ...], allowed: bool, banned: bool
) -> Refusal | None:
    """None: take the payment; else why not.

    The pack must still be on offer at the payload's price, in Stars, for that total; the payer
    must be the buyer the invoice was made for, on the allow-lists and not banned.
    """
    if not packs:
        return Refusal.OFF
    payload = InvoicePayload.parse(checkout.payload)
    if payload is None:
        return Refusal.PACK
    if checkout.payer_id != payload.user_id:
        return Refusal.PAYER
    if not allowed:
        return Refusal.ACCESS
    if banned:
        return Refusal.BANNED
    if (
        checkout.currency != CURRENCY
        or checkout.total_amount != payload.stars
        or offered(packs, payload.images, payload.stars) is None
    ):
        return Refusal.PACK
    return None


@dataclass(frozen=True)
class Paid:
    """A successful_payment as Telegram reported it."""

    payer_id: int
    currency: str
    total_amount: int
    payload: str
    telegram_payment_charge_id: str
    provider_payment_charge_id: str | None


def credit_for(paid: Paid) -> NewStarPayment | None:
    """The ledger row for a payment, or None when it is not a pack of ours in Stars (then an
    operator must look: Telegram took Stars for something we cannot name)."""
    payload = InvoicePayload.parse(paid.payload)
    if (
        payload is None
        or paid.currency != CURRENCY
        or paid.total_amount != payload.stars
        or paid.payer_id != payload.user_id
    ):
        return None
    return NewStarPayment(
        user_id=payload.user_id,
        pack_images=payload.images,
        stars=payload.stars,
        telegram_payment_charge_id=paid.telegram_payment_charge_id,
        provider_payment_charge_id=paid.provider_payment_charge_id or None,
        payload=paid.payload,
    )
