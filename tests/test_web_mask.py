"""The Mini App's web server over real HTTP: the page, the photo and the submitted mask, each
refused (401/403/413/400) unless the signed link and Telegram's initData name the requester;
nothing reaches the desk on any refusal."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from PIL import Image

from bot.texts import Lang, text
from bot.web.links import MaskLink, encode_link, link_key
from bot.web.server import INIT_DATA_HEADER, MAX_MASK_BYTES, WebServer
from tests.browser import free_port, sign_init_data

TOKEN = "123456:AAE-web-mask-test-token"
ALICE, BOB = 42, 43
CHAT, REQUEST = 42, 1001
WAIT = (ALICE, CHAT, REQUEST)


def user(user_id: int) -> dict[str, object]:
    return {"id": user_id, "first_name": f"User {user_id}"}


def init_data(user_id: int = ALICE, *, age: float = 60, token: str = TOKEN) -> str:
    return sign_init_data(token, user(user_id), auth_date=int(time.time() - age))


def photo_with_exif_rotation(width: int = 2400, height: int = 1800) -> bytes:
    """A JPEG stored landscape whose EXIF says "rotate 90°": it shows portrait."""
    image = Image.new("RGB", (width, height), (30, 90, 160))
    image.paste((240, 240, 240), (0, 0, width // 4, height))  # a bar on the stored left
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def png(
    width: int, height: int, box: tuple[int, int, int, int] | None = (10, 10, 60, 60)
) -> bytes:
    mask = Image.new("L", (width, height), 0)
    if box is not None:
        mask.paste(255, box)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Desk:
    """The conversation's side, as the server sees it: one open wait, Alice's."""

    photos: dict[tuple[int, int, int], bytes]
    answer: str | None = None
    langs: dict[int, Lang] = field(default_factory=lambda: {ALICE: Lang.ZH})
    submitted: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    photo_calls: int = 0

    async def photo(self, user_id: int, chat_id: int, request_message_id: int) -> bytes | None:
        self.photo_calls += 1
        return self.photos.get((user_id, chat_id, request_message_id))

    async def lang(self, user_id: int) -> Lang:
        return self.langs.get(user_id, Lang.EN)

    async def submit(
        self, user_id: int, chat_id: int, request_message_id: int, png: bytes
    ) -> str | None:
        self.submitted.append((user_id, chat_id, request_message_id, png))
        return self.answer


@dataclass
class Site:
    server: WebServer
    desk: Desk
    http: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return self.server.public_url

    def token(self, user_id: int = ALICE, chat_id: int = CHAT, message_id: int = REQUEST,
              *, expires_in: float = 600) -> str:
        expires = int(time.time() + expires_in)
        return encode_link(MaskLink(user_id, chat_id, message_id, expires), link_key(TOKEN))

    async def submit(
        self, *, token: str | None = None, data: str | None = None, mask: bytes | None = None
    ) -> tuple[int, dict[str, object]]:
        form = aiohttp.FormData()
        form.add_field("t", self.token() if token is None else token)
        form.add_field("initData", init_data() if data is None else data)
        form.add_field("mask", io.BytesIO(png(1200, 1600) if mask is None else mask),
                       filename="mask.png", content_type="image/png")
        async with self.http.post(f"{self.base}/mask/submit", data=form) as response:
            return response.status, await response.json()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    port = free_port()
    desk = Desk({WAIT: photo_with_exif_rotation()})
    server = WebServer(desk=desk, bot_token=TOKEN, public_url=f"http://127.0.0.1:{port}/",
                       host="127.0.0.1", port=port)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Site(server, desk, http)
    finally:
        await server.stop()
        await server.stop()  # twice: the shutdown path may call it again


async def test_the_page_link_opens_the_page_in_the_requesters_language(site: Site) -> None:
    url = site.server.mask_page_url(ALICE, CHAT, REQUEST, Lang.EN)
    assert url.startswith(f"{site.base}/mask?t=") and url.endswith("&hl=en")
    assert TOKEN not in url and TOKEN.split(":")[1] not in url
    async with site.http.get(url) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "script-src 'self' https://telegram.org" in response.headers[
            "Content-Security-Policy"]
        page = await response.text()
    # Alice reads Chinese (the desk says so), whatever the link's hint.
    assert '<html lang="zh">' in page
    assert text("miniapp_submit", Lang.ZH) in page and text("miniapp_undo", Lang.ZH) in page
    assert '<script src="https://telegram.org/js/telegram-web-app.js"></script>' in page
    assert TOKEN not in page
    assert site.desk.photo_calls == 0  # the photo comes with proof of who asks for it
    for name, kind in (("mask.js", "text/javascript"), ("mask.css", "text/css")):
        async with site.http.get(f"{site.base}/mask/static/{name}") as response:
            assert response.status == 200 and response.content_type == kind
    async with site.http.get(f"{site.base}/mask/static/server.py") as response:
        assert response.status == 404


async def test_a_page_with_a_bad_link_says_so_in_the_hinted_language(site: Site) -> None:
    expired = site.token(expires_in=-1)
    for token in ("nonsense", expired):
        async with site.http.get(f"{site.base}/mask", params={"t": token, "hl": "zh"}) as answer:
            assert answer.status == 403
            assert text("miniapp_link_invalid", Lang.ZH) in await answer.text()


async def test_the_photo_is_the_bots_own_upright_jpeg_copy(site: Site) -> None:
    url = f"{site.base}/mask/photo?t={site.token()}"
    async with site.http.get(url, headers={INIT_DATA_HEADER: init_data()}) as response:
        assert response.status == 200
        assert response.content_type == "image/jpeg"
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.read()
    image = Image.open(io.BytesIO(body))
    assert image.format == "JPEG"
    assert image.size == (1200, 1600)  # EXIF rotation applied, longest side 1600
    assert image.getpixel((600, 20))[0] > 200  # the bar stored on the left is now on top
    assert b"api.telegram.org" not in body and TOKEN.encode() not in body


@pytest.mark.parametrize(
    ("case", "status"),
    [("no initData", 401), ("forged initData", 401), ("stale initData", 401),
     ("other user", 403), ("expired link", 403), ("other chat", 403), ("bad link", 403)],
)
async def test_the_photo_is_refused_to_anyone_but_the_requester(
    site: Site, case: str, status: int
) -> None:
    token, data = site.token(), init_data()
    if case == "no initData":
        data = ""
    elif case == "forged initData":
        data = init_data(token="654321:AAE-someone-elses-bot")
    elif case == "stale initData":
        data = init_data(age=timedelta(days=1, minutes=1).total_seconds())
    elif case == "other user":
        data = init_data(BOB)
    elif case == "expired link":
        token = site.token(expires_in=-5)
    elif case == "other chat":  # Alice's own link, but for a chat where she waits for nothing
        token = site.token(chat_id=-100777)
    else:
        token = token[:-4] + "AAAA"
    async with site.http.get(f"{site.base}/mask/photo", params={"t": token},
                             headers={INIT_DATA_HEADER: data}) as response:
        assert response.status == status, case
        answer = await response.json()
    assert answer["ok"] is False and answer["error"]
    assert response.content_type == "application/json"


async def test_a_drawn_mask_reaches_the_desk(site: Site) -> None:
    status, answer = await site.submit()
    assert (status, answer) == (200, {"ok": True})
    [(user_id, chat_id, message_id, sent)] = site.desk.submitted
    assert (user_id, chat_id, message_id) == WAIT
    assert Image.open(io.BytesIO(sent)).size == (1200, 1600)


async def test_the_desks_refusal_is_shown_on_the_page(site: Site) -> None:
    site.desk.answer = "本月额度已用完。"
    status, answer = await site.submit()
    assert (status, answer) == (409, {"ok": False, "error": "本月额度已用完。"})


@pytest.mark.parametrize(
    ("case", "status", "key"),
    [
        ("bad link", 403, "miniapp_link_invalid"),
        ("expired link", 403, "miniapp_link_invalid"),
        ("other chat", 403, "miniapp_wait_gone"),
        ("forged initData", 401, "miniapp_auth_failed"),
        ("missing initData", 401, "miniapp_auth_failed"),
        ("stale initData", 401, "miniapp_auth_failed"),
        ("other user", 403, "miniapp_not_requester"),
        ("too large", 413, "miniapp_mask_too_big"),
        ("not a PNG", 400, "miniapp_mask_bad"),
        ("wrong size", 400, "miniapp_mask_bad"),
        ("nothing painted", 400, "mask_empty"),
    ],
)
async def test_a_refused_submit_runs_nothing(
    site: Site, case: str, status: int, key: str
) -> None:
    token, data, mask = site.token(), init_data(), png(1200, 1600)
    if case == "bad link":
        token = "A" * 87
    elif case == "expired link":
        token = site.token(expires_in=-1)
    elif case == "other chat":
        token = site.token(chat_id=-100777)
    elif case == "forged initData":
        data = init_data(token="654321:AAE-someone-elses-bot")
    elif case == "missing initData":
        data = ""
    elif case == "stale initData":
        data = init_data(age=timedelta(days=2).total_seconds())
    elif case == "other user":
        data = init_data(BOB)
    elif case == "too large":
        mask = b"\x89PNG\r\n\x1a\n" + bytes(MAX_MASK_BYTES)
    elif case == "not a PNG":
        buffer = io.BytesIO()
        Image.new("RGB", (1200, 1600), (255, 255, 255)).save(buffer, "JPEG")
        mask = buffer.getvalue()
    elif case == "wrong size":
        mask = png(600, 800)
    else:
        mask = png(1200, 1600, box=None)
    status_got, answer = await site.submit(token=token, data=data, mask=mask)
    assert status_got == status, (case, answer)
    assert answer["ok"] is False
    # In Alice's language (Chinese) once the link says whose it is; English before.
    lang = Lang.EN if key == "miniapp_link_invalid" else Lang.ZH
    expected = text(key, lang, limit_mb=5, width=1200, height=1600)
    assert str(answer["error"]).startswith(expected), (case, answer)
    assert site.desk.submitted == []


async def test_links_expire_with_the_wait(site: Site) -> None:
    url = site.server.mask_page_url(ALICE, CHAT, REQUEST, Lang.ZH)
    port = free_port()
    later = WebServer(desk=site.desk, bot_token=TOKEN, public_url=f"http://127.0.0.1:{port}",
                      host="127.0.0.1", port=port,
                      clock=lambda: datetime.now(UTC) + timedelta(minutes=10, seconds=5))
    await later.start()
    try:
        query = url.split("?", 1)[1]
        async with site.http.get(f"{later.public_url}/mask?{query}") as response:
            assert response.status == 403
            assert text("miniapp_link_invalid", Lang.ZH) in await response.text()
    finally:
        await later.stop()


def test_browser_tests_skip_without_chromium_unless_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests import browser

    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("REQUIRE_BROWSER", raising=False)
    assert "/nonexistent/chromium is missing" in (browser.browser_missing_reason() or "")
    monkeypatch.setenv("REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_BROWSER=1"):
        browser.browser_missing_reason()
