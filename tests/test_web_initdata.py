"""initData as Telegram signs it is accepted; anything else (forged, stale, tampered, for another
bot) is refused with a typed error. The test signs with its own code, from Telegram's docs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import pytest

from bot.errors import InitDataError, InitDataExpiredError, WebAuthError
from bot.web.initdata import WebAppUser, verify_init_data
from bot.web.links import MaskLink, decode_link, encode_link, link_key
from tests.browser import sign_init_data

TOKEN = "123456:AAE-test-token-for-initdata"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ALICE = {"id": 42, "first_name": "Alice", "username": "alice", "language_code": "zh-hans"}
DAY = timedelta(days=1)


def signed(*, age: timedelta = timedelta(minutes=3), token: str = TOKEN, **fields: str) -> str:
    return sign_init_data(token, ALICE, auth_date=int((NOW - age).timestamp()), **fields)


def verify(init_data: str) -> WebAppUser:
    return verify_init_data(init_data, TOKEN, max_age=DAY, now=NOW)


def replaced(init_data: str, **changes: str) -> str:
    fields = dict(parse_qsl(init_data))
    fields.update(changes)
    return urlencode(fields)


def test_initdata_signed_like_telegram_is_accepted() -> None:
    user = verify(signed(chat_type="private", chat_instance="-40123"))
    assert user == WebAppUser(id=42, first_name="Alice", username="alice",
                              language_code="zh-hans")


def test_unicode_names_and_extra_fields_are_part_of_the_signature() -> None:
    init_data = sign_init_data(TOKEN, {"id": 7, "first_name": "小明 & <b>"},
                               auth_date=int(NOW.timestamp()), start_param="x=1&y")
    assert verify(init_data).first_name == "小明 & <b>"


@pytest.mark.parametrize(
    ("name", "init_data"),
    [
        ("forged hash", replaced(signed(), hash="0" * 64)),
        ("missing hash", urlencode({k: v for k, v in parse_qsl(signed()) if k != "hash"})),
        ("wrong bot token", signed(token="654321:AAE-another-bot")),
        ("tampered user", replaced(signed(), user='{"id":43,"first_name":"Mallory"}')),
        ("tampered auth_date", replaced(signed(age=2 * DAY),
                                        auth_date=str(int(NOW.timestamp())))),
        ("added field", signed() + "&chat_type=group"),
        ("repeated field", signed() + "&user=%7B%22id%22%3A43%7D"),
        ("empty", ""),
        ("not a query string", "hash"),
    ],
)
def test_forged_or_tampered_initdata_is_refused(name: str, init_data: str) -> None:
    with pytest.raises(InitDataError) as refused:
        verify(init_data)
    assert not isinstance(refused.value, InitDataExpiredError), name
    assert refused.value.key == "miniapp_auth_failed"


def test_stale_initdata_is_refused_after_a_day() -> None:
    assert verify(signed(age=DAY - timedelta(seconds=1))).id == 42
    with pytest.raises(InitDataExpiredError):
        verify(signed(age=DAY + timedelta(seconds=1)))


def test_initdata_from_the_future_is_refused() -> None:
    with pytest.raises(InitDataError):
        verify(signed(age=-timedelta(hours=1)))


@pytest.mark.parametrize(
    "user", ['{"first_name":"No id"}', '{"id":"42"}', "[42]", "not json", '{"id":true}'],
)
def test_signed_but_unusable_user_is_refused(user: str) -> None:
    # Signed with the real token: the refusal is about the content, not the signature.
    init_data = sign_init_data(TOKEN, user, auth_date=int(NOW.timestamp()))
    with pytest.raises(InitDataError):
        verify(init_data)


# --- the page links ------------------------------------------------------------------------


def test_a_link_round_trips_and_hides_the_bot_token() -> None:
    key = link_key(TOKEN)
    link = MaskLink(user_id=42, chat_id=-1001234567890, request_message_id=77,
                    expires=int((NOW + timedelta(minutes=10)).timestamp()))
    token = encode_link(link, key)
    assert TOKEN not in token and TOKEN.split(":")[1] not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_link(token, key, now=NOW) == link
    with pytest.raises(WebAuthError):
        decode_link(token, link_key("654321:another-bot"), now=NOW)
    with pytest.raises(WebAuthError):
        decode_link(token, key, now=NOW + timedelta(minutes=10))


def test_a_changed_link_is_refused() -> None:
    key = link_key(TOKEN)
    token = encode_link(MaskLink(42, 42, 77, int(NOW.timestamp()) + 600), key)
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    for bad in (flipped, token[:-2], token + "AA", "", "%%%", "a" * 300):
        with pytest.raises(WebAuthError):
            decode_link(bad, key, now=NOW)
