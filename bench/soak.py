"""Load soak: many users against a real ``python -m bot`` process over the loopback fakes.

Run from the repo root (the full run of docs/reliability.md, about 10 minutes)::

    .venv/bin/python -m bench.soak --users 200 --requests 2000 --latency 0.5 2.0

The bot runs as a subprocess with the caps at their defaults (``DASHSCOPE_QPS`` 10,
``DASHSCOPE_MAX_TASKS`` 2) and the default polling policy, so its memory is its own: the fake Bot
API and the DashScope emulator run in this process and keep every message and task.
Each user sends its requests one after another (the next once the previous is answered); a
share of them are qwen ``/edit`` (not bound by the task cap), the rest wanx commands, some with
``n=2``. ``--quota`` is low enough that the last requests of each user are refused for quota.
The report: outcomes, throughput, the caps as the emulator saw them, the bot's RSS over time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bot.offline.bot_api import ApiCall, FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from tests.harness import (
    API_KEY,
    bot_process,
    bot_settings,
    make_image,
    replied_to,
    running,
    subprocess_env,
)

# The requests users send, by weight: (caption, images it asks for).
MIX: tuple[tuple[str, int, int], ...] = (
    ("/edit make the sky a sunset", 1, 50),
    ("/colorize warm tones", 1, 20),
    ("/upscale 2", 1, 10),
    ("/style 水彩 strength=0.5 n=2", 2, 10),
    ("/instruct add a red hat", 1, 10),
)
DELIVERED, REFUSED, FAILED = "delivered", "refused_quota", "failed"


@dataclass
class SoakReport:
    users: int
    requests: int
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    images_delivered: int = 0
    max_requests_per_second: int = 0
    max_tasks_in_progress: int = 0
    api_requests: int = 0
    rss_kib: list[tuple[float, int, int]] = field(default_factory=list)  # (s, done, VmRSS)
    peak_rss_kib: int = 0
    log_problems: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)  # replies we could not classify

    @property
    def throughput(self) -> float:
        """Answered requests per second (delivered, refused or failed)."""
        return sum(self.outcomes.values()) / self.seconds if self.seconds else 0.0

    def rss_after_warmup(self, share: float = 0.25) -> tuple[int, int]:
        """VmRSS (KiB) when ``share`` of the requests were answered, and the highest after."""
        warm = [rss for _, done, rss in self.rss_kib if done >= self.requests * share]
        if not warm:
            return 0, 0
        return warm[0], max(warm)

    def summary(self) -> str:
        warm, late_peak = self.rss_after_warmup()
        half, half_peak = self.rss_after_warmup(0.5)
        jobs = self.outcomes[DELIVERED] + self.outcomes[FAILED]
        return "\n".join([
            f"users {self.users}, requests {self.requests}, wall {self.seconds:.1f} s",
            f"outcomes {dict(self.outcomes)}; images delivered {self.images_delivered}",
            f"throughput {self.throughput:.2f} answered requests/s, "
            f"{jobs / self.seconds if self.seconds else 0:.2f} jobs/s, "
            f"{self.images_delivered / self.seconds if self.seconds else 0:.2f} images/s",
            f"DashScope API requests {self.api_requests}; most in any 1 s "
            f"{self.max_requests_per_second}; most tasks in progress {self.max_tasks_in_progress}",
            f"bot RSS: after warm-up {warm / 1024:.1f} MiB, highest after {late_peak / 1024:.1f}"
            f" MiB; at half {half / 1024:.1f} MiB, highest after {half_peak / 1024:.1f} MiB;"
            f" peak (VmHWM) {self.peak_rss_kib / 1024:.1f} MiB",
            f"log warnings/errors {len(self.log_problems)}; "
            f"unclassified replies {len(self.stray)}",
        ])


def noisy_photo(width: int, height: int) -> bytes:
    """A JPEG with a photo's entropy (~0.5 byte per pixel), unlike the flat test pictures."""
    buffer = io.BytesIO()
    Image.effect_noise((width, height), 40).convert("RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


class _Problems(logging.Handler):
    """Keeps every WARNING or worse record (the in-process bot's log)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@asynccontextmanager
async def bot_in_process(
    telegram: FakeTelegram, emulator: DashScopeEmulator, database: Path, quota: int,
    problems: _Problems,
) -> AsyncIterator[int]:
    """The Application in this process (the tests' short polling policy); yields our pid."""
    settings = bot_settings(
        telegram, emulator, database, MONTHLY_QUOTA=str(quota), DASHSCOPE_QPS="10",
        DASHSCOPE_MAX_TASKS="2",
    )
    root = logging.getLogger()
    root.addHandler(problems)
    try:
        async with running(settings):
            yield os.getpid()
    finally:
        root.removeHandler(problems)


@asynccontextmanager
async def bot_pid(
    process: AbstractAsyncContextManager[asyncio.subprocess.Process],
) -> AsyncIterator[int]:
    async with process as running_process:
        yield running_process.pid


def read_rss(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc (Linux)."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


class Outcomes:
    """Classifies the bot's replies to each request, reading new calls as they arrive."""

    def __init__(self, telegram: FakeTelegram) -> None:
        self.telegram = telegram
        self._seen = 0
        self._waiting: dict[tuple[int, int], asyncio.Future[tuple[str, int]]] = {}
        self.stray: list[str] = []

    def expect(self, chat_id: int, message_id: int) -> asyncio.Future[tuple[str, int]]:
        future: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        self._waiting[(chat_id, message_id)] = future
        return future

    def scan(self) -> None:
        calls = self.telegram.calls
        while self._seen < len(calls):
            call = calls[self._seen]
            if call.method == "getUpdates":
                self._seen += 1
                continue
            if not call.response:
                return  # not answered yet: look again later, in order
            self._seen += 1
            self._classify(call)

    def _classify(self, call: ApiCall) -> None:
        target = replied_to(call)
        if target is None or not call.response.get("ok"):
            return
        key = (int(call.params["chat_id"]), target)
        future = self._waiting.get(key)
        if future is None or future.done():
            return
        if call.method == "sendPhoto":
            future.set_result((DELIVERED, 1))
        elif call.method == "sendMediaGroup":
            future.set_result((DELIVERED, len(call.result)))
        elif call.method == "sendMessage":
            message = str(call.params.get("text", ""))
            if message.startswith("🕐"):
                return
            if "Not enough quota" in message:
                future.set_result((REFUSED, 0))
            elif message.startswith("❌"):
                future.set_result((FAILED, 0))
            else:
                self.stray.append(message[:120])
                future.set_result((FAILED, 0))

    async def run(self) -> None:
        while True:
            self.scan()
            await asyncio.sleep(0.05)


async def _user(telegram: FakeTelegram, outcomes: Outcomes, report: SoakReport,
                user_id: int, count: int, image: bytes, rng: random.Random,
                timeout: float) -> None:
    user = telegram.user(user_id, f"User {user_id}", language_code="en")
    chat = telegram.private_chat(user)
    captions = [c for c, _, w in MIX for _ in range(w)]
    for _ in range(count):
        caption = rng.choice(captions)
        message = telegram.send_photo(user, chat, image, caption)
        answer = outcomes.expect(chat["id"], message["message_id"])
        outcome, images = await asyncio.wait_for(answer, timeout)
        report.outcomes[outcome] += 1
        report.images_delivered += images


async def soak(*, users: int, requests: int, latency: tuple[float, float], quota: int,
               qwen_latency: float, poll_interval: float, workdir: Path,
               timeout: float = 600.0, seed: int = 1, in_process: bool = False,
               image_size: tuple[int, int] = (640, 480), noisy: bool = False) -> SoakReport:
    """Run one soak and return its report (the caps are checked by the caller).

    ``in_process`` runs the Application here with the tests' polling policy (fast, for
    tests/test_soak.py); the RSS is then this whole process's, fakes included.
    """
    report = SoakReport(users=users, requests=requests)
    image = noisy_photo(*image_size) if noisy else make_image(*image_size)
    per_user = [requests // users + (1 if i < requests % users else 0) for i in range(users)]
    log = workdir / "bot.log"
    # The soak judges the log, and a database created anew is announced at WARNING: start from
    # an existing (empty) file as a deployment does after its first start.
    (workdir / "bot.sqlite3").touch()
    async with FakeTelegram() as telegram:
        emulator = DashScopeEmulator(api_key=API_KEY, latency=latency, seed=seed,
                                     qwen_latency=qwen_latency)
        await emulator.start()
        try:
            env = subprocess_env(
                telegram, emulator, workdir / "bot.sqlite3", MONTHLY_QUOTA=str(quota),
                DASHSCOPE_POLL_INTERVAL=str(poll_interval),
            )
            problems = _Problems()
            bot = (
                bot_in_process(telegram, emulator, workdir / "bot.sqlite3", quota, problems)
                if in_process else bot_pid(bot_process(env, log, graceful=True))
            )
            async with bot as pid:
                outcomes = Outcomes(telegram)
                watcher = asyncio.create_task(outcomes.run())
                started = time.monotonic()

                async def sample() -> None:
                    while True:
                        rss, _ = read_rss(pid)
                        report.rss_kib.append(
                            (time.monotonic() - started, sum(report.outcomes.values()), rss)
                        )
                        await asyncio.sleep(1.0)

                sampler = asyncio.create_task(sample())
                try:
                    # Updates pushed while the first long poll waits wake it at once.
                    deadline = time.monotonic() + 30
                    while not telegram.calls_to("getUpdates"):
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"the bot did not start; see {log}")
                        await asyncio.sleep(0.05)
                    await asyncio.gather(*(
                        _user(telegram, outcomes, report, 1000 + i, count,
                              image, random.Random(seed * 7919 + i), timeout)
                        for i, count in enumerate(per_user)
                    ))
                    report.seconds = time.monotonic() - started
                    report.peak_rss_kib = read_rss(pid)[1]
                    rss, _ = read_rss(pid)
                    report.rss_kib.append((report.seconds, sum(report.outcomes.values()), rss))
                finally:
                    for task in (watcher, sampler):
                        task.cancel()
                    await asyncio.gather(watcher, sampler, return_exceptions=True)
                report.stray = outcomes.stray
            report.max_requests_per_second = emulator.max_requests_in_window(1.0)
            report.max_tasks_in_progress = emulator.max_tasks_in_progress()
            report.api_requests = sum(r.endpoint != "result" for r in emulator.requests)
        finally:
            await emulator.close()
    if in_process:
        report.log_problems = problems.lines
    else:
        report.log_problems = [
            line for line in log.read_text(errors="replace").splitlines()
            if re.search(r" (WARNING|ERROR|CRITICAL) |Traceback", line)
        ]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency", type=float, nargs=2, default=(0.5, 2.0))
    parser.add_argument("--qwen-latency", type=float, default=1.0)
    parser.add_argument("--quota", type=int, default=8, help="MONTHLY_QUOTA per user")
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--image", type=int, nargs=2, default=(640, 480), metavar=("W", "H"),
                        help="size of the photo every user sends")
    parser.add_argument("--noisy", action="store_true",
                        help="send photo-like (incompressible) JPEGs instead of flat pictures")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(soak(
            users=args.users, requests=args.requests, latency=tuple(args.latency),
            quota=args.quota, qwen_latency=args.qwen_latency,
            poll_interval=args.poll_interval, workdir=workdir, timeout=3600,
            image_size=tuple(args.image), noisy=args.noisy,
        ))
        print(report.summary())
        for line in report.log_problems[:20]:
            print("  log:", line)
        print("RSS samples (s, answered, MiB):",
              " ".join(f"{s:.0f}/{d}/{r / 1024:.1f}" for s, d, r in report.rss_kib[::10]))
    ok = (
        report.max_requests_per_second <= 10 and report.max_tasks_in_progress <= 2
        and not report.log_problems and sum(report.outcomes.values()) == report.requests
        and not report.stray
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
