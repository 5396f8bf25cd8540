"""Buying images with Telegram Stars, end to end against the fake Bot API: /buy, the invoice,
the pre-checkout, the payment credited once, images used past the monthly quota, refunds."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.offline.bot_api import ApiCall, FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from bot.texts import Lang, text
from storage.models import StarPaymentState, next_month_start
from tests.harness import ADMIN_ID, Harness, make_image, serving, wait_until

pytestmark = pytest.mark.slow

EN, ZH = Lang.EN, Lang.ZH
PACKS = "10:50,50:200"
ALICE, BOB = 1, 2


@pytest.fixture
async def shop(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The bot selling two packs, with a monthly quota of one image."""
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3", STAR_PACKS=PACKS,
                       MONTHLY_QUOTA="1") as harness:
        yield harness
    assert telegram.internal_errors == []


def keyboard(call: ApiCall) -> list[list[dict[str, Any]]]:
    markup = call.params["reply_markup"]
    rows: list[list[dict[str, Any]]] = (
        json.loads(markup) if isinstance(markup, str) else markup
    )["inline_keyboard"]
    return rows


def decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def says(harness: Harness, user: dict[str, Any], words: str) -> ApiCall:
    tg = harness.telegram
    message = tg.send_text(user, tg.private_chat(user), words)
    return await harness.reply_to(message)


async def invoice_for(
    harness: Harness, user: dict[str, Any], data: str = "buy:10:50"
) -> tuple[dict[str, Any], ApiCall]:
    """/buy, then the pack's button: the invoice message and the sendInvoice call."""
    tg = harness.telegram
    menu = await says(harness, user, "/buy")
    tg.press_button(user, menu.result, data)
    call = await tg.wait_for_call(
        "sendInvoice", lambda c: int(c.params["chat_id"]) == user["id"]
    )
    return call.result, call


async def checkout(harness: Harness, user: dict[str, Any], invoice: dict[str, Any],
                   **changes: Any) -> dict[str, Any]:
    """The user presses Pay; returns the query once the bot answered it."""
    tg = harness.telegram
    query = tg.pay(user, invoice, **changes)
    await tg.wait_for_call("answerPreCheckoutQuery",
                           lambda c: c.params["pre_checkout_query_id"] == query["id"])
    return query


async def bought(harness: Harness, user: dict[str, Any],
                 data: str = "buy:10:50") -> tuple[dict[str, Any], ApiCall]:
    """A whole purchase: the payment message and the bot's confirmation."""
    invoice, _ = await invoice_for(harness, user, data)
    query = await checkout(harness, user, invoice)
    assert harness.telegram.pre_checkout_answer(query["id"]) == {
        "ok": True, "error_message": None
    }
    payment = harness.telegram.complete_payment(query)
    return payment, await harness.reply_to(payment)


def charge_of(payment: dict[str, Any]) -> str:
    return str(payment["successful_payment"]["telegram_payment_charge_id"])


# --- purchases off -------------------------------------------------------------------------------


async def test_buy_when_purchases_are_off_says_so(harness: Harness) -> None:
    alice = harness.user(ALICE)
    li = harness.user(BOB, "Li", language_code="zh-hans")
    assert (await says(harness, alice, "/buy")).params["text"] == text("stars_off", EN)
    assert (await says(harness, li, "/buy")).params["text"] == text("stars_off", ZH)
    quota = (await says(harness, alice, "/quota")).params["text"]
    assert text("quota_purchased", EN, purchased=0) not in quota
    assert not harness.telegram.calls_to("sendInvoice")


async def test_paysupport_and_terms_answer_the_catalogue_or_the_operators_words(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3") as harness:
        alice, li = harness.user(ALICE), harness.user(BOB, "Li", language_code="zh")
        assert (await says(harness, alice, "/paysupport")).params["text"] == text(
            "stars_paysupport", EN)
        assert (await says(harness, li, "/terms")).params["text"] == text("stars_terms", ZH)
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3",
                       PAY_SUPPORT_TEXT="Write to <help@x.io>",
                       TERMS_TEXT="All sales final") as harness:
        alice = harness.user(ALICE)
        support = await says(harness, alice, "/paysupport")
        assert support.params["text"] == "Write to &lt;help@x.io&gt;"  # not taken for HTML
        assert support.result["text"] == "Write to <help@x.io>"  # shown as written
        assert (await says(harness, alice, "/terms")).params["text"] == "All sales final"


# --- buying --------------------------------------------------------------------------------------


