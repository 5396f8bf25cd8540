"""The chat page's side of the playground: two people and two chats, spoken to the local Bot API.

The page does what a Telegram client does: what a person sends or presses becomes an update
pushed to the local Bot API, which the real bot polls; what the bot sent, edited and deleted is
read back from that server's own record of the chat. The page long-polls that record.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from string import Template
from typing import Any
from urllib.parse import urlencode

from aiohttp import BodyPartReader, web
from PIL import Image, ImageOps, UnidentifiedImageError

from bot.offline.bot_api import BotApiError, FakeTelegram
from bot.texts import CATALOGUE, Lang, text
from bot.web.initdata import sign_fields
from bot.web.static_files import StaticFiles

JSONDict = dict[str, Any]

YOU_ID = 1001
FRIEND_ID = 1002
GROUP_ID = -1001000000001
# Telegram's clients shrink a photo to this many pixels a side before sending it.
CLIENT_PHOTO_SIDE = 2560
# The page's long poll: an answer at the latest after this many seconds.
LONG_POLL_SECONDS = 20.0
# How long a press waits for the bot's answerCallbackQuery (its toast).
PRESS_ANSWER_SECONDS = 3.0
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
WEB_APP_SCRIPT_PATH = "/playground/telegram-web-app.js"
STATIC_FILES = {
    "playground.js": "text/javascript", "playground.css": "text/css",
}
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'"
)
# The page's words: every playground_* entry, and the Mini App's title for the overlay.
PAGE_TEXT_KEYS = (
    *(key for key in CATALOGUE if key.startswith("playground_")), "miniapp_title",
)


class Person(StrEnum):
    YOU = "you"
    FRIEND = "friend"


class Room(StrEnum):
    PRIVATE = "private"
    GROUP = "group"


class Refused(Exception):
    """A request the page made that cannot be done; ``message`` is for the person."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Button:
    text: str
    kind: str  # callback, web_app, url, or other (shown, does nothing)
    value: str = ""  # callback data, or the URL


@dataclass(frozen=True)
class Bubble:
    """One message as the page draws it."""

    id: int
    sender: str  # you, friend or bot
    name: str
    text: str
    entities: list[JSONDict] = field(default_factory=list)
    photo: str | None = None  # a URL on this server
    document: JSONDict | None = None  # url, name, size
    reply_to: JSONDict | None = None  # id, name, preview
    buttons: list[list[Button]] = field(default_factory=list)
    edited: bool = False


