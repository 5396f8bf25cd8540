"""/start greets briefly, /help lists everything, and a mistyped command gets a suggestion
(issue 11)."""

from __future__ import annotations

import pytest

from bot.commands import KNOWN_COMMANDS, suggest_command
from tests.harness import Harness

BOT = "@BailianTestBot"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("stlye", "style"),  # two letters swapped
        ("styel", "style"),
        ("STYLE2", "style"),  # the known one is a prefix
        ("upscal", "upscale"),  # a prefix of the known one
        ("hlep", "help"),
        ("helpme", "help"),
        ("strat", "start"),
        ("cancle", "cancel"),
        ("edt", "edit"),
        ("erasee", "erase"),
        ("colourize", "colorize"),
        ("/sktech", "sketch"),
        ("quot", "quota"),
        ("x", None),  # one letter is no word to correct
        ("c", None),  # a start shared by too many
        ("ab", None),
        ("foo", None),
        ("weather", None),
        ("style", None),  # known: nothing to suggest
        ("", None),
    ],
)
def test_suggest_command(typed: str, expected: str | None) -> None:
    assert suggest_command(typed) == expected


def test_every_suggestion_is_a_known_command() -> None:
    for typed in ("ediit", "sytle", "lang2", "idd", "quata", "dewatermak", "expnad"):
        assert suggest_command(typed) in KNOWN_COMMANDS


def test_of_two_equally_close_the_first_known_wins() -> None:
    assert suggest_command("abc", ("abd", "abe")) == "abd"


@pytest.mark.slow
async def test_start_is_a_short_welcome_in_the_users_language(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1, "Alice", language_code="en")
    li = harness.user(2, "李", language_code="zh-hans")
    welcome = (await harness.reply_to(tg.send_text(alice, tg.private_chat(alice), "/start")))
    words = welcome.params["text"]
    assert "Send me a photo" in words and "/edit" in words and "/help" in words
    assert "/dewatermark" not in words  # the full list is /help's
    zh = (await harness.reply_to(tg.send_text(li, tg.private_chat(li), "/start")))
    assert "发一张照片" in zh.params["text"]
    full = await harness.reply_to(tg.send_text(alice, tg.private_chat(alice), "/help"))
    assert "/dewatermark" in full.params["text"] and "/erase" in full.params["text"]


@pytest.mark.slow
async def test_a_mistyped_command_gets_a_suggestion(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1, "Alice")
    chat = tg.private_chat(alice)
    answer = await harness.reply_to(tg.send_text(alice, chat, "/stlye make it blue"))
    assert answer.params["text"] == "Unknown command /stlye. Did you mean /style?"
    answer = await harness.reply_to(tg.send_text(alice, chat, "/weather"))
    assert "I don't know the command weather" in answer.params["text"]
    li = harness.user(2, "李", language_code="zh-hans")
    group = tg.group_chat(-100900)
    answer = await harness.reply_to(tg.send_text(li, group, f"/upscal{BOT}"))
    assert "/upscale" in answer.params["text"] and "是不是" in answer.params["text"]
    assert not harness.emulator.requests
