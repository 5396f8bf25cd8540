"""The playground (``python -m bot playground``): the real bot against the offline world, driven
through the chat page's API in-process, and through the page itself in headless Chromium with the
playground started as a process."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from PIL import Image

from bot.playground.app import BOT_TOKEN, BOT_USERNAME, PlaygroundOptions, serve
from bot.playground.chat import YOU_ID
from bot.startup import ExitCode
from bot.texts import Lang, text
from bot.web.initdata import verify_init_data
from tests.browser import chromium, free_port, only_to, screenshot_path
from tests.harness import REPO, make_image
from tests.test_miniapp_browser import scene

pytestmark = pytest.mark.slow

Message = dict[str, Any]


@dataclass
class Playground:
    url: str
    http: aiohttp.ClientSession

    async def chat(self, room: str = "private") -> list[Message]:
        async with self.http.get(f"{self.url}/playground/api/chat",
                                 params={"room": room, "version": "-"}) as response:
            assert response.status == 200
            messages: list[Message] = (await response.json())["messages"]
            return messages

    async def send(
        self, words: str = "", image: bytes | None = None, *, room: str = "private",
        person: str = "you", reply_to: int | None = None, name: str = "photo.jpg",
        as_file: bool = False,
    ) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("room", room)
        form.add_field("person", person)
        form.add_field("text", words)
        if reply_to is not None:
            form.add_field("reply_to", str(reply_to))
        if image is not None:
            form.add_field("image", image, filename=name, content_type="image/jpeg")
            form.add_field("as_file", "1" if as_file else "0")
        async with self.http.post(f"{self.url}/playground/api/send", data=form) as response:
            answer: dict[str, Any] = await response.json()
            return answer

    async def press(self, message: Message, label: str, room: str = "private") -> Any:
        [button] = [b for row in message["buttons"] for b in row if b["text"] == label]
        async with self.http.post(f"{self.url}/playground/api/press", json={
            "room": room, "person": "you", "message_id": message["id"], "data": button["value"],
        }) as response:
            return await response.json()

    async def lang(self, lang: str) -> None:
        async with self.http.post(f"{self.url}/playground/api/lang", json={"lang": lang}) as r:
            assert r.status == 200

    async def wait_for(
        self, condition: Callable[[list[Message]], Message | None], room: str = "private",
        timeout: float = 15.0,
    ) -> Message:
        """Long-poll the chat until ``condition`` picks a message out of it."""
        version = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.http.get(f"{self.url}/playground/api/chat",
                                     params={"room": room, "version": version}) as response:
                chat = await response.json()
            version = chat["version"]
            found = condition(chat["messages"])
            if found is not None:
                return found
        raise AssertionError(f"not seen within {timeout} s: {chat['messages']}")


def bot_photo_replying_to(message_id: int, after: int = 0) -> Callable[[list[Message]], Any]:
    def pick(messages: list[Message]) -> Message | None:
        return next((m for m in messages if m["sender"] == "bot" and m["photo"]
                     and m["id"] > after and (m["reply_to"] or {}).get("id") == message_id),
                    None)
    return pick


def bot_text_replying_to(message_id: int) -> Callable[[list[Message]], Any]:
    def pick(messages: list[Message]) -> Message | None:
        return next((m for m in messages if m["sender"] == "bot" and m["text"]
                     and not m["photo"] and (m["reply_to"] or {}).get("id") == message_id),
                    None)
    return pick


@pytest.fixture
async def playground() -> AsyncIterator[Playground]:
    """The playground's ``serve`` in this process, on a free port, with quick emulated tasks."""
    options = PlaygroundOptions(port=free_port(), latency=(0.1, 0.3))
    ready = asyncio.Event()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(options, lambda url: ready.set(), stop))
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiting}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    assert ready.is_set(), task.result() if task.done() else "not ready in 20 s"
    async with aiohttp.ClientSession() as http:
        yield Playground(options.url, http)
    stop.set()
    assert await asyncio.wait_for(task, 20) == ExitCode.OK


async def test_a_photo_with_upscale_gets_a_status_line_a_result_and_again_another(
    playground: Playground,
) -> None:
    sent = await playground.send("/upscale 2", make_image(640, 480))
    assert sent["ok"]
    request = sent["id"]
    status = await playground.wait_for(bot_text_replying_to(request))
    assert status["text"].startswith(("🕐", "⏳", "🎨")), status
    result = await playground.wait_for(bot_photo_replying_to(request))
    # The status line is deleted once the result is there, as in Telegram.
    await playground.wait_for(
        lambda ms: ms if all(m["id"] != status["id"] for m in ms) else None
    )
    photo = await playground.http.get(playground.url + result["photo"])
    width, height = Image.open(io.BytesIO(await photo.read())).size
    assert width > 640 and height > 480
    answer = await playground.press(result, text("btn_again", Lang.EN))
    assert answer["ok"]
    await playground.wait_for(bot_photo_replying_to(request, after=result["id"]))


