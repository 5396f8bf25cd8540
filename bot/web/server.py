"""The bot's own web server: the Mini App that draws /erase masks, and room for more routes.

Trust: a page link carries a token signed by the bot (bot/web/links.py) naming one person's one
/erase wait; every request that reads or changes anything also carries Telegram's initData,
checked against the bot token (bot/web/initdata.py), and its user must be the token's. The
photo is the bot's own copy, re-encoded: a Telegram file URL holds the bot token and never
reaches the page.
"""

from __future__ import annotations

import html
import json
import logging
import string
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from aiohttp import web

from bot.conversations import MASK_WAIT_SECONDS
from bot.errors import ImageError, InitDataError, LinkError, StartupError, WebAuthError
from bot.images import PreparedImage, check_drawn_mask_async, drawing_copy_async
from bot.startup import ExitCode
from bot.texts import Lang, render_error, text
from bot.web.desk import DrawingDesk
from bot.web.health import HealthRoutes
from bot.web.initdata import WebAppUser, verify_init_data
from bot.web.links import MaskLink, decode_link, encode_link, link_key
from bot.web.static_files import StaticFiles
from bot.web.webhook import WebhookReceiver

logger = logging.getLogger(__name__)

# initData older than this is refused (Telegram's docs leave the bound to the bot).
INIT_DATA_MAX_AGE = timedelta(days=1)
# A link lives as long as the wait it names; the wait's own expiry is checked too.
LINK_LIFETIME = timedelta(seconds=MASK_WAIT_SECONDS)
# A drawn mask is a two-colour PNG of at most 1600 px a side: tens of KB. 5 MB is plenty.
MAX_MASK_BYTES = 5 * 1024 * 1024
# The mask plus the token, initData and multipart framing.
MAX_BODY_BYTES = MAX_MASK_BYTES + 64 * 1024
# How the page sends initData when it fetches the photo (a GET has no body).
INIT_DATA_HEADER = "X-Telegram-Init-Data"
# Drawing copies kept for the size check of a submit (a few people draw at once).
DRAWINGS_KEPT = 32

STATIC_FILES: Mapping[str, str] = {"mask.js": "text/javascript", "mask.css": "text/css"}
# The page runs our script and Telegram's, talks to us only, and shows the photo from a blob.
# Inline styles are allowed: telegram-web-app.js injects the web client's custom style.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self' https://telegram.org; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'"
)
# The page's words, by the name mask.html and mask.js know them by.
PAGE_TEXTS = {
    "title": "miniapp_title", "hint": "miniapp_hint", "brush": "miniapp_brush",
    "size": "miniapp_size", "eraser": "miniapp_eraser", "undo": "miniapp_undo",
    "clear": "miniapp_clear", "submit": "miniapp_submit", "sending": "miniapp_sending",
    "loading": "miniapp_loading", "outside": "miniapp_open_in_telegram",
    "network": "miniapp_network_error",
}

DrawingKey = tuple[int, int, int]  # user, chat, request message

# Where the page gets window.Telegram.WebApp from; the playground serves a stand-in instead.
TELEGRAM_WEB_APP_SCRIPT = "https://telegram.org/js/telegram-web-app.js"


@dataclass(frozen=True)
class WebExtras:
    """What the playground (bot/playground) adds: its own routes, and its stand-in for
    telegram-web-app.js, since no Telegram client hosts the page there. None in production."""

    routes: Sequence[web.RouteDef] = ()
    web_app_script: str = TELEGRAM_WEB_APP_SCRIPT
    # Called as the server stops, before it waits for requests under way: long polls end here.
    on_shutdown: Sequence[Callable[[web.Application], Awaitable[None]]] = ()


