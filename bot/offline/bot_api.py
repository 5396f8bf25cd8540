"""A loopback Telegram Bot API spoken over real HTTP: for the tests and the playground.

Point python-telegram-bot at it with ``base_url(f"{fake.root_url}/bot")`` and
``base_file_url(f"{fake.root_url}/file/bot")``. Tests fabricate users, chats and updates, inspect
every call the bot made, and inject the faults the real service produces (flood waits, blocked
users, dropped long polls, files too big to download).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import itertools
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message as MimeHeaders
from html.parser import HTMLParser
from typing import Any, NoReturn

import aiohttp
from aiohttp import web
from PIL import Image, UnidentifiedImageError

__all__ = ["ApiCall", "BotApiError", "FakeTelegram", "RawRequest", "UploadedFile"]

_LOGGER = logging.getLogger(__name__)

JSONDict = dict[str, Any]

MB = 1024 * 1024
# Limits of the real cloud Bot API (https://core.telegram.org/bots/api#sending-files).
MAX_DOWNLOAD_SIZE = 20 * MB
MAX_PHOTO_UPLOAD_SIZE = 10 * MB
MAX_DOCUMENT_UPLOAD_SIZE = 50 * MB
MAX_PHOTO_SIDES_SUM = 10_000
MAX_PHOTO_ASPECT_RATIO = 20
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_ANSWER_LENGTH = 200
# Invoices (https://core.telegram.org/bots/api#sendinvoice); the fake sells in Stars only.
STARS_CURRENCY = "XTR"
MAX_INVOICE_TITLE_LENGTH = 32
MAX_INVOICE_DESCRIPTION_LENGTH = 255
MAX_INVOICE_PAYLOAD_BYTES = 128
# Seconds Telegram waits for answerPreCheckoutQuery before it gives up on the payment.
PRE_CHECKOUT_TIMEOUT = 10.0
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
# Smaller sizes Telegram derives from a photo; the original becomes the largest entry.
THUMBNAIL_SIDES = (90, 320)

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
# Update types delivered when getUpdates never named allowed_updates.
DEFAULT_ALLOWED_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Form fields that are plain strings; every other form field holds JSON (numbers, objects, ...).
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "file_id",
        "language_code",
        "action",
        "url",
        "photo",
        "document",
        "inline_message_id",
        "business_connection_id",
        "message_effect_id",
        "secret_token",
        "description",
        "short_description",
        "name",
        # payments
        "title",
        "payload",
        "currency",
        "provider_token",
        "start_parameter",
        "pre_checkout_query_id",
        "error_message",
        "telegram_payment_charge_id",
    }
)
# Bot profile texts: the method that sets or gets each and the field holding it.
_PROFILE_FIELDS = {
    "setmydescription": "description",
    "getmydescription": "description",
    "setmyshortdescription": "short_description",
    "getmyshortdescription": "short_description",
    "setmyname": "name",
    "getmyname": "name",
}
_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_BOT_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_API_PATH_RE = re.compile(r"/bot(?P<token>[^/]*)/(?P<method>[A-Za-z0-9_]*)")
_FILE_PATH_RE = re.compile(r"/file/bot(?P<token>[^/]*)/(?P<path>.+)")


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ApiCall:
    """One Bot API method call as the fake decoded it, and the JSON body it answered."""

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    at: float
    token_ok: bool
    # Filled in place once answered; stays empty for a dropped connection.
    response: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def result(self) -> Any:
        """The ``result`` of a successful answer (a Message dict for sends), else None."""
        return self.response.get("result")


@dataclass(frozen=True)
class RawRequest:
    """Everything received on the wire, for tests that look for leaked secrets."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class BotApiError(Exception):
    """An error answer of the Bot API; raised inside method handlers."""

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None):
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> JSONDict:
        """The JSON body the real API answers with."""
        body: JSONDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad_request(reason: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {reason}")


# The kinds of inline button the bot may send; each button has exactly one.
_INLINE_BUTTON_KINDS = ("callback_data", "url", "web_app", "switch_inline_query", "pay",
                        "copy_text", "login_url", "callback_game",
                        "switch_inline_query_current_chat", "switch_inline_query_chosen_chat")
# The real API takes https Mini App URLs only. The fake also takes http to the loopback host,
# so tests can point the button at the bot's own test server (Telegram never would).
_LOOPBACK_WEB_APP = re.compile(r"http://(127\.0\.0\.1|localhost)(:\d+)?(/|$)")


def _check_inline_keyboard(rows: Any, chat: JSONDict) -> None:
    """Refuse an inline keyboard as the Bot API does (the checks the bot can trip)."""
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad_request("can't parse inline keyboard button: field \"inline_keyboard\" "
                           "must be an Array of Array")
    for button in (b for row in rows for b in row):
        if not isinstance(button, dict) or not str(button.get("text") or "").strip():
            raise _bad_request("can't parse inline keyboard button: Text must be non-empty")
        kinds = [kind for kind in _INLINE_BUTTON_KINDS if kind in button]
        if len(kinds) != 1:
            raise _bad_request("can't parse inline keyboard button: Text buttons are "
                               "unallowed in the inline keyboard")
        if kinds == ["callback_data"] and len(str(button["callback_data"]).encode()) > 64:
            raise _bad_request("BUTTON_DATA_INVALID")
        if kinds == ["web_app"]:
            if chat.get("type") != "private":  # Mini App buttons: private chats only
                raise _bad_request("BUTTON_TYPE_INVALID")
            web_app = button["web_app"]
            url = str(web_app.get("url") or "") if isinstance(web_app, dict) else ""
            if not url.startswith("https://") and not _LOOPBACK_WEB_APP.match(url):
                raise _bad_request(f"inline keyboard button Web App URL '{url}' is invalid: "
                                   "Only HTTPS links are allowed")


@dataclass
class _Fault:
    error_code: int
    description: str
    retry_after: int | None
    remaining: int
    chat_id: int | None


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_size: int
    file_path: str


@dataclass
class _Incoming:
    """A file the bot sent: uploaded bytes or the file_id of a file the fake already holds."""

    data: bytes
    filename: str
    content_type: str
    existing: _StoredFile | None = None


@dataclass
class _Webhook:
    url: str
    secret: str


@dataclass
class _PreCheckout:
    """A pre_checkout_query pushed to the bot, and how (or whether) it was answered."""

    query: JSONDict
    chat: JSONDict  # where the invoice was, and where the payment's message goes
    pushed_at: float  # time.monotonic()
    answer: JSONDict | None = None  # {"ok": ..., "error_message": ...} once answered


@dataclass
class _StarCharge:
    user_id: int
    stars: int
    refunded: bool = False


@dataclass
class _Formatted:
    text: str
    entities: list[JSONDict] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[JSONDict]:
    """bot_command entities as Telegram's clients mark them in a user's text."""
    entities = []
    for match in _COMMAND_RE.finditer(text):
        entities.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return entities


# --- formatting: the server parses parse_mode markup into plain text + entities -----------------

_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


# A '<' that opens no tag must be written as &lt; in HTML parse mode.
_STRAY_LESS_THAN_RE = re.compile(r"<(?![A-Za-z/])")


class _HtmlToEntities(HTMLParser):
    """Telegram's HTML parse mode: the supported tags become entities, anything else fails."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.position = 0
        self.stack: list[tuple[str, JSONDict]] = []
        self.entities: list[JSONDict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = _HTML_ENTITY_TYPES.get(tag)
        attributes = dict(attrs)
        if kind is None or (tag == "span" and attributes.get("class") != "tg-spoiler"):
            raise _bad_request(f'can\'t parse entities: Unsupported start tag "{tag}"')
        entity: JSONDict = {"type": kind, "offset": self.position}
        if tag == "a":
            href = attributes.get("href") or ""
            if href.startswith("tg://user?id="):
                entity = {
                    "type": "text_mention",
                    "offset": self.position,
                    "user": {
                        "id": int(href.removeprefix("tg://user?id=")),
                        "is_bot": False,
                        "first_name": "",
                    },
                }
            else:
                entity["url"] = href
        elif tag == "blockquote" and "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = attributes.get("emoji-id") or ""
        elif tag == "code" and self.stack and self.stack[-1][0] == "pre":
            language = (attributes.get("class") or "").removeprefix("language-")
            if language:
                self.stack[-1][1]["language"] = language
        self.stack.append((tag, entity))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise _bad_request(f'can\'t parse entities: Unsupported start tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            expected = f'"</{self.stack[-1][0]}>"' if self.stack else "nothing"
            raise _bad_request(
                f'can\'t parse entities: Unmatched end tag, expected {expected}, found "</{tag}>"'
            )
        _, entity = self.stack.pop()
        entity["length"] = self.position - entity["offset"]
        # <pre><code class=...> is one pre entity with a language, not pre + code.
        nested_code_of_pre = tag == "code" and self.stack and self.stack[-1][0] == "pre"
        if entity["length"] > 0 and not nested_code_of_pre:
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.position += utf16_len(data)


def _parse_html(text: str) -> _Formatted:
    if stray := _STRAY_LESS_THAN_RE.search(text):
        offset = len(text[: stray.start()].encode())
        raise _bad_request(
            f"can't parse entities: Unexpected end of name token at byte offset {offset}"
        )
    parser = _HtmlToEntities()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise _bad_request(
            "can't parse entities: Can't find end tag corresponding to start tag "
            f'"{parser.stack[-1][0]}"'
        )
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return _Formatted("".join(parser.parts), entities)


_MARKDOWN_V2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MARKDOWN_V2_MARKERS = (
    ("||", "spoiler"),
    ("__", "underline"),
    ("*", "bold"),
    ("_", "italic"),
    ("~", "strikethrough"),
)


def _parse_markdown_v2(text: str) -> _Formatted:
    """MarkdownV2: reserved characters must be escaped, as the real API insists."""
    out: list[str] = []
    position = 0
    open_marks: list[tuple[str, str, int]] = []
    link_starts: list[int] = []
    entities: list[JSONDict] = []
    i = 0

    def emit(chunk: str) -> None:
        nonlocal position
        out.append(chunk)
        position += utf16_len(chunk)

    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            emit(text[i + 1])
            i += 2
            continue
        if text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise _bad_request("can't parse entities: Can't find end of pre entity")
            body = text[i + 3 : end]
            language, newline, rest = body.partition("\n")
            code = rest if newline and language and " " not in language else body
            start = position
            emit(code.replace("\\`", "`").replace("\\\\", "\\"))
            entity: JSONDict = {"type": "pre", "offset": start, "length": position - start}
            if code is rest:
                entity["language"] = language
            entities.append(entity)
            i = end + 3
            continue
        if char == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise _bad_request("can't parse entities: Can't find end of code entity")
            start = position
            emit(text[i + 1 : end].replace("\\`", "`").replace("\\\\", "\\"))
            entities.append({"type": "code", "offset": start, "length": position - start})
            i = end + 1
            continue
        if char == "[":
            link_starts.append(position)
            i += 1
            continue
        if char == "]" and link_starts and text.startswith("(", i + 1):
            end = text.find(")", i + 2)
            if end < 0:
                raise _bad_request("can't parse entities: Can't find end of a URL")
            start = link_starts.pop()
            url = text[i + 2 : end].replace("\\)", ")").replace("\\\\", "\\")
            entities.append(
                {"type": "text_link", "offset": start, "length": position - start, "url": url}
            )
            i = end + 1
            continue
        for marker, kind in _MARKDOWN_V2_MARKERS:
            if text.startswith(marker, i):
                if open_marks and open_marks[-1][0] == marker:
                    _, kind, start = open_marks.pop()
                    if position > start:
                        entities.append(
                            {"type": kind, "offset": start, "length": position - start}
                        )
                else:
                    open_marks.append((marker, kind, position))
                i += len(marker)
                break
        else:
            if char in _MARKDOWN_V2_RESERVED:
                raise _bad_request(
                    f"can't parse entities: Character '{char}' is reserved and must be escaped "
                    "with the preceding '\\'"
                )
            emit(char)
            i += 1
    if open_marks:
        raise _bad_request(
            f"can't parse entities: Can't find end of {open_marks[-1][1].title()} entity"
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return _Formatted("".join(out), entities)


def format_text(text: str, parse_mode: str | None, entities: Any) -> _Formatted:
    """Plain text and entities of a message as the server stores it."""
    if isinstance(entities, list):
        return _Formatted(text, [dict(e) for e in entities])
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_markdown_v2(text)
    if mode in ("", "markdown"):
        # Legacy Markdown is rarely used and left as plain text here.
        return _Formatted(text)
    raise _bad_request(f"unsupported parse_mode {parse_mode}")


# --- request decoding ------------------------------------------------------------------------


def _header_param(header: str, value: str, name: str) -> str | None:
    headers = MimeHeaders()
    headers[header] = value
    if name == "filename":
        return headers.get_filename()
    param = headers.get_param(name, header=header)
    return param if isinstance(param, str) else None


def _parse_multipart(body: bytes, content_type: str) -> list[tuple[str, UploadedFile | str]]:
    """Split a multipart/form-data body into (name, field text or file) parts."""
    boundary = _header_param("content-type", content_type, "boundary")
    if not boundary:
        raise _bad_request("multipart boundary is missing")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    sections = (b"\r\n" + body).split(delimiter)
    parts: list[tuple[str, UploadedFile | str]] = []
    for section in sections[1:]:
        if section.startswith(b"--"):
            break
        head, _, content = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _header_param("content-disposition", disposition, "name")
        if not name:
            continue
        filename = _header_param("content-disposition", disposition, "filename")
        if filename is None:
            parts.append((name, content.decode("utf-8", "replace")))
        else:
            content_type_of_part = headers.get("content-type", "application/octet-stream")
            parts.append((name, UploadedFile(filename, content_type_of_part, content)))
    return parts


def _decode_field(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def decode_request(
    query: str, content_type: str, body: bytes
) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters and files of a Bot API request in any of the encodings the API accepts."""
    params: dict[str, Any] = {
        key: _decode_field(key, value)
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True)
    }
    files: dict[str, UploadedFile] = {}
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json" and body:
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise _bad_request("can't parse JSON object") from exc
        if not isinstance(decoded, dict):
            raise _bad_request("JSON object expected")
        params.update(decoded)
    elif mime == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", "replace")
        for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
            params[key] = _decode_field(key, value)
    elif mime == "multipart/form-data":
        for name, part in _parse_multipart(body, content_type):
            if isinstance(part, UploadedFile):
                files[name] = part
            else:
                params[name] = _decode_field(name, part)
    return params, files