async def test_an_image_sent_as_a_file_arrives_as_a_document_and_is_edited(
    playground: Playground,
) -> None:
    original = make_image(500, 400, fmt="PNG")
    sent = await playground.send("/upscale 2", original, name="scan.png", as_file=True)
    [mine] = [m for m in await playground.chat() if m["id"] == sent["id"]]
    assert mine["photo"] is None and mine["document"]["name"] == "scan.png"
    async with playground.http.get(playground.url + mine["document"]["url"]) as response:
        assert await response.read() == original  # as it was, not recompressed
    await playground.wait_for(bot_photo_replying_to(sent["id"]))


async def test_the_language_switch_makes_help_chinese(playground: Playground) -> None:
    await playground.lang("zh")
    sent = await playground.send("/help")
    answer = await playground.wait_for(bot_text_replying_to(sent["id"]))
    assert answer["text"].startswith("我用阿里云百炼模型编辑你的照片。")
    # The page's names follow: "You" is 你 now.
    [mine] = [m for m in await playground.chat() if m["id"] == sent["id"]]
    assert mine["name"] == "你"


async def test_in_the_group_a_reply_with_the_bots_name_edits_friends_photo(
    playground: Playground,
) -> None:
    photo = await playground.send("", make_image(400, 300), room="group", person="friend")
    assert photo["ok"]
    command = await playground.send(f"/upscale@{BOT_USERNAME} 2", room="group",
                                    reply_to=photo["id"])
    assert command["ok"]
    result = await playground.wait_for(bot_photo_replying_to(command["id"]), room="group")
    messages = {m["id"]: m for m in await playground.chat("group")}
    assert messages[photo["id"]]["sender"] == "friend"
    assert messages[command["id"]]["reply_to"]["id"] == photo["id"]
    assert result["name"] == "Bailian Bot"
    # Nothing of the group shows in the private chat.
    assert all(m["sender"] == "bot" for m in await playground.chat("private"))