async def test_buy_shows_the_packs_and_a_pick_sends_an_invoice_in_stars(shop: Harness) -> None:
    tg = shop.telegram
    li = shop.user(BOB, "Li", language_code="zh-hans")
    menu = await says(shop, li, "/buy")
    assert menu.params["text"] == text("stars_choose", ZH)
    assert keyboard(menu) == [
        [{"text": text("stars_pack_button", ZH, images=10, stars=50), "callback_data":
          "buy:10:50"}],
        [{"text": text("stars_pack_button", ZH, images=50, stars=200), "callback_data":
          "buy:50:200"}],
    ]
    tg.press_button(li, menu.result, "buy:50:200")
    invoice = await tg.wait_for_call("sendInvoice")
    params = invoice.params
    assert params["currency"] == "XTR"
    assert decoded(params["prices"]) == [
        {"label": text("stars_invoice_title", ZH, images=50), "amount": 200}
    ]
    assert not params.get("provider_token")
    assert params["payload"] == f"pack:50:200:{BOB}"
    assert params["title"] == text("stars_invoice_title", ZH, images=50)
    assert params["description"] == text("stars_invoice_description", ZH, images=50)
    assert invoice.result["invoice"]["total_amount"] == 200
    answer = await tg.wait_for_call("answerCallbackQuery")
    assert not answer.params.get("text")


async def test_paying_credits_the_pack_once_and_tells_the_balance(
    shop: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    tg, store = shop.telegram, shop.services.store
    alice = shop.user(ALICE)
    payment, confirmation = await bought(shop, alice)
    assert confirmation.params["text"] == text("stars_paid", EN, images=10, purchased=10,
                                               remaining=11)
    charge = charge_of(payment)
    ledger = await store.star_payment(charge)
    assert ledger is not None
    assert (ledger.user_id, ledger.pack_images, ledger.stars, ledger.state) == (
        ALICE, 10, 50, StarPaymentState.PAID
    )
    assert ledger.payload == f"pack:10:50:{ALICE}"

    # Telegram sends the same update again: dropped, credited nothing, said nothing.
    update_id = tg.update_id_of(payment)
    await wait_until(lambda: store.update_handled(update_id))
    replies = len(tg.calls_to("sendMessage"))
    tg.redeliver(update_id)
    await wait_until(lambda: any(
        f"update {update_id} was delivered again after it was handled" in r.getMessage()
        for r in caplog.records
    ))
    assert len(tg.calls_to("sendMessage")) == replies
    assert (await store.quota_status(ALICE)).purchased == 10

    # The same charge in another update (a second instance, a lost record): credited once.
    again = tg.successful_payment(alice, tg.private_chat(alice), payload=ledger.payload,
                                  total_amount=50, charge_id=charge)
    answer = await shop.reply_to(again)
    assert answer.params["text"] == text("stars_paid_before", EN, purchased=10)
    assert (await store.quota_status(ALICE)).purchased == 10
    revenue = await store.star_revenue()
    assert (revenue.payments_total, revenue.paid_total) == (1, 50)


async def test_a_payment_is_never_dropped_by_the_cheap_request_limit(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3", STAR_PACKS=PACKS,
                       CHEAP_REQUEST_BURST="3", CHEAP_REQUEST_INTERVAL="3600") as harness:
        alice = harness.user(ALICE)
        invoice, _ = await invoice_for(harness, alice)  # /buy: one token
        for _ in range(3):  # the rest of the burst, and one over
            telegram.send_text(alice, telegram.private_chat(alice), "hello?")
        query = await checkout(harness, alice, invoice)
        payment = telegram.complete_payment(query)
        confirmation = await harness.reply_to(payment)
        assert confirmation.params["text"].startswith("✅")
        assert (await harness.services.store.quota_status(ALICE)).purchased == 10


# --- using what was bought -----------------------------------------------------------------------


async def test_purchased_images_are_used_after_the_monthly_quota_and_refunded_back(
    shop: Harness,
) -> None:
    tg, store = shop.telegram, shop.services.store
    alice = shop.user(ALICE)
    chat = tg.private_chat(alice)
    await bought(shop, alice)
    first = tg.send_photo(alice, chat, make_image(), "/colorize")  # the monthly image
    await shop.reply_to(first, "sendPhoto")
    await shop.settled()
    status = await store.quota_status(ALICE)
    assert (status.used, status.purchased) == (1, 10)
    second = tg.send_photo(alice, chat, make_image(), "/colorize n=2")  # two purchased
    await shop.reply_to(second, "sendMediaGroup")
    await shop.settled()
    status = await store.quota_status(ALICE)
    assert (status.used, status.purchased, status.remaining) == (1, 8, 8)
    [album] = tg.calls_to("sendMediaGroup")
    assert "8 images left, bought ones included" in json.dumps(album.params["media"])

    shop.emulator.script_next_task("failed")  # a failed job gives its image back
    failed = tg.send_photo(alice, chat, make_image(), "/colorize")
    await shop.settled()
    await wait_until(lambda: any(c.params["text"].startswith("❌")
                                 for c in tg.calls_to("sendMessage")
                                 if c.params.get("reply_parameters")
                                 and decoded(c.params["reply_parameters"])["message_id"]
                                 == failed["message_id"]))
    assert (await store.quota_status(ALICE)).purchased == 8

    quota = (await says(shop, alice, "/quota")).params["text"]
    assert quota == text(
        "quota_status", EN, used=1, reserved=0, limit=1, granted=0, remaining=8,
        reset=next_month_start(store.current_month()), tz=shop.settings.quota_timezone,
    ) + "\n" + text("quota_purchased", EN, purchased=8)


# --- pre-checkout refusals -----------------------------------------------------------------------


@pytest.mark.parametrize("lang", [EN, ZH])
async def test_a_pre_checkout_that_does_not_match_is_refused_in_the_buyers_language(
    shop: Harness, lang: Lang
) -> None:
    tg = shop.telegram
    code = "zh-hans" if lang is ZH else "en"
    alice = shop.user(ALICE, language_code=code)
    bob = shop.user(BOB, "Bob", language_code=code)
    invoice, _ = await invoice_for(shop, alice)
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        (alice, {"total_amount": 40}, "stars_refused_pack"),  # not the invoice's price
        (alice, {"payload": f"pack:7:35:{ALICE}", "total_amount": 35}, "stars_refused_pack"),
        (alice, {"payload": "something else"}, "stars_refused_pack"),
        (bob, {}, "stars_refused_payer"),  # Alice's invoice, Bob's Stars
    ]
    for payer, changes, key in cases:
        query = await checkout(shop, payer, invoice, **changes)
        assert tg.pre_checkout_answer(query["id"]) == {
            "ok": False, "error_message": text(key, lang)
        }, key
    admin = shop.user(ADMIN_ID, "Root")
    await says(shop, admin, f"/ban {ALICE}")
    query = await checkout(shop, alice, invoice)
    assert tg.pre_checkout_answer(query["id"]) == {
        "ok": False, "error_message": text("stars_refused_banned", lang)
    }
    assert (await shop.services.store.star_revenue()).payments_total == 0


