"""The mask drawing page in headless Chromium, with nothing reachable but the bot's own server:
a stub ``window.Telegram.WebApp`` (initData signed like Telegram's) stands in for the client,
strokes are painted with the mouse, and the MainButton sends the mask."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageDraw

from bot.services import SERVICES_KEY
from bot.texts import Lang, text
from bot.web.server import WebServer
from tests.browser import chromium, free_port, only_to, screenshot_path, sign_init_data
from tests.harness import Harness, bot_settings, make_image, running
from tests.test_web_mask import ALICE, CHAT, REQUEST, WAIT, Desk

pytestmark = pytest.mark.slow

TOKEN = "123456:AAE-browser-test-token"
# Telegram's light theme, as the client hands it to a Mini App.
THEME = {
    "bg_color": "#ffffff", "text_color": "#000000", "hint_color": "#707579",
    "link_color": "#3390ec", "button_color": "#3390ec", "button_text_color": "#ffffff",
    "secondary_bg_color": "#f4f4f5", "destructive_text_color": "#e53935",
}
PHONE = {"width": 390, "height": 760}

# What the Telegram client provides, recorded for the test: MainButton state and handlers,
# close() and showAlert(). Injected before any script of the page runs.
STUB = """
(() => {
  const record = { closed: false, alerts: [], ready: false, expanded: false,
                   button: { text: "", visible: false, active: true, progress: false },
                   handlers: [] };
  window.__telegram = record;
  const MainButton = {
    setText(t) { record.button.text = t; return MainButton; },
    show() { record.button.visible = true; return MainButton; },
    hide() { record.button.visible = false; return MainButton; },
    enable() { record.button.active = true; return MainButton; },
    disable() { record.button.active = false; return MainButton; },
    showProgress() { record.button.progress = true; return MainButton; },
    hideProgress() { record.button.progress = false; return MainButton; },
    onClick(handler) { record.handlers.push(handler); return MainButton; },
    offClick() { return MainButton; },
  };
  window.Telegram = { WebApp: {
    initData: INIT_DATA, initDataUnsafe: {}, version: "8.0", platform: "android",
    colorScheme: "light", themeParams: THEME, viewportHeight: HEIGHT,
    viewportStableHeight: HEIGHT, isExpanded: true, MainButton,
    ready() { record.ready = true; }, expand() { record.expanded = true; },
    close() { record.closed = true; }, showAlert(message) { record.alerts.push(message); },
    onEvent() {}, offEvent() {}, disableVerticalSwipes() {},
  } };
})();
"""

PRESS_MAIN_BUTTON = """() => {
  const record = window.__telegram;
  if (!record.button.visible || !record.button.active) return false;
  record.handlers.forEach((handler) => handler());
  return true;
}"""


def stub(init_data: str) -> str:
    return (STUB.replace("INIT_DATA", json.dumps(init_data))
            .replace("THEME", json.dumps(THEME)).replace("HEIGHT", str(PHONE["height"])))


def scene(width: int = 1200, height: int = 900) -> bytes:
    """A photo worth painting on: sky, sea, sand and a red ball."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        colour = ((90 + int(120 * t), 160 + int(60 * t), 235) if t < 0.55
                  else (30, 110 + int(60 * t), 170) if t < 0.75 else (225, 200, 150))
        draw.line([(0, y), (width, y)], fill=colour)
    draw.ellipse((width * 0.55, height * 0.58, width * 0.72, height * 0.8), fill=(210, 40, 50))
    draw.ellipse((width * 0.12, height * 0.1, width * 0.22, height * 0.23), fill=(255, 236, 150))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@asynccontextmanager
async def mini_app(url: str, init_data: str | None) -> AsyncIterator[tuple[Any, list[str]]]:
    """The page at ``url`` on a phone-sized screen, opened as Telegram would (``init_data``
    None: opened outside Telegram); yields the page and the requests it was refused."""
    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE, device_scale_factor=1)
        blocked = await only_to(context, url)
        if init_data is not None:
            await context.add_init_script(stub(init_data))
        page = await context.new_page()
        await page.goto(url)
        yield page, blocked
        await context.close()


