"""Bad-input corpus: hostile or broken files, prompts and options, end to end through the bot.

Every input is generated here (nothing binary is committed). Each case checks the user's outcome
(a clear message, or the documented handling of an odd but valid input), the quota, the DashScope
side (no request when the input is invalid) and that the bot still answers someone else.
Cases already covered in tests/test_bot_e2e.py (no prompt, n=9, /upscale 7, ratio=16:0, an
unknown option, an 801-character prompt, a PDF, a truncated JPEG, an empty file, a file declared
over 20 MB, a command for another bot) are not repeated; docs/reliability.md lists both.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from PIL import Image

from bot.commands import parse_command
from bot.errors import CommandParseError
from bot.texts import CATALOGUE, Lang, render_error, text
from tests.harness import Harness, make_image, make_mask, replied_to

pytestmark = pytest.mark.slow

ALICE = 1
OTHER = 77


# --- generators ----------------------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload)) + kind + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png_header_bomb(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def truncated(data: bytes) -> bytes:
    """The first half of a file, as an interrupted upload leaves it."""
    return data[: len(data) // 2]


def corrupt_png() -> bytes:
    """A PNG whose image data was overwritten (its CRC no longer matches)."""
    data = bytearray(make_image(fmt="PNG"))
    start = data.index(b"IDAT") + 4
    for i in range(start + 10, start + 400):
        data[i] ^= 0x5A
    return bytes(data)


def corrupt_jpeg() -> bytes:
    """A JPEG start-of-image marker followed by noise: no frame header a decoder can use."""
    noise = bytes((i * 7919 + 13) % 251 for i in range(4000))
    return b"\xff\xd8\xff\xe0" + noise


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (640, 480), color) for color in ("red", "green", "blue")]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def cmyk_jpeg() -> bytes:
    return _encode(Image.open(io.BytesIO(make_image(640, 480))).convert("CMYK"), "JPEG")


def png_16_bit() -> bytes:
    image = Image.new("I;16", (640, 480))
    image.putdata([(x * 100) % 65536 for x in range(640 * 480)])
    return _encode(image, "PNG")


def exif_rotated_jpeg() -> bytes:
    """A 800x600 stored picture whose EXIF says "rotate 90 degrees" (orientation 6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(Image.open(io.BytesIO(make_image(800, 600))), "JPEG", exif=exif.tobytes())


def transparent_mask(width: int, height: int, *, strokes: bool) -> bytes:
    """A transparent sheet, with opaque (black) strokes where the edit goes when ``strokes``."""
    sheet = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if strokes:
        sheet.paste((0, 0, 0, 255), (width // 4, height // 4, width // 2, height // 2))
    return _encode(sheet, "PNG")


def black_mask(width: int, height: int) -> bytes:
    return _encode(Image.new("L", (width, height), 0), "PNG")


def request_body(harness: Harness, endpoint: str) -> dict[str, Any]:
    """The JSON body of the first request the emulator received at ``endpoint``."""
    body = harness.emulator.requests_to(endpoint)[0].body
    assert isinstance(body, dict)
    return cast(dict[str, Any], body)


# --- checks --------------------------------------------------------------------------------------


async def quota(harness: Harness, user_id: int = ALICE) -> tuple[int, int]:
    status = await harness.services.store.quota_status(user_id)
    return status.used, status.reserved


async def assert_alive(harness: Harness) -> None:
    """Another user's /quota is still answered."""
    tg = harness.telegram
    other = harness.user(OTHER, "Olga")
    probe = tg.send_text(other, tg.private_chat(other), "/quota")
    answer = await harness.reply_to(probe)
    assert "left" in answer.params["text"]


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def fixed_part(key: str) -> str:
    """The longest literal run of the English catalogue text ``key`` (placeholders removed)."""
    return max(re.split(r"\{[^}]*\}", CATALOGUE[key].en), key=len).strip()


# --- files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadFile:
    name: str
    data: Callable[[], bytes]
    mime: str
    key: str  # the catalogue text the user gets


BAD_FILES = [
    BadFile("notes.txt", lambda: b"hello, this is text\n" * 10, "text/plain", "image_not_image"),
    BadFile(
        "drawing.svg",
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
        "image/svg+xml",
        "image_not_image",
    ),
    BadFile("half.png", lambda: truncated(make_image(fmt="PNG")), "image/png", "image_corrupt"),
    BadFile("half.webp", lambda: truncated(make_image(fmt="WEBP")), "image/webp", "image_corrupt"),
    BadFile("noise.jpg", corrupt_jpeg, "image/jpeg", "image_corrupt"),
    BadFile("crc.png", corrupt_png, "image/png", "image_corrupt"),
    BadFile("header.gif", lambda: b"GIF89a", "image/gif", "image_corrupt"),
    BadFile("bomb.png", lambda: png_header_bomb(30000, 30000), "image/png",
            "image_too_many_pixels"),
    BadFile("big.png", lambda: png_header_bomb(9000, 8000), "image/png", "image_too_many_pixels"),
    BadFile("dot.png", lambda: make_image(1, 1, fmt="PNG"), "image/png", "image_too_small"),
    BadFile("strip.png", lambda: make_image(20000, 40, fmt="PNG"), "image/png",
            "image_aspect_extreme"),
]


@pytest.mark.parametrize("bad", BAD_FILES, ids=[b.name for b in BAD_FILES])
async def test_bad_file_is_explained_and_costs_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture, bad: BadFile
) -> None:
    tg = harness.telegram
    alice = harness.user(ALICE)
    request = tg.send_document(
        alice, tg.private_chat(alice), bad.data(), file_name=bad.name, mime_type=bad.mime,
        caption="/colorize",
    )
    answer = await harness.reply_to(request)
    assert fixed_part(bad.key) in answer.params["text"], answer.params["text"]
    assert not harness.emulator.requests
    assert await quota(harness) == (0, 0)
    await assert_alive(harness)
    no_errors_logged(caplog)


async def test_downloaded_file_over_20_mb_is_refused_even_if_declared_small(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The size Telegram declares may be missing or wrong: the download itself is bounded too."""
    tg = harness.telegram
    alice = harness.user(ALICE)
    data = make_image(fmt="PNG") + b"\x00" * (21 * 1024 * 1024)
    request = tg.send_document(
        alice, tg.private_chat(alice), data, file_name="padded.png", mime_type="image/png",
        caption="/colorize", file_size=1000,
    )
    answer = await harness.reply_to(request, timeout=20)
    assert "20 MB" in answer.params["text"]
    assert not harness.emulator.requests
    assert await quota(harness) == (0, 0)
    await assert_alive(harness)
    no_errors_logged(caplog)


# --- odd but valid pictures: processed, charged once -----------------------------------------


@dataclass(frozen=True)
class OddFile:
    name: str
    data: Callable[[], bytes]
    mime: str
    size: tuple[int, int]  # what DashScope must receive (oriented, wanx's 512-px short side)


ODD_FILES = [
    OddFile("anim.gif", lambda: animated("GIF"), "image/gif", (683, 512)),
    OddFile("anim.webp", lambda: animated("WEBP"), "image/webp", (683, 512)),
    OddFile("cmyk.jpg", cmyk_jpeg, "image/jpeg", (683, 512)),
    OddFile("deep.png", png_16_bit, "image/png", (683, 512)),
    OddFile("rotated.jpg", exif_rotated_jpeg, "image/jpeg", (600, 800)),
]


@pytest.mark.parametrize("odd", ODD_FILES, ids=[o.name for o in ODD_FILES])
async def test_odd_but_valid_picture_is_normalised_and_delivered(
    harness: Harness, caplog: pytest.LogCaptureFixture, odd: OddFile
) -> None:
    """Animated: first frame; CMYK and 16-bit: to 8-bit RGB; EXIF orientation applied."""
    tg = harness.telegram
    alice = harness.user(ALICE)
    request = tg.send_document(
        alice, tg.private_chat(alice), odd.data(), file_name=odd.name, mime_type=odd.mime,
        caption="/colorize",
    )
    await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    body = request_body(harness, "submit")
    uri: str = body["input"]["base_image_url"]
    sent = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert sent.mode in ("RGB", "RGBA")
    assert sent.size == odd.size
    assert await quota(harness) == (1, 0)
    no_errors_logged(caplog)


# --- prompts and options ---------------------------------------------------------------------

BAD_CAPTIONS = [
    "/edit " + "x" * 5000,
    "/localstyle ice " + "a" * 800,
    "/edit x -- " + "b" * 501,
    "/style x strength=1.5",
    "/style x strength=abc",
    "/colorize seed=-1",
    "/colorize seed=2147483648",
    "/colorize n=0",
    "/colorize n=two",
    "/colorize n=1 n=2",
    "/upscale 0",
    "/upscale 2.5",
    "/expand 2.5",
    "/expand 0.9",
    "/expand top=3",
    "/expand ratio=abc",
    "/expand 1.5 ratio=16:9",
    "/sketch a sketch=maybe",
    '/edit x neg="never closed',
    "/edit x n=2",
    "/edit x seed=5",
    "/cartoon",
    "/instruct",
]


@pytest.mark.parametrize("caption", BAD_CAPTIONS, ids=lambda c: c[:28])
async def test_bad_option_or_prompt_is_explained_before_any_download(
    harness: Harness, caplog: pytest.LogCaptureFixture, caption: str
) -> None:
    with pytest.raises(CommandParseError) as parse_error:
        parse_command(caption, harness.services.bot_username)
    tg = harness.telegram
    alice = harness.user(ALICE)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), caption)
    answer = await harness.reply_to(request)
    assert answer.params["text"] == render_error(parse_error.value, Lang.EN)
    assert "For example" in answer.params["text"]
    assert not tg.calls_to("getFile")
    assert not harness.emulator.requests
    assert await quota(harness) == (0, 0)
    await assert_alive(harness)
    no_errors_logged(caplog)


@pytest.mark.parametrize(
    ("prompt", "sent"),
    [
        ("make it 🌅🔥 like a sunset 👍🏽", "make it 🌅🔥 like a sunset 👍🏽"),
        ("اجعل السماء حمراء", "اجعل السماء حمراء"),
        ("\u202eevil\u202c turn the sky red", "\u202eevil\u202c turn the sky red"),
        ("make\x00 it\x07 red\x1b[0m", "make it red[0m"),
    ],
    ids=["emoji", "rtl", "bidi-override", "control"],
)
async def test_unusual_prompt_text_reaches_dashscope_intact(
    harness: Harness, caplog: pytest.LogCaptureFixture, prompt: str, sent: str
) -> None:
    """Emoji, RTL and bidi marks are kept as typed; C0 control characters are dropped."""
    tg = harness.telegram
    alice = harness.user(ALICE)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), f"/edit {prompt}")
    await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    body = request_body(harness, "qwen")
    assert {"text": sent} in body["input"]["messages"][0]["content"]
    assert await quota(harness) == (1, 0)
    no_errors_logged(caplog)


# --- updates the bot must not act on -------------------------------------------------------------


async def test_edited_message_does_not_start_a_job(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Documented handling: edits are ignored (the original was answered, or was not a command)."""
    tg = harness.telegram
    alice = harness.user(ALICE)
    group = tg.group_chat(-100700)
    photo = tg.send_photo(alice, group, make_image())
    note = tg.send_text(alice, group, "nice one", reply_to=photo)
    tg.edit_text(alice, group, note, "/upscale@BailianTestBot 2")
    await assert_alive(harness)
    assert not harness.emulator.requests
    assert not [c for c in tg.calls if replied_to(c) == note["message_id"]]
    assert await quota(harness) == (0, 0)
    no_errors_logged(caplog)


async def test_channel_posts_are_ignored(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    tg = harness.telegram
    channel = tg.channel_chat(-100800, "News")
    tg.channel_post(channel, "/edit make it red")
    tg.channel_post(channel, "/quota")
    tg.channel_post(channel, "/setquota 1 100")
    await assert_alive(harness)
    assert not harness.emulator.requests
    assert not [c for c in tg.calls if str(c.params.get("chat_id")) == str(channel["id"])]
    no_errors_logged(caplog)


async def test_unknown_and_foreign_commands(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Private: an unknown command is answered; group: commands for other bots are silent."""
    tg = harness.telegram
    alice = harness.user(ALICE)
    unknown = tg.send_text(alice, tg.private_chat(alice), "/paint something")
    answer = await harness.reply_to(unknown)
    assert "paint" in answer.params["text"]
    group = tg.group_chat(-100701)
    tg.send_text(alice, group, "/quota@OtherBot")
    await assert_alive(harness)
    assert not [c for c in tg.calls if str(c.params.get("chat_id")) == str(group["id"])]
    assert not harness.emulator.requests
    no_errors_logged(caplog)


# --- masks ---------------------------------------------------------------------------------------


async def _ask_erase(harness: Harness) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    tg = harness.telegram
    alice = harness.user(ALICE)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(640, 480), "/erase")
    ask = await harness.reply_to(request)
    assert "mask" in ask.params["text"].lower()
    return alice, chat, request


@pytest.mark.parametrize(
    ("mask", "key"),
    [
        (lambda: make_mask(480, 640), "mask_aspect_mismatch"),  # turned 90 degrees
        (lambda: make_mask(1000, 480), "mask_aspect_mismatch"),
        (lambda: black_mask(640, 480), "mask_empty"),
        (lambda: transparent_mask(640, 480, strokes=False), "mask_empty"),
        (lambda: truncated(make_image(fmt="PNG")), "image_corrupt"),
        (lambda: make_mask(16, 12), "image_too_small"),
    ],
    ids=["rotated", "wrong-shape", "all-black", "all-transparent", "corrupt", "tiny"],
)
async def test_bad_mask_is_explained_and_the_wait_stays_open(
    harness: Harness, caplog: pytest.LogCaptureFixture, mask: Callable[[], bytes], key: str
) -> None:
    tg = harness.telegram
    alice, chat, request = await _ask_erase(harness)
    bad = tg.send_document(alice, chat, mask(), file_name="mask.png", mime_type="image/png")
    answer = await harness.reply_to(bad)
    assert fixed_part(key) in answer.params["text"], answer.params["text"]
    assert text("mask_retry", Lang.EN) in answer.params["text"]
    assert not harness.emulator.requests
    assert await quota(harness) == (0, 0)
    # The wait is still open: a good mask now runs the job.
    tg.send_photo(alice, chat, make_mask(640, 480))
    await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    assert len(harness.emulator.requests_to("submit")) == 1
    assert await quota(harness) == (1, 0)
    no_errors_logged(caplog)


async def test_transparent_mask_with_strokes_is_read_by_its_alpha(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    tg = harness.telegram
    alice, chat, request = await _ask_erase(harness)
    tg.send_document(
        alice, chat, transparent_mask(640, 480, strokes=True), file_name="m.png",
        mime_type="image/png",
    )
    await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    body = request_body(harness, "submit")
    uri: str = body["input"]["mask_image_url"]
    sent = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("L")
    assert sent.getpixel((200, 150)) == 255  # inside the opaque stroke: edit
    assert sent.getpixel((10, 10)) == 0  # transparent: keep
    assert await quota(harness) == (1, 0)
    no_errors_logged(caplog)