class _Refusal(Exception):
    """A request answered with an error: HTTP ``status`` and words for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WebServer:
    """aiohttp on ``host:port``; ``public_url`` is where Telegram clients reach it.

    The mask routes exist only with a ``public_url`` and a ``desk``; the webhook route only with
    a ``webhook``; health and metrics with ``health``.
    """

    def __init__(
        self, *, desk: DrawingDesk | None, bot_token: str, public_url: str | None,
        host: str = "0.0.0.0", port: int = 8080, clock: Callable[[], datetime] | None = None,
        health: HealthRoutes | None = None, webhook: WebhookReceiver | None = None,
        extras: WebExtras | None = None,
    ) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None
        self._health = health
        self._webhook = webhook
        self.host = host
        self.port = port
        self._maybe_desk = desk
        self._bot_token = bot_token
        self._link_key = link_key(bot_token)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._extras = extras or WebExtras()
        self._drawings: OrderedDict[DrawingKey, PreparedImage] = OrderedDict()
        self._static = StaticFiles(__package__, STATIC_FILES)
        self._page = string.Template(self._static.text("mask.html"))
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.app.add_routes(self.routes())
        self.app.on_shutdown.extend(self._extras.on_shutdown)
        self._runner: web.AppRunner | None = None

    def routes(self) -> list[web.RouteDef]:
        """Every route of the web server, in one table."""
        routes: list[web.RouteDef] = []
        if self.serves_masks:
            routes += [
                web.get("/mask", self.mask_page),
                web.get("/mask/photo", self.mask_photo),
                web.post("/mask/submit", self.mask_submit),
                web.get("/mask/static/{name}", self._static.serve),
            ]
        if self._health is not None:
            routes += self._health.routes()
        if self._webhook is not None:
            routes.append(self._webhook.route())
        routes += self._extras.routes
        return routes

    @property
    def serves_masks(self) -> bool:
        """Whether the mask page is served (PUBLIC_URL says where Telegram clients reach it)."""
        return self.public_url is not None and self._maybe_desk is not None

    @property
    def _desk(self) -> DrawingDesk:
        if self._maybe_desk is None:  # the mask routes are not registered without one
            raise RuntimeError("no drawing desk")
        return self._maybe_desk

    async def start(self) -> None:
        # No access log: page URLs carry link tokens, and refusals are logged below anyway.
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise StartupError(
                ExitCode.CONFIG, f"WEB_HOST/WEB_PORT {self.host}:{self.port} unusable: {exc}"
            ) from exc
        self._runner = runner
        logger.info("web server listening on %s:%s for %s", self.host, self.port,
                    self.public_url or "health and metrics")

    async def stop(self) -> None:
        """Stop listening; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def mask_page_url(
        self, user_id: int, chat_id: int, request_message_id: int, lang: Lang
    ) -> str:
        """The Mini App link for one person's /erase wait (for a ``web_app`` button)."""
        expires = int((self._clock() + LINK_LIFETIME).timestamp())
        token = encode_link(MaskLink(user_id, chat_id, request_message_id, expires),
                            self._link_key)
        # hl: the language of the refusal when the token no longer says whose page it is.
        return f"{self.public_url}/mask?{urlencode({'t': token, 'hl': lang.value})}"

    # --- routes ---------------------------------------------------------------------------

    async def mask_page(self, request: web.Request) -> web.Response:
        hint = _hint(request.query.get("hl"))
        try:
            link = self._link(request.query.get("t", ""))
        except WebAuthError as exc:
            logger.info("mask page refused: %s", exc.reason)
            return self._error_page(403, render_error(exc, hint), hint)
        lang = await self._desk.lang(link.user_id)
        texts = {name: text(key, lang) for name, key in PAGE_TEXTS.items()}
        config = {"token": request.query["t"], "lang": lang.value, "texts": texts}
        page = self._page.substitute(
            {name: html.escape(words) for name, words in texts.items()},
            lang=lang.value,
            web_app_script=html.escape(self._extras.web_app_script),
            # Inside <script type="application/json">: no "<" may end the element early.
            config=json.dumps(config, ensure_ascii=False).replace("<", "\\u003c"),
        )
        return web.Response(text=page, content_type="text/html", headers=_page_headers())

    async def mask_photo(self, request: web.Request) -> web.Response:
        try:
            link, lang = await self._authorised(
                request.query.get("t", ""), request.headers.get(INIT_DATA_HEADER, ""),
                _hint(request.query.get("hl")),
            )
            drawing = await self._drawing(link, lang)
        except _Refusal as refusal:
            return _json_error(refusal)
        return web.Response(body=drawing.data, content_type="image/jpeg",
                            headers={"Cache-Control": "no-store"})

    async def mask_submit(self, request: web.Request) -> web.Response:
        try:
            return await self._submit(request)
        except _Refusal as refusal:
            return _json_error(refusal)

    # --- checks -----------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        hint = _hint(request.query.get("hl"))
        too_big = _Refusal(413, text("miniapp_mask_too_big", hint,
                                    limit_mb=MAX_MASK_BYTES // (1024 * 1024)))
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise too_big
        form: Mapping[str, object]
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise too_big from None
        except ValueError:  # no form aiohttp can read: no token either, refused as such
            form = {}
        link, lang = await self._authorised(
            _field(form.get("t")), _field(form.get("initData")), hint
        )
        upload = form.get("mask")
        png = upload.file.read() if isinstance(upload, web.FileField) else b""
        if len(png) > MAX_MASK_BYTES:
            raise _Refusal(413, text("miniapp_mask_too_big", lang,
                                    limit_mb=MAX_MASK_BYTES // (1024 * 1024)))
        drawing = await self._drawing(link, lang)
        try:
            await check_drawn_mask_async(png, (drawing.width, drawing.height))
        except ImageError as exc:
            logger.info("mask from user %s refused: %s", link.user_id, exc)
            raise _Refusal(400, render_error(exc, lang)) from exc
        problem = await self._desk.submit(
            link.user_id, link.chat_id, link.request_message_id, png
        )
        if problem is not None:
            raise _Refusal(409, problem)
        self._drawings.pop(_key(link), None)
        return web.json_response({"ok": True})

    def _link(self, token: str) -> MaskLink:
        return decode_link(token, self._link_key, now=self._clock())

    async def _authorised(
        self, token: str, init_data: str, hint: Lang
    ) -> tuple[MaskLink, Lang]:
        """The link, if ``init_data`` proves its owner is asking; else a 403 or 401."""
        try:
            link = self._link(token)
        except LinkError as exc:
            logger.info("mask link refused: %s", exc.reason)
            raise _Refusal(403, render_error(exc, hint)) from exc
        lang = await self._desk.lang(link.user_id)
        try:
            user: WebAppUser = verify_init_data(
                init_data, self._bot_token, max_age=INIT_DATA_MAX_AGE, now=self._clock()
            )
        except InitDataError as exc:
            logger.info("mask request for user %s refused: %s", link.user_id, exc.reason)
            raise _Refusal(401, render_error(exc, lang)) from exc
        if user.id != link.user_id:
            logger.warning("user %s opened the mask page of user %s: refused", user.id,
                           link.user_id)
            raise _Refusal(403, text("miniapp_not_requester", lang))
        return link, lang

    async def _drawing(self, link: MaskLink, lang: Lang) -> PreparedImage:
        """The copy shown to paint on, made once per wait; 403 when the wait is over."""
        key = _key(link)
        cached = self._drawings.get(key)
        if cached is not None:
            self._drawings.move_to_end(key)
            return cached
        raw = await self._desk.photo(*key)
        if raw is None:
            raise _Refusal(403, text("miniapp_wait_gone", lang))
        try:
            drawing = await drawing_copy_async(raw)
        except ImageError as exc:
            raise _Refusal(400, render_error(exc, lang)) from exc
        self._drawings[key] = drawing
        while len(self._drawings) > DRAWINGS_KEPT:
            self._drawings.popitem(last=False)
        return drawing

    def _error_page(self, status: int, message: str, lang: Lang) -> web.Response:
        title = html.escape(text("miniapp_title", lang))
        page = (
            f'<!doctype html><html lang="{lang.value}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{title}</title><link rel="stylesheet" href="mask/static/mask.css">'
            f'</head><body><p class="message">{html.escape(message)}</p></body></html>'
        )
        return web.Response(status=status, text=page, content_type="text/html",
                            headers=_page_headers())


def _key(link: MaskLink) -> DrawingKey:
    return (link.user_id, link.chat_id, link.request_message_id)


def _hint(value: str | None) -> Lang:
    return Lang.ZH if value == Lang.ZH.value else Lang.EN


def _field(value: object) -> str:
    return value if isinstance(value, str) else ""


def _page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _json_error(refusal: _Refusal) -> web.Response:
    return web.json_response({"ok": False, "error": refusal.message}, status=refusal.status)
