"""Result buttons answer at once and say "On it" only when a job will run; a burst of presses is
one order; a taken job waits for a task slot in words (issue 11)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.errors import BannedError, BudgetExceededError, QuotaExceededError
from bot.offline.bot_api import MAX_CALLBACK_ANSWER_LENGTH, ApiCall, FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from bot.texts import Lang, render_error, text
from tests.harness import API_KEY, Harness, bot_settings, make_image, running, wait_until

pytestmark = pytest.mark.slow

ALICE = 1
EN = Lang.EN


async def _harness(
    telegram: FakeTelegram, tmp_path: Path, latency: float, **settings: str
) -> AsyncIterator[Harness]:
    emulator = DashScopeEmulator(api_key=API_KEY, latency=(latency, latency), seed=5)
    await emulator.start()
    try:
        config = bot_settings(telegram, emulator, tmp_path / "bot.sqlite3", **settings)
        async with running(config) as application:
            yield Harness(telegram, emulator, config, application)
    finally:
        await emulator.close()


@pytest.fixture
async def one_image(telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Harness]:
    """A monthly quota of one image."""
    async for harness in _harness(telegram, tmp_path, 0.1, MONTHLY_QUOTA="1"):
        yield harness


@pytest.fixture
async def one_slot(telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Harness]:
    """One task at a time, tasks of a second (two wanx workers: the second waits for the slot)."""
    async for harness in _harness(telegram, tmp_path, 1.0, DASHSCOPE_MAX_TASKS="1"):
        yield harness


async def delivered(harness: Harness, command: str = "/colorize") -> dict[str, Any]:
    """Alice's delivered result (the bot's photo message, with its buttons)."""
    tg = harness.telegram
    alice = harness.user(ALICE)
    chat = tg.private_chat(alice)
    sent = await harness.reply_to(tg.send_photo(alice, chat, make_image(), command), "sendPhoto")
    await harness.settled(timeout=20)
    return tg.bot_message(chat["id"], int(sent.result["message_id"]))


def button(result: dict[str, Any], prefix: str) -> str:
    return next(b["callback_data"] for row in result["reply_markup"]["inline_keyboard"]
                for b in row if b["callback_data"].startswith(prefix))


def is_alert(call: ApiCall) -> bool:
    return call.params.get("show_alert") in (True, "true", "True")


def chat_messages_after(harness: Harness, index: int) -> list[ApiCall]:
    return [c for c in harness.telegram.calls[index:]
            if c.method in ("sendMessage", "sendPhoto") and str(c.params["chat_id"]) == "1"]


async def test_a_press_without_quota_is_refused_in_its_answer_alone(one_image: Harness) -> None:
    harness, tg = one_image, one_image.telegram
    result = await delivered(harness)
    before = len(tg.calls)
    tg.press_button(harness.users[ALICE], result, button(result, "again:"))
    answer = await tg.wait_for_call("answerCallbackQuery")
    assert answer.result is True  # short enough for an alert
    assert "Not enough quota" in answer.params["text"] and is_alert(answer)
    # The answer is the whole refusal: the next update is handled and nothing else was said.
    alice = harness.users[ALICE]
    await harness.reply_to(tg.send_text(alice, tg.private_chat(alice), "/id"))
    assert [c.params["text"] for c in chat_messages_after(harness, before)
            if "quota" in c.params.get("text", "").lower()] == []
    assert not [c for c in tg.calls_to("answerCallbackQuery")
                if c.params.get("text") == text("button_started", EN)]
    assert len(harness.emulator.requests_to("submit")) == 1
    status = await harness.services.store.quota_status(ALICE)
    assert (status.used, status.reserved) == (1, 0)


async def test_a_press_with_quota_is_answered_before_its_job_is_announced(
    harness: Harness,
) -> None:
    tg = harness.telegram
    result = await delivered(harness)
    tg.press_button(harness.users[ALICE], result, button(result, "again:"))
    answer = await tg.wait_for_call("answerCallbackQuery")
    assert answer.params["text"] == text("button_started", EN) and not is_alert(answer)
    def queued() -> list[ApiCall]:
        return [c for c in tg.calls_to("sendMessage") if "Queued" in c.params.get("text", "")]

    await wait_until(lambda: len(queued()) == 2)  # the first request's line, then the press's
    status = queued()[1]
    assert tg.calls.index(answer) < tg.calls.index(status)
    assert answer.at <= status.at
    await wait_until(lambda: len(harness.emulator.requests_to("submit")) == 2)
    await harness.settled()


@pytest.mark.parametrize("prefix", ["again:", "up:"])
async def test_a_double_tap_is_one_order_until_its_job_ends(
    one_slot: Harness, prefix: str
) -> None:
    harness, tg = one_slot, one_slot.telegram
    result = await delivered(harness)
    alice = harness.users[ALICE]
    data = button(result, prefix)
    tg.press_button(alice, result, data)
    tg.press_button(alice, result, data)  # back to back: one batch of updates
    answers = [await tg.wait_for_call("answerCallbackQuery") for _ in range(2)]
    texts = sorted(a.params["text"] for a in answers)
    assert texts == sorted([text("button_started", EN), text("button_already_running", EN)])
    assert all(is_alert(a) for a in answers if "Already running" in a.params["text"])
    await wait_until(lambda: len(harness.emulator.requests_to("submit")) == 2)
    await harness.settled(timeout=20)
    assert len(harness.emulator.requests_to("submit")) == 2
    # Its job is over: the button works again.
    tg.press_button(alice, result, data)
    again = await tg.wait_for_call("answerCallbackQuery")
    assert again.params["text"] == text("button_started", EN)
    await wait_until(lambda: len(harness.emulator.requests_to("submit")) == 3)
    await harness.settled(timeout=20)
    status = await harness.services.store.quota_status(ALICE)
    assert (status.used, status.reserved) == (3, 0)


async def test_a_taken_job_says_it_waits_for_a_slot_then_that_it_works(
    one_slot: Harness,
) -> None:
    harness, tg = one_slot, one_slot.telegram
    lines = []
    for user_id, name in ((1, "Alice"), (2, "Bob")):
        user = harness.user(user_id, name)
        request = tg.send_photo(user, tg.private_chat(user), make_image(), "/colorize")
        lines.append((await harness.reply_to(request)).result)
    await harness.settled(timeout=20)

    def edits(line: dict[str, Any]) -> list[str]:
        return [c.params["text"] for c in tg.calls_to("editMessageText")
                if c.params.get("message_id") == line["message_id"]
                and str(c.params.get("chat_id")) == str(line["chat"]["id"])]

    waited = [edits(line) for line in lines if any("Waiting for a free slot" in t
                                                    for t in edits(line))]
    assert len(waited) == 1, [edits(line) for line in lines]
    [said] = waited
    first_wait = next(i for i, t in enumerate(said) if "Waiting for a free slot" in t)
    assert "(0 ahead)" in said[first_wait]
    assert text("status_working", EN) in said[first_wait + 1:]
    assert len(harness.emulator.tasks) == 2


async def test_a_waiting_line_appears_only_while_the_slot_is_taken(harness: Harness) -> None:
    """With a slot free the line goes straight to working, as for qwen jobs."""
    tg = harness.telegram
    alice = harness.user(ALICE)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
    status = (await harness.reply_to(request)).result
    await harness.reply_to(request, "sendPhoto")
    await wait_until(lambda: bool(tg.calls_to("deleteMessage")))
    edited = [c.params["text"] for c in tg.calls_to("editMessageText")
              if c.params.get("message_id") == status["message_id"]]
    assert edited[0] == text("status_working", EN)
    assert not [t for t in edited if "Waiting" in t]


@pytest.mark.parametrize("lang", list(Lang))
def test_every_refusal_of_a_press_fits_an_alert(lang: Lang) -> None:
    refusals = [
        BannedError(),
        QuotaExceededError(0, 4, limit=10_000, resets_on="2026-12-01"),
        BudgetExceededError(month="2026-11", spent=Decimal("99999.99"), cost=Decimal("0.56"),
                            budget=Decimal("100000"), resets_on="2026-12-01"),
    ]
    for refusal in refusals:
        assert len(render_error(refusal, lang)) <= MAX_CALLBACK_ANSWER_LENGTH
    assert len(text("button_already_running", lang)) <= MAX_CALLBACK_ANSWER_LENGTH
