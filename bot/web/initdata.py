"""Checking ``Telegram.WebApp.initData`` as Telegram's Web App docs say.

The client hands the page a query string (``query_id``, ``user`` as JSON, ``auth_date``,
``hash``, ...). ``hash`` is the hex HMAC-SHA256 of the data-check-string (every other field,
``key=value``, sorted by key, joined by ``\\n``) under a secret key that is itself
HMAC-SHA256("WebAppData", bot token). Anyone without the token cannot make one, so a valid
hash proves Telegram built the data for this bot; ``auth_date`` bounds how long it is good.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from bot.errors import InitDataError, InitDataExpiredError

# The docs' constant: the key of the HMAC that turns the bot token into the secret key.
WEB_APP_DATA = b"WebAppData"
# Clocks differ: an auth_date this far in the future is still believed.
CLOCK_SKEW = timedelta(minutes=5)
# Telegram's initData is a few hundred bytes; anything far longer is not from Telegram.
MAX_INIT_DATA_LENGTH = 8192


@dataclass(frozen=True)
class WebAppUser:
    """The person who opened the Mini App, as Telegram vouches for them."""

    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = None


def secret_key(bot_token: str) -> bytes:
    return hmac.new(WEB_APP_DATA, bot_token.encode(), hashlib.sha256).digest()


def data_check_string(fields: dict[str, str]) -> str:
    """Every field but ``hash``, ``key=value``, sorted by key, one per line."""
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def sign_fields(fields: dict[str, str], bot_token: str) -> str:
    """The ``hash`` Telegram puts beside ``fields`` (tests sign their initData with it)."""
    return hmac.new(
        secret_key(bot_token), data_check_string(fields).encode(), hashlib.sha256
    ).hexdigest()


def verify_init_data(
    init_data: str, bot_token: str, *, max_age: timedelta, now: datetime
) -> WebAppUser:
    """The user ``init_data`` was signed for; ``InitDataError`` when it was not signed with
    ``bot_token``, lacks a field, or is malformed, ``InitDataExpiredError`` when ``auth_date``
    is older than ``max_age`` (``now`` must be timezone-aware)."""
    if not init_data or len(init_data) > MAX_INIT_DATA_LENGTH:
        raise InitDataError("initData is empty or too long")
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise InitDataError("initData is not a query string") from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataError("initData repeats a field")
    received = fields.get("hash", "")
    if not received:
        raise InitDataError("initData has no hash")
    expected = sign_fields(fields, bot_token)
    # Constant time: the comparison must not tell a forger how many characters were right.
    if not hmac.compare_digest(expected.encode(), received.lower().encode()):
        raise InitDataError("initData hash does not match")
    # Signed by Telegram from here on: what is missing or odd is a client bug, still refused.
    try:
        auth_date = datetime.fromtimestamp(int(fields["auth_date"]), tz=now.tzinfo)
    except (KeyError, ValueError, OverflowError, OSError) as exc:
        raise InitDataError("initData has no usable auth_date") from exc
    if auth_date > now + CLOCK_SKEW:
        raise InitDataError("initData auth_date is in the future")
    if now - auth_date > max_age:
        raise InitDataExpiredError(f"initData auth_date is {now - auth_date} old")
    return _user(fields.get("user"))


def _user(raw: str | None) -> WebAppUser:
    if not raw:
        raise InitDataError("initData has no user")
    try:
        user = json.loads(raw)
    except ValueError as exc:
        raise InitDataError("initData user is not JSON") from exc
    if not isinstance(user, dict):
        raise InitDataError("initData user is not an object")
    user_id = user.get("id")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise InitDataError("initData user has no id")
    username, language = user.get("username"), user.get("language_code")
    return WebAppUser(
        id=user_id,
        first_name=str(user.get("first_name") or ""),
        username=username if isinstance(username, str) else None,
        language_code=language if isinstance(language, str) else None,
    )