async def test_a_payer_off_the_allow_lists_is_refused_with_a_reason(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3", STAR_PACKS=PACKS,
                       ALLOWED_USER_IDS=str(ALICE)) as harness:
        alice = harness.user(ALICE)
        mallory = harness.user(BOB, "Mallory", language_code="zh")
        invoice, _ = await invoice_for(harness, alice)
        query = await checkout(harness, mallory, invoice, payload=f"pack:10:50:{BOB}")
        assert telegram.pre_checkout_answer(query["id"]) == {
            "ok": False, "error_message": text("stars_refused_access", ZH)
        }


async def test_an_invoice_from_before_a_price_change_is_refused_and_its_button_gone(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3", STAR_PACKS=PACKS) as harness:
        alice = harness.user(ALICE)
        invoice, _ = await invoice_for(harness, alice)
        menu = telegram.calls_to("sendMessage")[-1].result
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3",
                       STAR_PACKS="10:60") as harness:
        query = await checkout(harness, alice, invoice)
        assert telegram.pre_checkout_answer(query["id"]) == {
            "ok": False, "error_message": text("stars_refused_pack", EN)
        }
        telegram.press_button(alice, menu, "buy:10:50")
        alert = await telegram.wait_for_call("answerCallbackQuery",
                                             lambda call: "text" in call.params)
        assert alert.params["text"] == text("stars_pack_gone", EN)
        assert len(telegram.calls_to("sendInvoice")) == 1
    async with serving(telegram, emulator, tmp_path / "bot.sqlite3") as harness:  # purchases off
        query = await checkout(harness, alice, invoice)
        assert telegram.pre_checkout_answer(query["id"]) == {
            "ok": False, "error_message": text("stars_refused_off", EN)
        }


# --- refunds and revenue ------------------------------------------------------------------------


