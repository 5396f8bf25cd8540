"""One person floods the bot with ``/help``: how long until another person's first answer?

``.venv/bin/python -m bench.flood [--quick]`` runs the real Application in-process against the
fake Bot API (as the tests do) and, for each setting, repeats: Alice sends N ``/help`` at once,
then Bob sends one; Bob's first reaction is the time from his message reaching the fake Bot API
to the bot's first call into his chat. Every answer passes PTB's rate limiter (about 30 messages
a second in all, as Telegram allows), so without a per-person limit Alice's answers queue ahead
of Bob's. Run with the production limit (CHEAP_REQUEST_BURST 10, CHEAP_REQUEST_INTERVAL 0.5) and
without one (a burst of a million).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bot.config import Settings
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from tests.harness import API_KEY, Harness, bot_settings, running

FLOOD = 150


async def first_reactions(burst: str, rounds: int, flood: int) -> list[float]:
    """Bob's first-reaction times (s), one per round, with CHEAP_REQUEST_BURST ``burst``."""
    telegram = FakeTelegram()
    emulator = DashScopeEmulator(api_key=API_KEY)
    await telegram.start()
    await emulator.start()
    times: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings: Settings = bot_settings(
                telegram, emulator, Path(folder) / "bot.sqlite3", CHEAP_REQUEST_BURST=burst,
                CHEAP_REQUEST_INTERVAL="0.5",
            )
            async with running(settings) as application:
                harness = Harness(telegram, emulator, settings, application)
                for round_ in range(rounds):
                    alice = harness.user(1000 + round_, "Alice")
                    bob = harness.user(2000 + round_, "Bob")
                    for _ in range(flood):
                        telegram.send_text(alice, telegram.private_chat(alice), "/help")
                    sent = time.monotonic()
                    telegram.send_text(bob, telegram.private_chat(bob), "/help")
                    call = await telegram.wait_for_call(
                        "sendMessage", lambda c, b=bob: c.params["chat_id"] in (b["id"], str(
                            b["id"])), timeout=60,
                    )
                    times.append(call.at - sent)
                    # Let Alice's answers drain before the next round.
                    await asyncio.sleep(flood / 30 + 1 if burst != "10" else 1)
    finally:
        await emulator.close()
        await telegram.close()
    return times


def report(label: str, times: Sequence[float]) -> str:
    return (f"{label:<34} rounds {len(times):>2}  median {statistics.median(times):.3f} s  "
            f"max {max(times):.3f} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rounds, flood = (1, 30) if args.quick else (args.rounds, FLOOD)
    print(f"Bob's first reaction after {flood} /help from Alice at once")
    print(report("limit (burst 10, +1 per 0.5 s)", asyncio.run(
        first_reactions("10", rounds, flood))), flush=True)
    print(report("no limit", asyncio.run(first_reactions("1000000", rounds, flood))),
          flush=True)


if __name__ == "__main__":
    main()