class PlaygroundChat:
    """The chat API of the page, over one local Bot API."""

    def __init__(self, bot_api: FakeTelegram, lang: Lang = Lang.EN) -> None:
        self.bot_api = bot_api
        self.lang = lang
        # Set as the server stops: a page's long poll answers at once instead of holding the
        # stop for up to LONG_POLL_SECONDS.
        self._closing = asyncio.Event()
        self.people = {
            Person.YOU: bot_api.user(YOU_ID, text("playground_you", Lang.EN),
                                     username="you", language_code=lang.value),
            Person.FRIEND: bot_api.user(FRIEND_ID, text("playground_friend", Lang.EN),
                                        username="friend", language_code=lang.value),
        }
        self.chats = {
            Room.PRIVATE: bot_api.private_chat(self.people[Person.YOU]),
            Room.GROUP: bot_api.group_chat(GROUP_ID, text("playground_group_title", Lang.EN)),
        }
        self._static = StaticFiles(__package__, STATIC_FILES)
        self._page = Template(self._static.text("index.html"))
        self._web_app_script = self._static.text("telegram-web-app.js")

    def routes(self) -> list[web.RouteDef]:
        """The page, its files and its API (added to the bot's own web server)."""
        return [
            web.get("/", self.page),
            web.get("/playground/static/{name}", self._static.serve),
            web.get(WEB_APP_SCRIPT_PATH, self.web_app_script),
            web.get("/playground/api/chat", self.chat),
            web.post("/playground/api/send", self.send),
            web.post("/playground/api/press", self.press),
            web.post("/playground/api/lang", self.set_lang),
            web.get("/playground/api/file/{file_id}", self.file),
        ]

    # --- the page -------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        config = {
            "lang": self.lang.value,
            "bot": {"name": self.bot_api.bot_user["first_name"],
                    "username": self.bot_api.bot_user["username"]},
            "texts": {lang.value: {key: text(key, lang) for key in PAGE_TEXT_KEYS}
                      for lang in Lang},
        }
        page = self._page.substitute(
            lang=self.lang.value,
            title=html.escape(text("playground_title", self.lang)),
            # Inside <script type="application/json">: no "<" may end the element early.
            config=json.dumps(config, ensure_ascii=False).replace("<", "\\u003c"),
        )
        return web.Response(text=page, content_type="text/html", headers={
            "Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-store",
        })

    async def web_app_script(self, request: web.Request) -> web.Response:
        """The stand-in for telegram-web-app.js: initData signed for "You" as Telegram signs
        it (the Mini App opens from a private chat only), and a MainButton drawn by the page."""
        you = self.people[Person.YOU]
        fields = {
            "query_id": f"playground{time.monotonic_ns()}",
            "user": json.dumps(you, separators=(",", ":"), ensure_ascii=False),
            "auth_date": str(int(time.time())),
        }
        fields["hash"] = sign_fields(fields, self.bot_api.token)
        script = self._web_app_script.replace("__INIT_DATA__", json.dumps(urlencode(fields)))
        return web.Response(text=script, content_type="text/javascript",
                            headers={"Cache-Control": "no-store"})

    # --- the API ---------------------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.Response:
        """The chat's messages once they differ from the page's ``version`` (a long poll)."""
        try:
            room = _room(request.query.get("room"))
        except Refused as refused:
            return _refusal(refused)
        known = request.query.get("version", "")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LONG_POLL_SECONDS
        while True:
            bubbles = self.bubbles(room)
            version = _version(bubbles)
            remaining = deadline - loop.time()
            if version != known or remaining <= 0 or self._closing.is_set():
                return web.json_response(
                    {"version": version, "messages": [asdict(bubble) for bubble in bubbles]}
                )
            await self._changed_or_closing(remaining)

    async def close(self, _app: web.Application) -> None:
        """The server is stopping: end the long polls under way."""
        self._closing.set()

    async def _changed_or_closing(self, seconds: float) -> None:
        changed = asyncio.ensure_future(self.bot_api.changed_within(seconds))
        closing = asyncio.ensure_future(self._closing.wait())
        _, pending = await asyncio.wait({changed, closing}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()

    async def send(self, request: web.Request) -> web.Response:
        try:
            form = await _read_form(request)
            room = _room(form.fields.get("room"))
            person = self._sender(room, form.fields.get("person", ""))
            words = form.fields.get("text", "").strip()
            reply_to = self._message(room, form.fields.get("reply_to", ""))
            user, chat = self.people[person], self.chats[room]
            if form.upload is not None:
                if form.fields.get("as_file") == "1":
                    message = self.bot_api.send_document(
                        user, chat, form.upload, file_name=form.filename or "image",
                        mime_type=form.content_type or "application/octet-stream",
                        caption=words or None, reply_to=reply_to,
                    )
                else:
                    photo = await asyncio.to_thread(_as_client_photo, form.upload)
                    if photo is None:
                        raise Refused(text("playground_not_image", self.lang,
                                           name=form.filename or "?"))
                    message = self.bot_api.send_photo(
                        user, chat, photo, caption=words or None, reply_to=reply_to
                    )
            elif words:
                message = self.bot_api.send_text(user, chat, words, reply_to=reply_to)
            else:
                raise Refused(text("playground_nothing_to_send", self.lang))
        except Refused as refused:
            return _refusal(refused)
        except BotApiError as exc:
            return _refusal(Refused(text("playground_refused", self.lang,
                                         reason=exc.description)))
        return web.json_response({"ok": True, "id": message["message_id"]})

    async def press(self, request: web.Request) -> web.Response:
        """A callback button pressed; answers with the bot's toast, if it gave one in time."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise Refused("expected a JSON object")
            room = _room(str(body.get("room", "")))
            person = self._sender(room, str(body.get("person", "")))
            message = self._message(room, str(body.get("message_id", "")))
            if message is None:
                raise Refused("no such message")
        except (Refused, ValueError) as exc:
            return _refusal(exc if isinstance(exc, Refused) else Refused("expected JSON"))
        query = self.bot_api.press_button(self.people[person], message, str(body.get("data")))
        return web.json_response({"ok": True, "answer": await self._answer_to(query["id"])})

    async def set_lang(self, request: web.Request) -> web.Response:
        """Both people's Telegram language from now on (a /lang choice still wins, as in
        Telegram), and the page's."""
        try:
            body = await request.json()
        except ValueError:
            return _refusal(Refused("expected JSON"))
        self.set_language(Lang.ZH if isinstance(body, dict) and body.get("lang") == "zh"
                          else Lang.EN)
        return web.json_response({"ok": True, "lang": self.lang.value})

    def set_language(self, lang: Lang) -> None:
        self.lang = lang
        for user in self.people.values():
            user["language_code"] = lang.value

    async def file(self, request: web.Request) -> web.Response:
        try:
            data = self.bot_api.file_bytes(request.match_info["file_id"])
        except KeyError:
            raise web.HTTPNotFound() from None
        return web.Response(body=data, content_type=_sniff(data),
                            headers={"Cache-Control": "private, max-age=3600",
                                     "X-Content-Type-Options": "nosniff"})

    # --- reading the record ----------------------------------------------------------------

    def bubbles(self, room: Room) -> list[Bubble]:
        """The chat as it stands: the latest version of every message not deleted."""
        return [self._bubble(message) for message in
                self.bot_api.messages_in(int(self.chats[room]["id"]))]

    def _bubble(self, message: JSONDict) -> Bubble:
        sender = self._sender_of(message)
        body = message.get("text")
        entities = message.get("entities", [])
        if body is None:
            body = message.get("caption", "")
            entities = message.get("caption_entities", [])
        if invoice := message.get("invoice"):
            body = f"🧾 {invoice['title']}\n{invoice['description']}\n⭐ {invoice['total_amount']}"
        photo = None
        if sizes := message.get("photo"):
            photo = _file_url(sizes[-1]["file_id"])
        document = None
        if doc := message.get("document"):
            document = {"url": _file_url(doc["file_id"]), "name": doc.get("file_name", "file"),
                        "size": doc.get("file_size", 0)}
        reply_to = None
        if replied := message.get("reply_to_message"):
            reply_to = {"id": replied["message_id"], "name": self._name_of(replied),
                        "preview": _preview(replied)}
        rows = message.get("reply_markup", {}).get("inline_keyboard", [])
        return Bubble(
            id=int(message["message_id"]), sender=sender, name=self._name_of(message),
            text=str(body or ""), entities=list(entities), photo=photo, document=document,
            reply_to=reply_to, buttons=[[_button(b) for b in row] for row in rows],
            edited="edit_date" in message,
        )

    def _sender_of(self, message: JSONDict) -> str:
        sender_id = message.get("from", {}).get("id")
        if sender_id == self.bot_api.bot_id:
            return "bot"
        return Person.FRIEND.value if sender_id == FRIEND_ID else Person.YOU.value

    def _name_of(self, message: JSONDict) -> str:
        sender = self._sender_of(message)
        if sender == "bot":
            return str(self.bot_api.bot_user["first_name"])
        return text(f"playground_{sender}", self.lang)

    def _message(self, room: Room, message_id: str) -> JSONDict | None:
        if not message_id:
            return None
        chat_id = int(self.chats[room]["id"])
        for message in self.bot_api.messages_in(chat_id):
            if str(message["message_id"]) == message_id:
                return message
        raise Refused(f"no message {message_id} in this chat")

    def _sender(self, room: Room, person: str) -> Person:
        # Friend is in the group only; the private chat is yours.
        if room is Room.GROUP and person == Person.FRIEND.value:
            return Person.FRIEND
        return Person.YOU

    async def _answer_to(self, query_id: str) -> JSONDict | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PRESS_ANSWER_SECONDS
        while True:
            for call in self.bot_api.calls_to("answerCallbackQuery"):
                if str(call.params.get("callback_query_id")) == query_id and call.response:
                    words = call.params.get("text")
                    return {"text": str(words or ""),
                            "show_alert": call.params.get("show_alert") in (True, "true")}
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await self.bot_api.changed_within(remaining)