async def stroke(page: Any, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Drag the mouse through ``points`` (fractions of the photo); returns them as fractions
    for checking the mask (the same, for clarity at the call site)."""
    box = await page.locator("#strokes").bounding_box()
    assert box is not None

    def at(point: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

    await page.mouse.move(*at(points[0]))
    await page.mouse.down()
    for point in points[1:]:
        await page.mouse.move(*at(point), steps=8)
    await page.mouse.up()
    return points


async def telegram_record(page: Any) -> dict[str, Any]:
    record: dict[str, Any] = await page.evaluate("() => window.__telegram")
    return record


def white_at(mask: Image.Image, fraction: tuple[float, float]) -> bool:
    x = min(mask.width - 1, int(fraction[0] * mask.width))
    y = min(mask.height - 1, int(fraction[1] * mask.height))
    value = mask.convert("L").getpixel((x, y))
    assert isinstance(value, int)
    return value >= 128


@pytest.fixture
async def server() -> AsyncIterator[WebServer]:
    port = free_port()
    web = WebServer(desk=Desk({WAIT: scene()}), bot_token=TOKEN,
                    public_url=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port)
    await web.start()
    try:
        yield web
    finally:
        await web.stop()


def desk_of(server: WebServer) -> Desk:
    desk = server._desk
    assert isinstance(desk, Desk)
    return desk


def alice_init_data(token: str = TOKEN, user_id: int = ALICE) -> str:
    return sign_init_data(token, {"id": user_id, "first_name": "Alice", "language_code": "zh"},
                          auth_date=int(time.time()) - 30)


async def test_painted_strokes_become_the_mask_and_the_app_closes(server: WebServer) -> None:
    # English: the machines that run this have no CJK font for the screenshot.
    desk_of(server).langs[ALICE] = Lang.EN
    url = server.mask_page_url(ALICE, CHAT, REQUEST, Lang.EN)
    async with mini_app(url, alice_init_data()) as (page, blocked):
        await page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        record = await telegram_record(page)
        assert record["ready"] and record["expanded"]
        assert record["button"]["text"] == text("miniapp_submit", Lang.EN) == "Repaint this area"
        assert not record["button"]["visible"]  # nothing painted yet
        # Telegram's script was blocked like everything but the bot: the page still works.
        assert any("telegram.org" in address for address in blocked)
        # Colours come from the theme the client handed over.
        button_colour = await page.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--tg-theme-button-color')"
        )
        assert button_colour.strip() == THEME["button_color"]
        across = await stroke(page, [(0.15, 0.3), (0.45, 0.3)])
        down = await stroke(page, [(0.62, 0.55), (0.64, 0.75), (0.66, 0.85)])
        assert (await telegram_record(page))["button"]["visible"]
        await page.screenshot(path=str(screenshot_path("miniapp-mask.png")))
        assert await page.evaluate(PRESS_MAIN_BUTTON)
        await page.wait_for_function("() => window.__telegram.closed", timeout=10_000)
        assert (await telegram_record(page))["alerts"] == []
    [(user_id, chat_id, message_id, png)] = desk_of(server).submitted
    assert (user_id, chat_id, message_id) == WAIT
    mask = Image.open(io.BytesIO(png))
    assert mask.format == "PNG" and mask.size == (1200, 900)  # the served photo's size
    histogram = mask.convert("L").histogram()
    assert {level for level, count in enumerate(histogram) if count} == {0, 255}
    for point in (*across, (0.3, 0.3), *down):
        assert white_at(mask, point), point
    for point in ((0.05, 0.05), (0.9, 0.1), (0.3, 0.6), (0.95, 0.95), (0.62, 0.2)):
        assert not white_at(mask, point), point


async def test_undo_and_clear_change_what_is_sent(server: WebServer) -> None:
    url = server.mask_page_url(ALICE, CHAT, REQUEST, Lang.EN)
    async with mini_app(url, alice_init_data()) as (page, _):
        await page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        await stroke(page, [(0.1, 0.1), (0.3, 0.1)])
        await stroke(page, [(0.1, 0.5), (0.3, 0.5)])
        await page.click("#undo")  # the second stroke is gone
        await page.click("#clear")  # and the first
        assert not (await telegram_record(page))["button"]["visible"]
        assert not await page.evaluate(PRESS_MAIN_BUTTON)
        await stroke(page, [(0.7, 0.8), (0.9, 0.8)])
        await stroke(page, [(0.7, 0.2), (0.9, 0.2)])
        await page.click("#undo")
        # The eraser rubs out part of what is left.
        await page.click("#eraser")
        await stroke(page, [(0.85, 0.75), (0.85, 0.85)])
        assert await page.evaluate(PRESS_MAIN_BUTTON)
        await page.wait_for_function("() => window.__telegram.closed", timeout=10_000)
    [(*_, png)] = desk_of(server).submitted
    mask = Image.open(io.BytesIO(png))
    assert white_at(mask, (0.72, 0.8))
    for gone in ((0.2, 0.1), (0.2, 0.5), (0.8, 0.2), (0.85, 0.8)):
        assert not white_at(mask, gone), gone


async def test_a_refusal_is_shown_and_the_app_stays_open(server: WebServer) -> None:
    desk_of(server).answer = "本月额度已用完。"
    url = server.mask_page_url(ALICE, CHAT, REQUEST, Lang.ZH)
    async with mini_app(url, alice_init_data()) as (page, _):
        await page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        await stroke(page, [(0.4, 0.4), (0.6, 0.6)])
        assert await page.evaluate(PRESS_MAIN_BUTTON)
        await page.wait_for_function("() => window.__telegram.alerts.length > 0")
        record = await telegram_record(page)
        assert record["alerts"] == ["本月额度已用完。"] and not record["closed"]
        assert record["button"]["active"] and not record["button"]["progress"]
        assert await page.inner_text("#status") == "本月额度已用完。"


async def test_another_persons_page_shows_why_and_sends_nothing(server: WebServer) -> None:
    url = server.mask_page_url(ALICE, CHAT, REQUEST, Lang.ZH)
    async with mini_app(url, alice_init_data(user_id=ALICE + 1)) as (page, _):
        await page.wait_for_function("() => window.__telegram.alerts.length > 0")
        assert (await telegram_record(page))["alerts"] == [text("miniapp_not_requester", Lang.ZH)]
        assert await page.locator("#app").is_hidden()
    assert desk_of(server).submitted == []


async def test_outside_telegram_the_page_says_to_open_it_from_telegram(
    server: WebServer,
) -> None:
    url = server.mask_page_url(ALICE, CHAT, REQUEST, Lang.ZH)
    async with mini_app(url, None) as (page, _):
        await page.wait_for_function("() => document.getElementById('status').textContent")
        assert await page.inner_text("#status") == text("miniapp_open_in_telegram", Lang.ZH)
        assert await page.locator("#app").is_hidden()
    assert desk_of(server).photo_calls == 0


# --- end to end: /erase in a private chat, through the bot, to DashScope's emulator ----------


@pytest.fixture
async def public_harness(
    telegram: Any, emulator: Any, tmp_path: Path
) -> AsyncIterator[Harness]:
    port = free_port()
    settings = bot_settings(
        telegram, emulator, tmp_path / "bot.sqlite3", PUBLIC_URL=f"http://127.0.0.1:{port}",
        WEB_HOST="127.0.0.1", WEB_PORT=str(port),
    )
    async with running(settings) as application:
        yield Harness(telegram, emulator, settings, application)


async def test_erase_drawn_in_the_mini_app_reaches_dashscope(public_harness: Harness) -> None:
    harness = public_harness
    tg = harness.telegram
    alice = harness.user(1, language_code="en")
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(640, 480), "/erase a glass vase")
    prompt = await harness.reply_to(request)
    [[button]] = prompt.params["reply_markup"]["inline_keyboard"]
    assert button["text"] == text("btn_draw_mask", Lang.EN)
    url = button["web_app"]["url"]
    assert url.startswith(harness.settings.public_url or "-")
    assert tg.token not in url
    init_data = sign_init_data(tg.token, {"id": 1, "first_name": "Alice"},
                               auth_date=int(time.time()))
    async with mini_app(url, init_data) as (page, _):
        await page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        across = await stroke(page, [(0.2, 0.25), (0.45, 0.25)])
        down = await stroke(page, [(0.7, 0.5), (0.7, 0.8)])
        assert await page.evaluate(PRESS_MAIN_BUTTON)
        await page.wait_for_function("() => window.__telegram.closed", timeout=15_000)
    await harness.reply_to(request, "sendPhoto", timeout=20)
    await harness.settled()
    [submit] = [r.body for r in harness.emulator.requests_to("submit") if r.body is not None]
    assert submit["input"]["function"] == "description_edit_with_mask"
    assert submit["input"]["prompt"] == "a glass vase"
    uri: str = submit["input"]["mask_image_url"]
    mask = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    for point in (*across, *down):
        assert white_at(mask, point), point
    for point in ((0.05, 0.05), (0.95, 0.95), (0.3, 0.7), (0.9, 0.2)):
        assert not white_at(mask, point), point
    # The wait is over: the link opens nothing any more.
    assert await harness.services.conversations.mask_wait(chat["id"], 1) is None


async def test_a_group_prompt_has_no_mini_app_button(public_harness: Harness) -> None:
    harness = public_harness
    tg = harness.telegram
    alice = harness.user(1)
    group = tg.group_chat(-100123)
    request = tg.send_photo(alice, group, make_image(640, 480), "/erase@BailianTestBot")
    prompt = await harness.reply_to(request)
    assert "reply_markup" not in prompt.params or not any(
        "web_app" in b for row in prompt.params["reply_markup"]["inline_keyboard"] for b in row
    )


async def test_the_web_server_starts_and_stops_with_the_bot(
    telegram: Any, emulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    settings = bot_settings(
        telegram, emulator, tmp_path / "bot.sqlite3", PUBLIC_URL=f"http://127.0.0.1:{port}",
        WEB_HOST="127.0.0.1", WEB_PORT=str(port),
    )
    stylesheet = f"http://127.0.0.1:{port}/mask/static/mask.css"
    async with aiohttp.ClientSession() as http:
        async with running(settings) as application:
            assert isinstance(application.bot_data[SERVICES_KEY].web, WebServer)
            async with http.get(stylesheet) as response:
                assert response.status == 200
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(stylesheet):
                pass
    assert "plain http" in caplog.text  # https is what Telegram opens


async def test_without_a_public_url_there_is_no_server_and_no_button(harness: Harness) -> None:
    assert harness.services.web is None
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(640, 480), "/erase")
    prompt = await harness.reply_to(request)
    assert "reply_markup" not in prompt.params