# --- parameter helpers -----------------------------------------------------------------------


def _required(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise _bad_request(f"{name} is empty")
    return value


def _int_param(params: dict[str, Any], name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value is None or value == "":
        if default is not None:
            return default
        raise _bad_request(f"{name} is empty")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise _bad_request(f"invalid {name} specified") from exc


def _object_param(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _bad_request(f"can't parse {name} JSON object") from exc
    return value


@dataclass(frozen=True)
class _PreparedPhoto:
    width: int
    height: int
    thumbnails: tuple[tuple[bytes, int, int], ...]


def _prepare_photo(data: bytes) -> _PreparedPhoto:
    """Measure a photo and make the smaller sizes Telegram would derive from it (in a thread)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width + height > MAX_PHOTO_SIDES_SUM or (
                max(width, height) > MAX_PHOTO_ASPECT_RATIO * max(1, min(width, height))
            ):
                raise _bad_request("PHOTO_INVALID_DIMENSIONS")
            image.load()
            thumbnails = []
            for side in THUMBNAIL_SIDES:
                thumbnail = image.convert("RGB")
                thumbnail.thumbnail((side, side))
                buffer = io.BytesIO()
                thumbnail.save(buffer, format="JPEG", quality=80)
                thumbnails.append((buffer.getvalue(), thumbnail.width, thumbnail.height))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's bomb limit (89 Mpx) lies far beyond Telegram's 10000 px sum of sides.
        raise _bad_request("PHOTO_INVALID_DIMENSIONS") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise _bad_request("IMAGE_PROCESS_FAILED") from exc
    return _PreparedPhoto(width, height, tuple(thumbnails))


class FakeTelegram:
    """A Bot API server on 127.0.0.1 that keeps chats, messages, files and updates in memory."""

    DOWNLOAD = "file"

    def __init__(
        self,
        *,
        token: str = "123456:TEST-fake-token",
        bot_id: int = 123456,
        bot_username: str = "BailianTestBot",
    ) -> None:
        self.token = token
        self.bot_user: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Bailian Test Bot",
            "username": bot_username,
        }
        self.calls: list[ApiCall] = []
        self.requests_raw: list[RawRequest] = []
        # Exceptions the fake itself raised while handling a call (a bug in the fake or a
        # request it cannot understand); end-to-end tests can assert this stays empty.
        self.internal_errors: list[Exception] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._closing = False
        self._changed = asyncio.Event()
        self._returned_calls: dict[str, set[int]] = {}
        self._answered_calls: set[int] = set()
        # updates
        self._update_ids = itertools.count(100_001)
        self._pending_updates: list[JSONDict] = []
        self._pushed_updates: dict[int, JSONDict] = {}  # every update ever pushed, by id
        self._redelivered: set[int] = set()  # sent again; pass the offset until returned once
        self._allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self._poll_generation = 0
        self._drop_get_updates = 0
        # chats and messages
        self._chats: dict[int, JSONDict] = {}
        self._messages: dict[int, dict[int, JSONDict]] = {}
        self._versions: dict[int, list[JSONDict]] = {}
        self._deleted: set[tuple[int, int]] = set()
        self._next_message_id: dict[int, int] = {}
        self._blocked: set[int] = set()
        self._media_group_ids = itertools.count(13_000_000_000_000_001)
        self._callback_ids = itertools.count(4_000_000_000_001)
        self._open_callback_queries: set[str] = set()
        # files, commands, faults
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._photo_sets: dict[str, list[JSONDict]] = {}
        self._file_counter = itertools.count(1)
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._profile_texts: dict[tuple[str, str], str] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, list[float]] = {}
        # payments in Stars
        self.pre_checkout_timeout = PRE_CHECKOUT_TIMEOUT
        self._invoices: dict[tuple[int, int], JSONDict] = {}  # (chat, message) -> sendInvoice
        self._pre_checkout_ids = itertools.count(7_000_000_001)
        self._pre_checkouts: dict[str, _PreCheckout] = {}
        self._charge_ids = itertools.count(1)
        self._star_charges: dict[str, _StarCharge] = {}
        # webhook mode (setWebhook): updates are POSTed to the bot instead of polled
        self._webhook: _Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self.webhook_retry_delay = 0.1  # Telegram waits longer; tests should not
        self.webhook_posts: list[tuple[int, int]] = []  # (update_id, HTTP status) per POST
        # A load balancer in front of several instances: see balance_webhook().
        self._webhook_backends: tuple[str, ...] = ()
        self._next_backend = 0
        self.webhook_backend_posts: list[tuple[int, str, int]] = []  # (update_id, backend, status)
        handlers: dict[str, Callable[[ApiCall], Awaitable[Any]]] = {
            "setWebhook": self._set_webhook,
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "logOut": self._returns_true,
            "close": self._returns_true,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
            "copyMessage": self._copy_message,
            "editMessageMedia": self._edit_message_media,
            "setMyDescription": self._set_profile_text,
            "getMyDescription": self._get_profile_text,
            "setMyShortDescription": self._set_profile_text,
            "getMyShortDescription": self._get_profile_text,
            "setMyName": self._set_profile_text,
            "getMyName": self._get_profile_text,
            "setChatMenuButton": self._returns_true,
            "sendInvoice": self._send_invoice,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "refundStarPayment": self._refund_star_payment,
        }
        # Method names are case-insensitive on the real server.
        self._methods = {name.lower(): (name, handler) for name, handler in handlers.items()}

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application(client_max_size=MAX_DOCUMENT_UPLOAD_SIZE + 4 * MB)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # handler_cancellation: a client that gives up on a long poll ends its handler too.
        self._runner = web.AppRunner(
            app, shutdown_timeout=1.0, handler_cancellation=True, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self._port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Answer pending long polls and stop listening."""
        self._closing = True
        self._notify()
        await self._stop_webhook_delivery()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def root_url(self) -> str:
        """http://127.0.0.1:PORT, what TELEGRAM_API_URL is set to."""
        if not self._port:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def bot_id(self) -> int:
        return int(self.bot_user["id"])

    @property
    def pending_update_count(self) -> int:
        """Updates pushed but not yet confirmed by a getUpdates offset."""
        return len(self._pending_updates)

    def _notify(self) -> None:
        """Wake everyone waiting for a new call or update."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def changed_within(self, seconds: float) -> bool:
        """Whether a call or an update comes within ``seconds`` (returns at once when one does):
        for readers that long-poll the record, like the playground's page."""
        try:
            await asyncio.wait_for(self._changed.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # --- calls -------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        """Every call of one method (case-insensitive, like the API), in order."""
        wanted = method.lower()
        return [call for call in self.calls if call.method.lower() == wanted]

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        # Not asyncio.timeout: the failure lists every call so far, which tells what went wrong.
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> ApiCall:
        """The first matching call not returned by an earlier wait for the same method.

        Only answered calls count, so ``call.result`` is there (a long poll counts once it ends).
        """
        wanted = method.lower()
        returned = self._returned_calls.setdefault(wanted, set())
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            changed = self._changed
            for index, call in enumerate(self.calls):
                if (
                    index in returned
                    or index not in self._answered_calls
                    or call.method.lower() != wanted
                ):
                    continue
                if predicate is None or predicate(call):
                    returned.add(index)
                    return call
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = "\n".join(
                    f"  {call.method} {json.dumps(call.params, default=str)[:300]}"
                    for call in self.calls
                )
                raise AssertionError(
                    f"no matching {method} call within {timeout} s; calls so far:\n{seen}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    # --- users, chats, updates -----------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "Alice",
        *,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> JSONDict:
        """A Bot API User."""
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        return user

    def private_chat(self, user: JSONDict) -> JSONDict:
        """The private chat of a user with the bot (its id is the user's id)."""
        chat: JSONDict = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return self._register_chat(chat)

    def group_chat(self, chat_id: int, title: str = "Group") -> JSONDict:
        """A group (supergroup when the id has the -100 prefix)."""
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return self._register_chat({"id": chat_id, "type": kind, "title": title})

    def channel_chat(self, chat_id: int, title: str = "Channel") -> JSONDict:
        """A channel the bot is a member of."""
        return self._register_chat({"id": chat_id, "type": "channel", "title": title})

    def _register_chat(self, chat: JSONDict) -> JSONDict:
        self._chats[int(chat["id"])] = chat
        self._messages.setdefault(int(chat["id"]), {})
        self._versions.setdefault(int(chat["id"]), [])
        return dict(chat)

    def push_update(self, update: JSONDict) -> int:
        """Queue a raw update for getUpdates; assigns and returns its update_id."""
        update_id = next(self._update_ids)
        self._pending_updates.append({**update, "update_id": update_id})
        self._pushed_updates[update_id] = self._pending_updates[-1]
        self._notify()
        return update_id

    def update_id_of(self, item: JSONDict) -> int:
        """The update_id of the update that carried ``item`` (a message or callback query as
        returned by ``send_*``, ``press_button``, ...)."""
        for update_id, update in self._pushed_updates.items():
            if any(value is item for value in update.values()):
                return update_id
        raise KeyError("no update carried this item")

    def redeliver(self, update_id: int) -> None:
        """Send an update again with the same update_id, as Telegram does when the bot did not
        confirm its offset (it died first) or a webhook call is retried.

        It is delivered once more, even to a bot whose offset is already past it.
        """
        update = self._pushed_updates[update_id]
        self._pending_updates = sorted(
            [*(u for u in self._pending_updates if u["update_id"] != update_id), update],
            key=lambda u: int(u["update_id"]),
        )
        self._redelivered.add(update_id)
        self._notify()

    def _store_message(self, message: JSONDict) -> JSONDict:
        chat_id = int(message["chat"]["id"])
        self._messages.setdefault(chat_id, {})[int(message["message_id"])] = message
        self._versions.setdefault(chat_id, []).append(message)
        return message

    def _new_message(
        self,
        chat: JSONDict,
        sender: JSONDict | None,
        content: JSONDict,
        reply_to: JSONDict | None = None,
    ) -> JSONDict:
        chat_id = int(chat["id"])
        if chat_id not in self._chats:
            self._register_chat(chat)
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        message: JSONDict = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": dict(self._chats[chat_id]),
        }
        if sender is not None:
            message["from"] = dict(sender)
        if reply_to is not None:
            # Telegram never nests reply_to_message deeper than one level.
            message["reply_to_message"] = {
                k: v for k, v in reply_to.items() if k != "reply_to_message"
            }
        message.update(content)
        return self._store_message(message)

    def _current(self, chat_id: int, message_id: int) -> JSONDict | None:
        if (chat_id, message_id) in self._deleted:
            return None
        return self._messages.get(chat_id, {}).get(message_id)

    def send_text(
        self, user: JSONDict, chat: JSONDict, text: str, *, reply_to: JSONDict | None = None
    ) -> JSONDict:
        """A user's text message (commands get bot_command entities); pushes an Update."""
        content: JSONDict = {"text": text}
        if entities := command_entities(text):
            content["entities"] = entities
        message = self._new_message(chat, user, content, self._reply_target(chat, reply_to))
        self.push_update({"message": message})
        return message

    def send_photo(
        self,
        user: JSONDict,
        chat: JSONDict,
        image: bytes,
        caption: str | None = None,
        reply_to: JSONDict | None = None,
    ) -> JSONDict:
        """A user's photo: three PhotoSize entries, the largest holding the given bytes."""
        content: JSONDict = {"photo": self._photo_sizes(image, _prepare_photo(image))}
        content.update(self._user_caption(caption))
        message = self._new_message(chat, user, content, self._reply_target(chat, reply_to))
        self.push_update({"message": message})
        return message

    def send_album(
        self,
        user: JSONDict,
        chat: JSONDict,
        images: Sequence[bytes],
        caption: str | None = None,
    ) -> list[JSONDict]:
        """A user's album: one photo message (and one Update) per image, sharing a
        media_group_id, the caption on the first only, as Telegram sends them."""
        group_id = str(next(self._media_group_ids))
        messages: list[JSONDict] = []
        for index, image in enumerate(images):
            content: JSONDict = {
                "photo": self._photo_sizes(image, _prepare_photo(image)),
                "media_group_id": group_id,
            }
            content.update(self._user_caption(caption if index == 0 else None))
            message = self._new_message(chat, user, content)
            self.push_update({"message": message})
            messages.append(message)
        return messages

    def send_document(
        self,
        user: JSONDict,
        chat: JSONDict,
        data: bytes,
        *,
        file_name: str = "image.png",
        mime_type: str = "image/png",
        caption: str | None = None,
        file_size: int | None = None,
        reply_to: JSONDict | None = None,
    ) -> JSONDict:
        """A user's document (file_size may claim more than len(data)); pushes an Update."""
        stored = self._add_stored_file(data, "documents", file_name, file_size)
        content: JSONDict = {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": stored.file_size,
            }
        }
        content.update(self._user_caption(caption))
        message = self._new_message(chat, user, content, self._reply_target(chat, reply_to))
        self.push_update({"message": message})
        return message

    def press_button(self, user: JSONDict, message: JSONDict, data: str) -> JSONDict:
        """A callback_query update from a button of a bot message; returns the CallbackQuery."""
        chat_id = int(message["chat"]["id"])
        current = self._current(chat_id, int(message["message_id"])) or message
        query_id = str(next(self._callback_ids))
        self._open_callback_queries.add(query_id)
        query: JSONDict = {
            "id": query_id,
            "from": dict(user),
            "message": current,
            "chat_instance": str(-chat_id if chat_id < 0 else chat_id * 7 + 1),
            "data": data,
        }
        self.push_update({"callback_query": query})
        return query

    def pay(
        self,
        user: JSONDict,
        invoice_message: JSONDict,
        *,
        total_amount: int | None = None,
        payload: str | None = None,
    ) -> JSONDict:
        """The user presses Pay on an invoice the bot sent: a pre_checkout_query update (the
        invoice's own amount and payload unless overridden); returns the PreCheckoutQuery."""
        chat_id = int(invoice_message["chat"]["id"])
        invoice = self._invoices.get((chat_id, int(invoice_message["message_id"])))
        if invoice is None:
            raise KeyError("the bot sent no invoice in that message")
        query: JSONDict = {
            "id": str(next(self._pre_checkout_ids)),
            "from": dict(user),
            "currency": invoice["currency"],
            "total_amount": invoice["total_amount"] if total_amount is None else total_amount,
            "invoice_payload": invoice["payload"] if payload is None else payload,
        }
        self._pre_checkouts[query["id"]] = _PreCheckout(
            query, dict(self._chats[chat_id]), time.monotonic()
        )
        self.push_update({"pre_checkout_query": query})
        return query

    def pre_checkout_answer(self, query_id: str) -> JSONDict | None:
        """How the bot answered a pre-checkout query (``ok``, ``error_message``), or None."""
        return self._pre_checkouts[query_id].answer

    def complete_payment(self, query: JSONDict) -> JSONDict:
        """Telegram charges after the bot said ok: the successful_payment message update."""
        pending = self._pre_checkouts[query["id"]]
        if pending.answer is None or not pending.answer.get("ok"):
            raise AssertionError(f"pre-checkout {query['id']} was not approved: {pending.answer}")
        return self.successful_payment(
            query["from"], pending.chat, payload=query["invoice_payload"],
            total_amount=int(query["total_amount"]), currency=query["currency"],
        )

    def successful_payment(
        self,
        user: JSONDict,
        chat: JSONDict,
        *,
        payload: str,
        total_amount: int,
        currency: str = STARS_CURRENCY,
        charge_id: str | None = None,
    ) -> JSONDict:
        """A successful_payment message from the user (a new charge id unless one is given: the
        same charge again is what a second instance or a retried webhook would see)."""
        if charge_id is None:
            charge_id = f"stxFakeCharge{next(self._charge_ids):08d}"
            self._star_charges[charge_id] = _StarCharge(int(user["id"]), total_amount)
        content: JSONDict = {
            "successful_payment": {
                "currency": currency,
                "total_amount": total_amount,
                "invoice_payload": payload,
                "telegram_payment_charge_id": charge_id,
                "provider_payment_charge_id": "",
            }
        }
        message = self._new_message(chat, user, content)
        self.push_update({"message": message})
        return message

    def star_refunded(self, charge_id: str) -> bool:
        return self._star_charges[charge_id].refunded

    def edit_text(
        self, user: JSONDict, chat: JSONDict, message: JSONDict, new_text: str
    ) -> JSONDict:
        """The user edits their text message; pushes an edited_message update."""
        edited = {**message, "text": new_text, "edit_date": int(time.time())}
        edited.pop("entities", None)
        if entities := command_entities(new_text):
            edited["entities"] = entities
        edited["chat"] = dict(chat)
        edited["from"] = dict(user)
        self._store_message(edited)
        self.push_update({"edited_message": edited})
        return edited

    def channel_post(self, chat: JSONDict, text: str) -> JSONDict:
        """A post in a channel (no sender user); pushes a channel_post update."""
        content: JSONDict = {"text": text, "sender_chat": dict(chat)}
        if entities := command_entities(text):
            content["entities"] = entities
        message = self._new_message(chat, None, content)
        self.push_update({"channel_post": message})
        return message

    def _user_caption(self, caption: str | None) -> JSONDict:
        if caption is None:
            return {}
        content: JSONDict = {"caption": caption}
        if entities := command_entities(caption):
            content["caption_entities"] = entities
        return content

    def _reply_target(self, chat: JSONDict, reply_to: JSONDict | None) -> JSONDict | None:
        if reply_to is None:
            return None
        return self._current(int(chat["id"]), int(reply_to["message_id"])) or reply_to

    # --- files -------------------------------------------------------------------------------

    def add_file(self, data: bytes, *, file_size: int | None = None) -> tuple[str, str]:
        """Store a file as Telegram would; returns (file_id, file_unique_id)."""
        stored = self._add_stored_file(data, "documents", "file.bin", file_size)
        return stored.file_id, stored.file_unique_id

    def _add_stored_file(
        self, data: bytes, folder: str, name: str, file_size: int | None
    ) -> _StoredFile:
        number = next(self._file_counter)
        suffix = name.rsplit(".", 1)[-1].lower() if "." in name else "bin"
        stored = _StoredFile(
            file_id=f"AgACAgFake{number:06d}{'x' * 24}",
            file_unique_id=f"AQADFake{number:06d}",
            data=data,
            file_size=len(data) if file_size is None else file_size,
            file_path=f"{folder}/file_{number}.{suffix}",
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _photo_sizes(self, original: bytes, prepared: _PreparedPhoto) -> list[JSONDict]:
        sizes: list[tuple[bytes, int, int, str]] = [
            (data, width, height, "thumb.jpg") for data, width, height in prepared.thumbnails
        ]
        sizes.append((original, prepared.width, prepared.height, "photo.jpg"))
        entries: list[JSONDict] = []
        for data, width, height, name in sizes:
            stored = self._add_stored_file(data, "photos", name, None)
            entries.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.file_size,
                    "width": width,
                    "height": height,
                }
            )
        for entry in entries:
            self._photo_sets[str(entry["file_id"])] = entries
        return entries

    def file_bytes(self, file_id: str) -> bytes:
        """Content of a file, whether a test added it or the bot uploaded it."""
        return self._files[file_id].data

    # --- state -------------------------------------------------------------------------------

    def messages_in(self, chat_id: int) -> list[JSONDict]:
        """The latest version of every message in a chat, user's and bot's, by message_id."""
        messages = self._messages.get(chat_id, {})
        return [
            messages[message_id]
            for message_id in sorted(messages)
            if (chat_id, message_id) not in self._deleted
        ]

    def message_versions(self, chat_id: int) -> list[JSONDict]:
        """Every version of every message in a chat in the order they appeared (edits too)."""
        return list(self._versions.get(chat_id, []))

    def bot_message(self, chat_id: int, message_id: int) -> JSONDict:
        """The latest version of a message the bot sent."""
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None or message.get("from", {}).get("id") != self.bot_id:
            raise KeyError(f"no bot message {message_id} in chat {chat_id}")
        return message

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """The command list set for a scope (default scope if None) and language."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    def delete_user_message(self, chat_id: int, message_id: int) -> None:
        """The user deleted a message: replies to it fail from now on."""
        self._deleted.add((chat_id, message_id))

    # --- faults ------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 500,
        description: str = "Internal Server Error",
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        """The next `times` calls of `method` (to `chat_id`, if given) fail with this error.

        A call whose ``scope`` names a chat (setMyCommands) is to that chat.

        `method` may also be ``FakeTelegram.DOWNLOAD`` ("file"): the file download route.
        """
        self._faults.setdefault(method.lower(), []).append(
            _Fault(error_code, description, retry_after, times, chat_id)
        )

    def slow_next(self, method: str, delay: float, *, times: int = 1) -> None:
        """Carry out the next `times` successful calls of `method`; hold each answer `delay` s.

        The call takes effect at once (a held sendPhoto has already posted its photo): only the
        answer is late, as when a connection stalls, or a bot is killed before reading it.
        """
        self._delays.setdefault(method.lower(), []).extend([delay] * times)

    def drop_next_get_updates(self, times: int = 1) -> None:
        """Close the connection of the next getUpdates calls without answering."""
        self._drop_get_updates += times

    def block_bot(self, user_id: int) -> None:
        """The user blocked the bot: sends to their private chat fail with 403."""
        self._blocked.add(user_id)

    def _take_fault(self, method: str, params: dict[str, Any]) -> BotApiError | None:
        faults = self._faults.get(method.lower(), [])
        for fault in faults:
            scope = params.get("scope")
            to = scope.get("chat_id") if isinstance(scope, dict) else params.get("chat_id")
            if fault.chat_id is not None and str(to) != str(fault.chat_id):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.remove(fault)
            return BotApiError(fault.error_code, fault.description, retry_after=fault.retry_after)
        return None

    # --- HTTP --------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._error(BotApiError(413, "Request Entity Too Large"))
        self.requests_raw.append(
            RawRequest(request.method, str(request.url), dict(request.headers), body)
        )
        if match := _FILE_PATH_RE.fullmatch(request.path):
            return self._download(match["token"], match["path"])
        match = _API_PATH_RE.fullmatch(request.path)
        if match is None:
            return self._error(BotApiError(404, "Not Found"))
        token_ok = hmac.compare_digest(match["token"].encode(), self.token.encode())
        method, handler = self._methods.get(match["method"].lower(), (match["method"], None))
        try:
            params, files = decode_request(
                request.query_string, request.headers.get("Content-Type", ""), body
            )
        except BotApiError as exc:
            params, files = {}, {}
            decode_error: BotApiError | None = exc
        else:
            decode_error = None
        call = ApiCall(method, params, files, time.monotonic(), token_ok)
        self.calls.append(call)
        index = len(self.calls) - 1
        self._notify()
        try:
            answer = await self._answer(request, call, handler, decode_error)
            call.response.update(answer)
        finally:
            # Also when the connection was dropped or the client went away.
            self._answered_calls.add(index)
            self._notify()
        status = 200 if answer["ok"] else int(answer["error_code"])
        return web.json_response(answer, status=status)

    async def _answer(
        self,
        request: web.Request,
        call: ApiCall,
        handler: Callable[[ApiCall], Awaitable[Any]] | None,
        decode_error: BotApiError | None,
    ) -> JSONDict:
        """The JSON body answering one call."""
        if not call.token_ok:
            return BotApiError(401, "Unauthorized").payload()
        if handler is None:
            _LOGGER.warning("FakeTelegram does not implement Bot API method %s", call.method)
            return BotApiError(404, "Not Found").payload()
        if decode_error is not None:
            return decode_error.payload()
        if call.method == "getUpdates" and self._drop_get_updates > 0:
            self._drop_get_updates -= 1
            await self._drop_connection(request)
        if fault := self._take_fault(call.method, call.params):
            return fault.payload()
        try:
            result = await handler(call)
        except BotApiError as exc:
            return exc.payload()
        except Exception as exc:
            _LOGGER.exception("FakeTelegram failed to handle %s", call.method)
            self.internal_errors.append(exc)
            return BotApiError(500, f"Internal Server Error: fake failed: {exc!r}").payload()
        if delays := self._delays.get(call.method.lower()):
            await asyncio.sleep(delays.pop(0))
        return {"ok": True, "result": result}

    @staticmethod
    def _error(error: BotApiError) -> web.Response:
        return web.json_response(error.payload(), status=error.error_code)

    @staticmethod
    async def _drop_connection(request: web.Request) -> NoReturn:
        transport = request.transport
        if transport is not None:
            transport.close()
        # The client sees the connection close; aiohttp never gets to write this.
        raise asyncio.CancelledError

    def _download(self, token: str, file_path: str) -> web.Response:
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return self._error(BotApiError(401, "Unauthorized"))
        if fault := self._take_fault(self.DOWNLOAD, {}):
            return self._error(fault)
        stored = self._files_by_path.get(file_path)
        if stored is None:
            return self._error(BotApiError(404, "Not Found"))
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # --- chats for sending -------------------------------------------------------------------

    def _target_chat(self, params: dict[str, Any], name: str = "chat_id") -> JSONDict:
        raw = _required(params, name)
        chat: JSONDict | None = None
        if isinstance(raw, str) and raw.startswith("@"):
            chat = next((c for c in self._chats.values() if f"@{c.get('username')}" == raw), None)
        else:
            try:
                chat = self._chats.get(int(raw))
            except (TypeError, ValueError):
                chat = None
        if chat is None:
            raise _bad_request("chat not found")
        if chat["type"] == "private" and int(chat["id"]) in self._blocked:
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _reply_for(self, chat: JSONDict, params: dict[str, Any]) -> JSONDict | None:
        reply = _object_param(params, "reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            # Bot API before 7.0 spelled it as two flat parameters; still accepted.
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if reply is None:
            return None
        if not isinstance(reply, dict) or "message_id" not in reply:
            raise _bad_request("invalid reply parameters specified")
        reply_chat = chat
        if reply.get("chat_id") is not None:
            reply_chat = self._target_chat(reply)
        target = self._current(int(reply_chat["id"]), _int_param(reply, "message_id"))
        if target is None and not reply.get("allow_sending_without_reply"):
            raise _bad_request("message to be replied not found")
        return target

    def _markup(self, params: dict[str, Any], chat: JSONDict) -> JSONDict:
        markup = _object_param(params, "reply_markup")
        # Only inline keyboards are echoed back in the sent Message.
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            _check_inline_keyboard(markup["inline_keyboard"], chat)
            return {"reply_markup": markup}
        return {}

    def _caption(self, params: dict[str, Any]) -> JSONDict:
        caption = params.get("caption")
        if caption is None or caption == "":
            return {}
        formatted = format_text(
            str(caption), params.get("parse_mode"), _object_param(params, "caption_entities")
        )
        if utf16_len(formatted.text) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        content: JSONDict = {"caption": formatted.text}
        if formatted.entities:
            content["caption_entities"] = formatted.entities
        return content

    def _input_file(
        self, params: dict[str, Any], files: dict[str, UploadedFile], name: str
    ) -> _Incoming:
        if name in files:
            upload = files[name]
            return _Incoming(upload.data, upload.filename, upload.content_type)
        value = params.get(name)
        if value is None or value == "":
            raise _bad_request(f"there is no {name} in the request")
        if isinstance(value, str) and value.startswith("attach://"):
            upload_or_none = files.get(value.removeprefix("attach://"))
            if upload_or_none is None:
                raise _bad_request(f"file of {name} is not found in the request")
            return _Incoming(
                upload_or_none.data, upload_or_none.filename, upload_or_none.content_type
            )
        stored = self._files.get(str(value))
        if stored is None:
            raise _bad_request("wrong file identifier/HTTP URL specified")
        return _Incoming(stored.data, stored.file_path.rsplit("/", 1)[-1], "", stored)

    async def _photo_content(self, incoming: _Incoming) -> list[JSONDict]:
        if incoming.existing is not None and incoming.existing.file_id in self._photo_sets:
            return self._photo_sets[incoming.existing.file_id]
        if len(incoming.data) > MAX_PHOTO_UPLOAD_SIZE:
            raise _bad_request("PHOTO_INVALID_DIMENSIONS")
        prepared = await asyncio.to_thread(_prepare_photo, incoming.data)
        return self._photo_sizes(incoming.data, prepared)

    def _document_content(self, incoming: _Incoming) -> JSONDict:
        if incoming.existing is not None:
            stored = incoming.existing
        else:
            if len(incoming.data) > MAX_DOCUMENT_UPLOAD_SIZE:
                raise BotApiError(413, "Request Entity Too Large")
            stored = self._add_stored_file(incoming.data, "documents", incoming.filename, None)
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": incoming.filename,
            "mime_type": incoming.content_type or "application/octet-stream",
            "file_size": stored.file_size,
        }

    # --- methods -----------------------------------------------------------------------------

    async def _returns_true(self, call: ApiCall) -> bool:
        return True

    async def _get_me(self, call: ApiCall) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, call: ApiCall) -> list[JSONDict]:
        if self._webhook is not None:
            raise BotApiError(
                409, "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        params = call.params
        offset = _int_param(params, "offset", 0)
        limit = min(max(_int_param(params, "limit", 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = _object_param(params, "allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) or DEFAULT_ALLOWED_UPDATES
        if offset > 0:
            self._pending_updates = [
                u for u in self._pending_updates
                if u["update_id"] >= offset or u["update_id"] in self._redelivered
            ]
        elif offset < 0:
            self._pending_updates = self._pending_updates[offset:]
        # A newer getUpdates terminates an older one still waiting, as on the real server.
        self._poll_generation += 1
        generation = self._poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            if generation != self._poll_generation:
                raise BotApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
            self._pending_updates = [
                u for u in self._pending_updates if self._update_kind(u) in self._allowed_updates
            ]
            remaining = deadline - loop.time()
            if self._pending_updates or remaining <= 0 or self._closing:
                batch = self._pending_updates[:limit]
                self._redelivered.difference_update(u["update_id"] for u in batch)
                return batch
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    @staticmethod
    def _update_kind(update: JSONDict) -> str:
        return next((key for key in update if key != "update_id"), "")

    async def _delete_webhook(self, call: ApiCall) -> bool:
        if call.params.get("drop_pending_updates") in (True, "true"):
            self._pending_updates.clear()
        self._webhook = None
        await self._stop_webhook_delivery()
        return True

    async def _get_webhook_info(self, call: ApiCall) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook.url if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending_updates),
        }
        if self._webhook is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    # --- webhook mode ------------------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        """The URL set by setWebhook ("" when none)."""
        return self._webhook.url if self._webhook else ""

    def balance_webhook(self, backends: Sequence[str]) -> None:
        """Deliver webhook POSTs round-robin to ``backends`` (``http://host:port`` each) with the
        set URL's path, as a load balancer in front of several instances would; a backend that
        does not answer 2xx gets the update's next try sent to the one after it. Empty: off."""
        self._webhook_backends = tuple(backend.rstrip("/") for backend in backends)
        self._next_backend = 0

    def _webhook_target(self, url: str) -> tuple[str, str]:
        """(URL to POST to, backend or "") for the next webhook delivery."""
        if not self._webhook_backends:
            return url, ""
        backend = self._webhook_backends[self._next_backend % len(self._webhook_backends)]
        self._next_backend += 1
        path = urllib.parse.urlsplit(url)
        return backend + (path.path or "/") + (f"?{path.query}" if path.query else ""), backend

    async def _set_webhook(self, call: ApiCall) -> bool:
        url = str(_required(call.params, "url"))
        secret = str(call.params.get("secret_token") or "")
        if not url:  # an empty url removes the webhook, as on the real server
            return await self._delete_webhook(call)
        if not re.fullmatch(r"[A-Za-z0-9_-]{0,256}", secret):
            raise _bad_request("secret token contains unallowed characters")
        if not url.startswith(("http://", "https://")):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        allowed = _object_param(call.params, "allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) or DEFAULT_ALLOWED_UPDATES
        if call.params.get("drop_pending_updates") in (True, "true"):
            self._pending_updates.clear()
        self._webhook = _Webhook(url, secret)
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._deliver_to_webhook())
        return True

    async def _stop_webhook_delivery(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver_to_webhook(self) -> None:
        """POST pending updates one by one, in order; retry on anything but 2xx, as Telegram."""
        async with aiohttp.ClientSession() as session:
            while self._webhook is not None and not self._closing:
                changed = self._changed
                self._pending_updates = [
                    u for u in self._pending_updates
                    if self._update_kind(u) in self._allowed_updates
                ]
                if not self._pending_updates:
                    await changed.wait()
                    continue
                update, hook = self._pending_updates[0], self._webhook
                target, backend = self._webhook_target(hook.url)
                try:
                    async with session.post(
                        target, json=update, timeout=aiohttp.ClientTimeout(total=10),
                        headers={"X-Telegram-Bot-Api-Secret-Token": hook.secret}
                        if hook.secret else {},
                    ) as response:
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0  # no answer: delivered again later
                self.webhook_posts.append((int(update["update_id"]), status))
                if backend:
                    self.webhook_backend_posts.append((int(update["update_id"]), backend, status))
                self._notify()
                if 200 <= status < 300:
                    self._redelivered.discard(int(update["update_id"]))
                    with contextlib.suppress(ValueError):
                        self._pending_updates.remove(update)
                else:
                    await asyncio.sleep(self.webhook_retry_delay)

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    async def _set_my_commands(self, call: ApiCall) -> bool:
        commands = _object_param(call.params, "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad_request("commands must be a list of at most 100 BotCommand")
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not _BOT_COMMAND_NAME_RE.fullmatch(str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(
            _object_param(call.params, "scope"), call.params.get("language_code")
        )
        self._commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _get_my_commands(self, call: ApiCall) -> list[JSONDict]:
        key = self._commands_key(
            _object_param(call.params, "scope"), call.params.get("language_code")
        )
        return list(self._commands.get(key, []))

    async def _delete_my_commands(self, call: ApiCall) -> bool:
        key = self._commands_key(
            _object_param(call.params, "scope"), call.params.get("language_code")
        )
        self._commands.pop(key, None)
        return True

    async def _send_message(self, call: ApiCall) -> JSONDict:
        params = call.params
        chat = self._target_chat(params)
        text = params.get("text")
        if text is None or str(text).strip() == "":
            raise _bad_request("message text is empty")
        formatted = format_text(str(text), params.get("parse_mode"), params.get("entities"))
        if not formatted.text.strip():
            raise _bad_request("message text is empty")
        if utf16_len(formatted.text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        reply_to = self._reply_for(chat, params)
        content: JSONDict = {"text": formatted.text}
        if formatted.entities:
            content["entities"] = formatted.entities
        content.update(self._markup(params, chat))
        return self._new_message(chat, self.bot_user, content, reply_to)

    async def _send_photo(self, call: ApiCall) -> JSONDict:
        params = call.params
        chat = self._target_chat(params)
        incoming = self._input_file(params, call.files, "photo")
        caption = self._caption(params)
        reply_to = self._reply_for(chat, params)
        content: JSONDict = {"photo": await self._photo_content(incoming), **caption}
        content.update(self._markup(params, chat))
        return self._new_message(chat, self.bot_user, content, reply_to)

    async def _send_document(self, call: ApiCall) -> JSONDict:
        params = call.params
        chat = self._target_chat(params)
        incoming = self._input_file(params, call.files, "document")
        caption = self._caption(params)
        reply_to = self._reply_for(chat, params)
        content: JSONDict = {"document": self._document_content(incoming), **caption}
        content.update(self._markup(params, chat))
        return self._new_message(chat, self.bot_user, content, reply_to)

    async def _send_media_group(self, call: ApiCall) -> list[JSONDict]:
        params = call.params
        chat = self._target_chat(params)
        media = _object_param(params, "media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _bad_request("media group must have from 2 to 10 elements")
        kinds = {item.get("type") for item in media if isinstance(item, dict)}
        if not kinds <= {"photo", "document"} or len(kinds) != 1:
            # The fake knows photos and documents; the real API forbids mixing documents too.
            raise _bad_request("document can't be mixed with other media types")
        reply_to = self._reply_for(chat, params)
        contents = []
        for item in media:
            incoming = self._input_file(item, call.files, "media")
            content: JSONDict = self._caption(item)
            if item["type"] == "photo":
                content["photo"] = await self._photo_content(incoming)
            else:
                content["document"] = self._document_content(incoming)
            contents.append(content)
        group_id = str(next(self._media_group_ids))
        return [
            self._new_message(
                chat, self.bot_user, {**content, "media_group_id": group_id}, reply_to
            )
            for content in contents
        ]

    async def _send_chat_action(self, call: ApiCall) -> bool:
        self._target_chat(call.params)
        if call.params.get("action") not in CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    async def _answer_callback_query(self, call: ApiCall) -> bool:
        query_id = str(_required(call.params, "callback_query_id"))
        if query_id not in self._open_callback_queries:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(call.params.get("text") or "")) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        self._open_callback_queries.discard(query_id)
        return True

    async def _send_invoice(self, call: ApiCall) -> JSONDict:
        params = call.params
        chat = self._target_chat(params)
        title = str(params.get("title") or "")
        description = str(params.get("description") or "")
        payload = str(params.get("payload") or "")
        if not 1 <= len(title) <= MAX_INVOICE_TITLE_LENGTH:
            raise _bad_request("INVOICE_TITLE_INVALID" if title else "title is empty")
        if not 1 <= len(description) <= MAX_INVOICE_DESCRIPTION_LENGTH:
            raise _bad_request("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode()) <= MAX_INVOICE_PAYLOAD_BYTES:
            raise _bad_request("INVOICE_PAYLOAD_INVALID" if payload else "payload is empty")
        currency = str(params.get("currency") or "")
        if currency != STARS_CURRENCY:
            # Other currencies need a payment provider, which the fake has none of.
            raise _bad_request("PAYMENT_PROVIDER_INVALID" if currency else "currency is empty")
        if params.get("provider_token"):
            raise _bad_request("PAYMENT_PROVIDER_INVALID: Stars invoices take no provider token")
        prices = _object_param(params, "prices")
        if not isinstance(prices, list) or len(prices) != 1:
            raise _bad_request("STARS_INVOICE_INVALID: exactly one price is allowed in Stars")
        price = prices[0]
        amount = price.get("amount") if isinstance(price, dict) else None
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1 or not str(
            price.get("label") or ""
        ):
            raise _bad_request("STARS_INVOICE_INVALID: the price needs a label and an amount")
        content: JSONDict = {
            "invoice": {
                "title": title,
                "description": description,
                "start_parameter": str(params.get("start_parameter") or ""),
                "currency": currency,
                "total_amount": amount,
            }
        }
        content.update(self._markup(params, chat))
        message = self._new_message(chat, self.bot_user, content, self._reply_for(chat, params))
        self._invoices[(int(chat["id"]), int(message["message_id"]))] = {
            "currency": currency, "total_amount": amount, "payload": payload,
        }
        return message

    async def _answer_pre_checkout_query(self, call: ApiCall) -> bool:
        params = call.params
        query_id = str(_required(params, "pre_checkout_query_id"))
        pending = self._pre_checkouts.get(query_id)
        if pending is None or pending.answer is not None:
            raise _bad_request("QUERY_ID_INVALID")
        if time.monotonic() - pending.pushed_at > self.pre_checkout_timeout:
            raise _bad_request(QUERY_TOO_OLD)
        ok = params.get("ok")
        if not isinstance(ok, bool):
            raise _bad_request("ok must be a boolean")
        error_message = str(params.get("error_message") or "")
        if not ok and not error_message.strip():
            raise _bad_request("ERROR_MESSAGE_EMPTY")
        pending.answer = {"ok": ok, "error_message": error_message or None}
        return True

    async def _refund_star_payment(self, call: ApiCall) -> bool:
        params = call.params
        user_id = _int_param(params, "user_id")
        charge_id = str(_required(params, "telegram_payment_charge_id"))
        charge = self._star_charges.get(charge_id)
        if charge is None or charge.user_id != user_id:
            raise _bad_request("CHARGE_ID_INVALID")
        if charge.refunded:
            raise _bad_request("CHARGE_ALREADY_REFUNDED")
        charge.refunded = True
        return True

    async def _get_file(self, call: ApiCall) -> JSONDict:
        file_id = str(_required(call.params, "file_id"))
        stored = self._files.get(file_id)
        if stored is None:
            raise _bad_request("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_SIZE:
            raise _bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    def _editable(self, params: dict[str, Any]) -> JSONDict:
        if params.get("inline_message_id"):
            raise _bad_request("inline messages are not supported by the fake")
        chat = self._target_chat(params)
        message_id = _int_param(params, "message_id")
        message = self._current(int(chat["id"]), message_id)
        if message is None:
            raise _bad_request("message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise _bad_request("message can't be edited")
        return message

    async def _edit_message_text(self, call: ApiCall) -> JSONDict:
        params = call.params
        message = self._editable(params)
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        text = params.get("text")
        if text is None or str(text).strip() == "":
            raise _bad_request("message text is empty")
        formatted = format_text(str(text), params.get("parse_mode"), params.get("entities"))
        if utf16_len(formatted.text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        changes: JSONDict = {"text": formatted.text}
        if formatted.entities:
            changes["entities"] = formatted.entities
        base = {k: v for k, v in message.items() if k not in ("text", "entities")}
        return self._store_edit_from(message, base, changes, params)

    def _store_edit_from(
        self, original: JSONDict, base: JSONDict, changes: JSONDict, params: dict[str, Any]
    ) -> JSONDict:
        """Apply `changes` to `base` (the original minus replaced fields); refuse no-op edits."""
        edited = {k: v for k, v in base.items() if k not in ("reply_markup", "edit_date")}
        edited.update(changes)
        edited.update(self._markup(params, original["chat"]))
        if edited == {k: v for k, v in original.items() if k != "edit_date"}:
            raise _bad_request(NOT_MODIFIED)
        edited["edit_date"] = int(time.time())
        return self._store_message(edited)

    async def _edit_message_caption(self, call: ApiCall) -> JSONDict:
        params = call.params
        message = self._editable(params)
        if not any(key in message for key in ("photo", "document", "video", "animation")):
            raise _bad_request("there is no caption in the message to edit")
        base = {k: v for k, v in message.items() if k not in ("caption", "caption_entities")}
        return self._store_edit_from(message, base, self._caption(params), params)

    async def _edit_message_reply_markup(self, call: ApiCall) -> JSONDict:
        message = self._editable(call.params)
        return self._store_edit_from(message, message, {}, call.params)

    async def _edit_message_media(self, call: ApiCall) -> JSONDict:
        params = call.params
        message = self._editable(params)
        if not any(key in message for key in ("photo", "document", "video", "animation")):
            raise _bad_request("there is no media in the message to edit")
        media = _object_param(params, "media")
        if not isinstance(media, dict) or media.get("type") not in ("photo", "document"):
            raise _bad_request("can't parse InputMedia: media type is not photo or document")
        incoming = self._input_file(media, call.files, "media")
        changes: JSONDict = self._caption(media)
        if media["type"] == "photo":
            changes["photo"] = await self._photo_content(incoming)
        else:
            changes["document"] = self._document_content(incoming)
        replaced = ("photo", "document", "video", "animation", "caption", "caption_entities")
        base = {k: v for k, v in message.items() if k not in replaced}
        return self._store_edit_from(message, base, changes, params)

    async def _set_profile_text(self, call: ApiCall) -> bool:
        method = call.method.lower()
        key = (_PROFILE_FIELDS[method], str(call.params.get("language_code") or ""))
        value = str(call.params.get(key[0]) or "")
        if value:
            self._profile_texts[key] = value
        else:
            self._profile_texts.pop(key, None)
        return True

    async def _get_profile_text(self, call: ApiCall) -> JSONDict:
        field_name = _PROFILE_FIELDS[call.method.lower()]
        language = str(call.params.get("language_code") or "")
        return {field_name: self._profile_texts.get((field_name, language), "")}

    async def _delete_message(self, call: ApiCall) -> bool:
        chat = self._target_chat(call.params)
        message_id = _int_param(call.params, "message_id")
        if self._current(int(chat["id"]), message_id) is None:
            raise _bad_request("message to delete not found")
        self._deleted.add((int(chat["id"]), message_id))
        return True

    async def _copy_message(self, call: ApiCall) -> JSONDict:
        params = call.params
        chat = self._target_chat(params)
        source_chat = self._target_chat(params, "from_chat_id")
        source = self._current(int(source_chat["id"]), _int_param(params, "message_id"))
        if source is None:
            raise _bad_request("message to copy not found")
        copied_keys = ("text", "entities", "photo", "document", "caption", "caption_entities")
        content = {key: source[key] for key in copied_keys if key in source}
        if "caption" in params:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._caption(params))
        content.update(self._markup(params, chat))
        reply_to = self._reply_for(chat, params)
        message = self._new_message(chat, self.bot_user, content, reply_to)
        return {"message_id": message["message_id"]}