def _room(value: str | None) -> Room:
    try:
        return Room(value or Room.PRIVATE.value)
    except ValueError:
        raise Refused(f"no room {value!r}: private or group") from None


@dataclass
class _Form:
    fields: dict[str, str] = field(default_factory=dict)
    upload: bytes | None = None
    filename: str = ""
    content_type: str = ""


async def _read_form(request: web.Request) -> _Form:
    """The composer's multipart form, streamed: the web server's body limit is the mask's,
    and a picked photo may be larger."""
    form = _Form()
    if not request.content_type.startswith("multipart/"):  # words only: a urlencoded form
        posted = await request.post()
        form.fields = {key: value for key, value in posted.items() if isinstance(value, str)}
        return form
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is None:
            form.fields[part.name] = await part.text()
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > MAX_UPLOAD_BYTES:
                raise Refused(f"the file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB", 413)
        if data:
            form.upload, form.filename = bytes(data), part.filename
            form.content_type = part.headers.get("Content-Type", "")
    return form


def _refusal(refused: Refused) -> web.Response:
    return web.json_response({"ok": False, "error": refused.message}, status=refused.status)


def _version(bubbles: list[Bubble]) -> str:
    encoded = json.dumps([asdict(b) for b in bubbles], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def _file_url(file_id: str) -> str:
    return f"/playground/api/file/{file_id}"


def _preview(message: JSONDict) -> str:
    words = str(message.get("text") or message.get("caption") or "")
    if not words:
        words = "🖼" if "photo" in message else "📎" if "document" in message else "…"
    return words if len(words) <= 60 else words[:59] + "…"


def _button(raw: JSONDict) -> Button:
    label = str(raw.get("text", ""))
    if "callback_data" in raw:
        return Button(label, "callback", str(raw["callback_data"]))
    if "web_app" in raw:
        return Button(label, "web_app", str(raw["web_app"].get("url", "")))
    if "url" in raw:
        return Button(label, "url", str(raw["url"]))
    return Button(label, "other")


def _as_client_photo(data: bytes) -> bytes | None:
    """What a Telegram client sends for a picked photo: upright, at most 2560 px a side, JPEG;
    None when it is no image."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    image.thumbnail((CLIENT_PHOTO_SIDE, CLIENT_PHOTO_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"
