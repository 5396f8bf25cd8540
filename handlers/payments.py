"""/buy, a pack's button, the pre-checkout answer, the successful payment, /paysupport, /terms.

The logic is in :mod:`bot.payments`; these read the update, ask it, and answer Telegram. The
payments call PTB's bot methods directly (send_invoice, answer_pre_checkout_query): the
Messenger port is the job pipeline's.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable

from telegram import LabeledPrice, Update
from telegram.error import TelegramError

from bot.access import AccessPolicy
from bot.callback_data import BuyPack
from bot.jobs.persist import persist
from bot.payments import (
    CURRENCY,
    Checkout,
    InvoicePayload,
    Paid,
    credit_for,
    judge_checkout,
    offered,
)
from bot.ports import Button
from bot.services import BotContext
from bot.texts import Lang, text
from handlers.common import language_of, reply

logger = logging.getLogger(__name__)


async def buy(update: Update, context: BotContext) -> None:
    """/buy: the packs on offer as buttons, or that nothing is sold."""
    message = update.effective_message
    if message is None:
        return
    lang = await language_of(update, context)
    packs = context.services.settings.star_packs
    if not packs:
        await reply(message, context, text("stars_off", lang))
        return
    keyboard = tuple(
        (Button(text("stars_pack_button", lang, images=pack.images, stars=pack.stars),
                BuyPack(pack.images, pack.stars).encode()),)
        for pack in packs
    )
    await context.services.messenger.send_text(
        message.chat_id, text("stars_choose", lang), reply_to=message.message_id,
        keyboard=keyboard,
    )


async def buy_pack(update: Update, context: BotContext) -> None:
    """A pack's button: an invoice in Stars for the one who pressed it."""
    query = update.callback_query
    assert query is not None  # routed by BuyPack.PATTERN
    lang = await language_of(update, context)
    pressed = BuyPack.parse(query.data or "")
    pack = None if pressed is None else offered(
        context.services.settings.star_packs, pressed.images, pressed.stars
    )
    if pack is None or query.message is None:
        await _answer_press(query.answer(text("stars_pack_gone", lang), show_alert=True))
        return
    await _answer_press(query.answer())
    payload = InvoicePayload(pack.images, pack.stars, query.from_user.id)
    await context.bot.send_invoice(
        chat_id=query.message.chat.id,
        title=text("stars_invoice_title", lang, images=pack.images),
        description=text("stars_invoice_description", lang, images=pack.images),
        payload=payload.encode(),
        currency=CURRENCY,
        prices=[LabeledPrice(text("stars_invoice_title", lang, images=pack.images),
                             pack.stars)],
    )


async def _answer_press(answering: Awaitable[bool]) -> None:
    try:
        await answering
    except TelegramError as exc:  # too old a press: the invoice is still worth sending
        logger.info("a pack's button press could not be answered: %s", exc)


async def pre_checkout(update: Update, context: BotContext) -> None:
    """Telegram asks before it charges: yes for a pack on offer to an allowed buyer, else why
    not, in the buyer's language (Telegram waits 10 s at most)."""
    query = update.pre_checkout_query
    assert query is not None  # PreCheckoutQueryHandler
    services = context.services
    payer = query.from_user
    stored = await services.store.get_user(payer.id)
    refusal = judge_checkout(
        Checkout(payer_id=payer.id, currency=query.currency, total_amount=query.total_amount,
                 payload=query.invoice_payload),
        packs=services.settings.star_packs,
        # A pre-checkout has no chat: the buyer must be allowed by name (or everyone is).
        allowed=AccessPolicy.from_settings(services.settings).allows(payer.id, None),
        banned=stored is not None and stored.banned,
    )
    if refusal is None:
        await query.answer(ok=True)
        return
    lang = await language_of(update, context)
    logger.info("pre-checkout %s of user %s refused: %s (payload %r)", query.id, payer.id,
                refusal.name, query.invoice_payload)
    await query.answer(ok=False, error_message=text(refusal.value, lang))


async def successful_payment(update: Update, context: BotContext) -> None:
    """Stars were taken: credit the pack once per charge id, and say the new balance."""
    message = update.effective_message
    assert message is not None and message.successful_payment is not None
    payment = message.successful_payment
    payer = message.from_user
    lang = await language_of(update, context)
    credit = credit_for(Paid(
        payer_id=payer.id if payer else 0,
        currency=payment.currency,
        total_amount=payment.total_amount,
        payload=payment.invoice_payload,
        telegram_payment_charge_id=payment.telegram_payment_charge_id,
        provider_payment_charge_id=payment.provider_payment_charge_id,
    ))
    charge = payment.telegram_payment_charge_id
    if credit is None:
        logger.error("payment %s of user %s matches no pack (%s %s, payload %r): not credited",
                     charge, payer.id if payer else None, payment.total_amount,
                     payment.currency, payment.invoice_payload)
        await reply(message, context,
                    text("stars_payment_unknown", lang, charge=html.escape(charge)))
        return
    store = context.services.store
    # Retried through database faults: Telegram will not send a payment again once this
    # update is confirmed, and the Stars are already taken.
    recorded = await persist(lambda: store.record_star_payment(credit), f"payment {charge}")
    if not recorded.credited:
        logger.info("payment %s was credited before; nothing added", charge)
        await reply(message, context,
                    text("stars_paid_before", lang, purchased=recorded.purchased))
        return
    logger.info("payment %s: %d Stars, %d images for user %s", charge, credit.stars,
                credit.pack_images, credit.user_id)
    status = await store.quota_status(credit.user_id)
    await reply(message, context, text(
        "stars_paid", lang, images=credit.pack_images, purchased=recorded.purchased,
        remaining=status.remaining,
    ))


async def pay_support(update: Update, context: BotContext) -> None:
    """/paysupport: where to turn with a payment (Telegram requires it of bots that sell)."""
    await _operator_text(update, context, context.services.settings.pay_support_text,
                         "stars_paysupport")


async def terms(update: Update, context: BotContext) -> None:
    """/terms: the terms of purchase."""
    await _operator_text(update, context, context.services.settings.terms_text, "stars_terms")


async def _operator_text(update: Update, context: BotContext, configured: str,
                         default_key: str) -> None:
    message = update.effective_message
    if message is None:
        return
    if configured:  # the operator's words, as written (escaped: they are not HTML)
        await reply(message, context, html.escape(configured))
        return
    lang: Lang = await language_of(update, context)
    await reply(message, context, text(default_key, lang))