async def test_an_admin_refund_gives_the_stars_back_and_takes_the_unused_images(
    shop: Harness,
) -> None:
    tg, store = shop.telegram, shop.services.store
    alice, admin = shop.user(ALICE), shop.user(ADMIN_ID, "Root")
    payment, _ = await bought(shop, alice)
    charge = charge_of(payment)
    chat = tg.private_chat(alice)
    # One image of the monthly quota, then three of the ten bought.
    for caption, sent in (("/colorize", "sendPhoto"), ("/colorize n=3", "sendMediaGroup")):
        await shop.reply_to(tg.send_photo(alice, chat, make_image(), caption), sent)
        await shop.settled()
    assert (await store.quota_status(ALICE)).purchased == 7

    refused = await says(shop, alice, f"/refund {ALICE} {charge}")
    assert refused.params["text"] == text("admin_only", EN)
    assert not tg.calls_to("refundStarPayment")
    unknown = await says(shop, admin, f"/refund {ALICE} nope")
    assert unknown.params["text"] == text("admin_refund_unknown", EN, charge="nope",
                                          user=f"Alice (<code>{ALICE}</code>)")
    usage = await says(shop, admin, f"/refund {ALICE} {charge} more")
    assert usage.params["text"] == text("admin_usage_refund", EN)
    assert (await says(shop, admin, "/refund")).params["text"] == text("admin_need_user", EN)

    done = await says(shop, admin, f"/refund {ALICE} {charge}")
    call = tg.calls_to("refundStarPayment")[-1]
    assert (int(call.params["user_id"]), call.params["telegram_payment_charge_id"]) == (
        ALICE, charge
    )
    assert tg.star_refunded(charge)
    assert done.params["text"] == text(
        "admin_refunded", EN, user=f"Alice (<code>{ALICE}</code>)", stars=50, charge=charge,
        removed=7, images=10, purchased=0,
    )
    ledger = await store.star_payment(charge)
    assert ledger is not None and ledger.state is StarPaymentState.REFUNDED
    assert ledger.images_removed == 7 and ledger.refunded_at is not None
    status = await store.quota_status(ALICE)
    assert (status.purchased, status.used) == (0, 1)  # the images used stay used

    again = await says(shop, admin, f"/refund {ALICE} {charge}")
    when = ledger.refunded_at.astimezone(shop.settings.tz).strftime("%Y-%m-%d %H:%M")
    assert again.params["text"] == text("admin_refund_again", EN, charge=charge, when=when)
    assert len(tg.calls_to("refundStarPayment")) == 1

    report = (await says(shop, admin, "/usage")).params["text"]
    assert text("usage_stars", EN, paid_month=50, payments_month=1, refunded_month=50,
                refunds_month=1, paid_total=50, payments_total=1, refunded_total=50,
                refunds_total=1) in report


async def test_a_refund_telegram_already_made_brings_the_ledger_along(shop: Harness) -> None:
    tg, store = shop.telegram, shop.services.store
    alice, admin = shop.user(ALICE), shop.user(ADMIN_ID, "Root")
    payment, _ = await bought(shop, alice)
    charge = charge_of(payment)
    tg._star_charges[charge].refunded = True  # refunded at Telegram, the ledger never told
    synced = await says(shop, admin, f"/refund {ALICE} {charge}")
    assert synced.params["text"] == text(
        "admin_refund_synced", EN, charge=charge, removed=10, purchased=0,
        user=f"Alice (<code>{ALICE}</code>)",
    )
    ledger = await store.star_payment(charge)
    assert ledger is not None and ledger.state is StarPaymentState.REFUNDED


async def test_the_menu_offers_buy_paysupport_and_terms_and_admins_refund(shop: Harness) -> None:
    public = [c["command"] for c in shop.telegram.commands(language_code="en")]
    assert {"buy", "paysupport", "terms"} <= set(public) and "refund" not in public
    admin_menu = shop.telegram.commands({"type": "chat", "chat_id": ADMIN_ID}, "")
    assert "refund" in [c["command"] for c in admin_menu]


async def test_out_of_images_points_to_buy_while_packs_are_on_sale(shop: Harness) -> None:
    tg = shop.telegram
    alice = shop.user(ALICE, language_code="zh")
    chat = tg.private_chat(alice)
    first = tg.send_photo(alice, chat, make_image(), "/colorize")  # the one monthly image
    await shop.reply_to(first, "sendPhoto")
    await shop.settled()
    over = tg.send_photo(alice, chat, make_image(), "/colorize")
    refusal = (await shop.reply_to(over)).params["text"]
    assert "/buy" in refusal and "管理员" not in refusal
    assert len(shop.emulator.requests_to("submit")) == 1