async def test_erase_is_drawn_through_the_mini_app_with_initdata_signed_like_telegram(
    playground: Playground,
) -> None:
    sent = await playground.send("/erase a red kite", make_image(640, 480))
    prompt = await playground.wait_for(
        lambda ms: next((m for m in ms if m["sender"] == "bot" and any(
            b["kind"] == "web_app" for row in m["buttons"] for b in row)), None)
    )
    [button] = [b for row in prompt["buttons"] for b in row if b["kind"] == "web_app"]
    assert button["text"] == text("btn_draw_mask", Lang.EN)
    assert button["value"].startswith(playground.url + "/mask?")
    http = playground.http
    async with http.get(button["value"]) as page:
        html = await page.text()
    # The page takes the playground's stand-in for telegram-web-app.js, from the same origin.
    assert '<script src="/playground/telegram-web-app.js">' in html
    assert "telegram.org" not in html.split("Content-Security-Policy")[0]
    async with http.get(playground.url + "/playground/telegram-web-app.js") as script:
        source = await script.text()
    init_data = json.loads(re.search(r"initData: (\".*?\"),", source)[1])  # type: ignore[index]
    user = verify_init_data(init_data, BOT_TOKEN, max_age=timedelta(minutes=1),
                            now=datetime.now(UTC))
    assert user.id == YOU_ID
    token = dict(parse_qsl(urlsplit(button["value"]).query))["t"]
    async with http.get(f"{playground.url}/mask/photo", params={"t": token},
                        headers={"X-Telegram-Init-Data": init_data}) as photo:
        assert photo.status == 200
        width, height = Image.open(io.BytesIO(await photo.read())).size
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (width // 4, height // 4, width // 2, height // 2))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    form = aiohttp.FormData()
    form.add_field("t", token)
    form.add_field("initData", init_data)
    form.add_field("mask", buffer.getvalue(), filename="mask.png", content_type="image/png")
    async with http.post(f"{playground.url}/mask/submit", data=form) as submitted:
        assert submitted.status == 200, await submitted.text()
    await playground.wait_for(bot_photo_replying_to(sent["id"]))


async def test_what_cannot_be_sent_is_refused_in_words(playground: Playground) -> None:
    nothing = await playground.send("")
    assert nothing == {"ok": False, "error": text("playground_nothing_to_send", Lang.EN)}
    not_image = await playground.send("/upscale 2", b"%PDF-1.4 not an image", name="notes.pdf")
    assert not not_image["ok"] and "notes.pdf" in not_image["error"]
    assert all(m["sender"] == "bot" for m in await playground.chat())  # nothing was sent


def test_the_bot_itself_never_loads_the_offline_world() -> None:
    code = (
        "import sys, bot.__main__, bot.app, bot.startup, handlers.edit\n"
        "loaded = [m for m in sys.modules if m.startswith(('bot.offline', 'bot.playground'))]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# --- the page in headless Chromium, the playground as a process -----------------------------


@dataclass
class PlaygroundProcess:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def playground_started(tmp_path: Path) -> Iterator[PlaygroundProcess]:
    """``python -m bot playground --port N`` with no token or key in its environment. Stopped
    with SIGINT, which must end it with exit status 0 within 20 s, printing nothing more."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DASHSCOPE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    log = tmp_path / "playground.log"
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "playground", "--port", str(port)], cwd=tmp_path,
            env=env | {"PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=errors,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline().decode()
            assert line.strip() == (f"Bailian bot playground: http://127.0.0.1:{port}  "
                                    "(Ctrl+C stops it)"), (line, log.read_text())
            yield PlaygroundProcess(f"http://127.0.0.1:{port}", process)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                code = process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    assert process.stdout is not None
    with process.stdout:
        rest = process.stdout.read()
    assert code == 0, log.read_text()
    assert rest == b""  # one line, the URL, and nothing else
    assert "Traceback" not in log.read_text()


@pytest.fixture
def playground_process(tmp_path: Path) -> Iterator[str]:
    """The playground as a process (:func:`playground_started`); yields its URL."""
    with playground_started(tmp_path) as started:
        yield started.url


async def test_a_long_poll_under_way_does_not_hold_the_stop(tmp_path: Path) -> None:
    """The page always has a long poll open (up to 20 s): SIGINT must not wait it out."""
    with playground_started(tmp_path) as started:
        async with aiohttp.ClientSession() as http:
            url = f"{started.url}/playground/api/chat"
            async with http.get(url, params={"room": "private", "version": "-"}) as first:
                version = (await first.json())["version"]
            polling = asyncio.ensure_future(
                http.get(url, params={"room": "private", "version": version})
            )
            await asyncio.sleep(0.5)  # the poll is waiting for a change
            assert not polling.done()
            stopping = time.monotonic()
            started.process.send_signal(signal.SIGINT)
            async with await polling as answer:  # answered, not cut off
                assert answer.status == 200
                assert (await answer.json())["version"] == version
            await asyncio.to_thread(started.process.wait, 20)
            assert time.monotonic() - stopping < 5  # the poll had 20 s to go


async def test_the_page_in_chromium_upscales_again_speaks_chinese_and_draws_a_mask(
    playground_process: str, tmp_path: Path,
) -> None:
    url = playground_process
    photo = tmp_path / "beach.jpg"
    photo.write_bytes(scene(800, 600))
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 820, "height": 1100})
        blocked = await only_to(context, url)
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_selector(".line[data-sender='bot']")  # the start alert: You are admin
        await page.set_input_files("#file", str(photo))
        await page.fill("#text", "/upscale 2")
        await page.click("#send")
        bot_lines = ".line[data-sender='bot']"
        # The status line, then the result (the status line goes away).
        await page.wait_for_selector(f"{bot_lines} .body >> text=/Working|Queued|⏳|🎨/",
                                     timeout=10_000)
        await page.wait_for_selector(f"{bot_lines} img.photo", timeout=15_000)
        await page.wait_for_selector(f"{bot_lines} a.document", timeout=10_000)
        await page.wait_for_function(
            "() => [...document.querySelectorAll('img.photo')].every((i) => i.complete"
            " && i.naturalWidth > 0)"
        )
        await page.screenshot(path=str(screenshot_path("playground.png")))
        await page.locator(f"{bot_lines} .inline-button",
                           has_text=text("btn_again", Lang.EN)).first.click()
        await page.wait_for_function(
            "() => document.querySelectorAll(\".line[data-sender='bot'] img.photo\").length >= 2",
            timeout=15_000,
        )
        # Chinese: the page's words and the bot's.
        await page.click("#lang-zh")
        assert await page.inner_text("#send") == "发送"
        await page.fill("#text", "/help")
        await page.click("#send")
        await page.wait_for_selector(f"{bot_lines} .body >> text=我用阿里云百炼模型编辑你的照片",
                                     timeout=10_000)
        # /erase: the 🖌 button opens the mask page over the chat; a stroke and the main button
        # send the mask, the page closes, and the result arrives.
        await page.click("#lang-en")
        await page.set_input_files("#file", str(photo))
        await page.fill("#text", "/erase a red kite")
        await page.click("#send")
        draw = page.locator(".inline-button", has_text=text("btn_draw_mask", Lang.EN))
        await draw.click(timeout=10_000)
        frame = page.frame_locator("#mini-app")
        await frame.locator("body[data-ready='1']").wait_for(timeout=10_000)
        strokes = frame.locator("#strokes")
        box = await strokes.bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
        await page.mouse.down()
        await page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5,
                              steps=10)
        await page.mouse.up()
        main_button = page.locator("#main-button")
        assert await main_button.inner_text() == text("miniapp_submit", Lang.EN)
        photos_before = await page.locator(f"{bot_lines} img.photo").count()
        await main_button.click()
        await page.wait_for_selector("#overlay", state="hidden", timeout=10_000)
        await page.wait_for_function(
            f"() => document.querySelectorAll(\".line[data-sender='bot'] img.photo\").length"
            f" > {photos_before}",
            timeout=15_000,
        )
        await context.close()
    assert blocked == []  # the page needs nothing but the playground


def test_without_a_token_python_m_bot_points_to_the_playground(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DASHSCOPE_"))}
    done = subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, timeout=60,
                          env=env | {"PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert done.returncode == ExitCode.CONFIG
    assert done.stderr == (
        "Configuration error: TELEGRAM_BOT_TOKEN: is required (set it in the environment or in "
        ".env); to try the bot without them: python -m bot playground\n"
    )
