"""Signed, expiring tokens for the Mini App's links: whose /erase wait a page belongs to.

A token is ``version | user_id | chat_id | request_message_id | expires`` packed in binary,
followed by its HMAC-SHA256, all in URL-safe base64 without padding. The HMAC key is derived
from the bot token (``HMAC(bot token, "mask-link")``): only the bot can mint one, and the token
itself never appears in a URL. The token only names a wait; the page still has to prove who
opens it with Telegram's initData.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import datetime

from bot.errors import LinkError, LinkExpiredError

LINK_KEY_PURPOSE = b"mask-link"
_VERSION = 1
_PAYLOAD = struct.Struct(">Bqqqq")  # version, user, chat (negative for groups), message, expires
_MAC_BYTES = hashlib.sha256().digest_size


@dataclass(frozen=True)
class MaskLink:
    """What a Mini App link grants: the drawing for one person's one /erase wait."""

    user_id: int
    chat_id: int
    request_message_id: int
    expires: int  # Unix seconds


def link_key(bot_token: str) -> bytes:
    return hmac.new(bot_token.encode(), LINK_KEY_PURPOSE, hashlib.sha256).digest()


def encode_link(link: MaskLink, key: bytes) -> str:
    payload = _PAYLOAD.pack(
        _VERSION, link.user_id, link.chat_id, link.request_message_id, link.expires
    )
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def decode_link(token: str, key: bytes, *, now: datetime) -> MaskLink:
    """The link ``token`` stands for; ``LinkError`` if forged or malformed,
    ``LinkExpiredError`` once past its expiry."""
    if not token or len(token) > 256:
        raise LinkError("no token, or a token too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise LinkError("token is not base64") from exc
    if len(raw) != _PAYLOAD.size + _MAC_BYTES:
        raise LinkError("token has the wrong length")
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
        raise LinkError("token signature does not match")
    version, user_id, chat_id, message_id, expires = _PAYLOAD.unpack(payload)
    if version != _VERSION:
        raise LinkError(f"token version {version}")
    if now.timestamp() >= expires:
        raise LinkExpiredError("token expired")
    return MaskLink(user_id, chat_id, message_id, expires)
