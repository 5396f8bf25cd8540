"""Results from DashScope: too big for a photo (a preview and the document), or broken.

The unit tests read crafted results with ``bot.images.check_result``; the end-to-end ones run the
real Application against the fake Bot API and the emulator, which serves the crafted bytes as a
task's results (``DashScopeEmulator.script_next_results``), and judge by what crossed the wires.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from functools import cache

import pytest
from PIL import Image

from bot import images
from bot.bailian.models import Model
from bot.errors import ImageError
from bot.images import (
    MAX_INPUT_PIXELS,
    RESULT_PREVIEW_MAX_SIDE,
    TELEGRAM_PHOTO_MAX_BYTES,
    TELEGRAM_PHOTO_MAX_DIMENSIONS_SUM,
    check_result,
    image_info,
    prepare_image,
)
from bot.offline.bot_api import ApiCall
from bot.ports import OutgoingImage
from tests.harness import Harness, make_image

NOT_CHARGED = "Nothing was charged"
BROKEN = "returned a broken image"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def solid_png(width: int, height: int, *, alpha: bool = False) -> bytes:
    """A PNG of one colour, written row by row: cheap at any size, and tiny once compressed."""
    pixel = b"\x1e\x5a\xa0" + (b"\x80" if alpha else b"")
    row = b"\x00" + pixel * width  # filter byte 0, then the pixels
    compressor = zlib.compressobj(1)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


@cache
def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 20)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def fits_a_photo(data: bytes) -> bool:
    width, height = size_of(data)
    return (
        len(data) <= TELEGRAM_PHOTO_MAX_BYTES
        and width + height <= TELEGRAM_PHOTO_MAX_DIMENSIONS_SUM
        and max(width, height) <= 20 * min(width, height)
    )


# A result too big for a photo (6000 + 4400 > 10000) but cheap to read in a unit test.
BIG = (6000, 4400)


# --- reading a result --------------------------------------------------------------------------


def test_a_result_that_fits_a_photo_needs_no_preview() -> None:
    for raw in (solid_png(1200, 800), jpeg(1200, 800)):
        result = check_result(raw)
        assert result.fits_photo
        assert result.preview is None
        assert (result.info.width, result.info.height) == (1200, 800)


@pytest.mark.parametrize("make", [solid_png, jpeg], ids=["png", "jpeg"])
def test_a_result_too_big_for_a_photo_gets_a_preview_that_fits_one(
    make: Callable[[int, int], bytes],
) -> None:
    raw = make(*BIG)
    result = check_result(raw)
    assert not result.fits_photo
    assert result.info.nbytes == len(raw)
    assert result.preview is not None and result.preview.mime == "image/jpeg"
    assert fits_a_photo(result.preview.data)
    assert size_of(result.preview.data) == (RESULT_PREVIEW_MAX_SIDE, 1877)  # the shape kept


def test_a_transparent_preview_is_flattened_into_a_jpeg() -> None:
    result = check_result(solid_png(*BIG, alpha=True))
    assert result.preview is not None
    with Image.open(io.BytesIO(result.preview.data)) as preview:
        assert (preview.format, preview.mode) == ("JPEG", "RGB")


def test_a_result_no_photo_can_show_goes_without_a_preview() -> None:
    result = check_result(solid_png(10_500, 500))  # 21:1, past Telegram's 20:1
    assert not result.fits_photo and result.preview is None


def test_the_input_limits_do_not_apply_to_results_and_inputs_keep_them() -> None:
    raw = solid_png(12_000, 8_000)  # 96 MP: past MAX_INPUT_PIXELS and Pillow's bomb warning
    assert MAX_INPUT_PIXELS < 12_000 * 8_000
    cap = Image.MAX_IMAGE_PIXELS
    result = check_result(raw)
    assert (result.info.width, result.info.height) == (12_000, 8_000)
    assert result.preview is not None and fits_a_photo(result.preview.data)
    assert cap == Image.MAX_IMAGE_PIXELS  # lifted for the result only
    for read in (image_info, lambda data: prepare_image(data, Model.WANX_IMAGE_EDIT)):
        with pytest.raises(ImageError) as caught:
            read(raw)
        assert caught.value.key == "image_too_many_pixels"


def test_past_the_decode_cap_a_png_is_checked_without_a_preview(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(images, "MAX_RESULT_DECODE_PIXELS", 1_000_000)
    raw = solid_png(*BIG)
    result = check_result(raw)
    assert not result.fits_photo and result.preview is None
    with pytest.raises(ImageError) as caught:
        check_result(raw[: len(raw) // 2])
    assert caught.value.key == "image_corrupt"


BROKEN_RESULTS = {
    "html": (b"<html><body>502 Bad Gateway</body></html>", "image_not_image"),
    "empty": (b"", "image_not_image"),
    "png-header-only": (solid_png(1200, 800)[:40], "image_corrupt"),
    "png-half": (solid_png(1200, 800)[: len(solid_png(1200, 800)) // 2], "image_corrupt"),
    "png-no-end": (solid_png(1200, 800)[:-20], "image_corrupt"),
    "big-png-half": (solid_png(*BIG)[: len(solid_png(*BIG)) // 2], "image_corrupt"),
    "jpeg-half": (jpeg(1200, 800)[: len(jpeg(1200, 800)) // 2], "image_corrupt"),
    "big-jpeg-half": (jpeg(*BIG)[: len(jpeg(*BIG)) // 2], "image_corrupt"),
}


@pytest.mark.parametrize(("raw", "key"), BROKEN_RESULTS.values(), ids=BROKEN_RESULTS.keys())
def test_a_result_that_is_not_an_image_or_cut_short_is_refused(raw: bytes, key: str) -> None:
    with pytest.raises(ImageError) as caught:
        check_result(raw)
    assert caught.value.key == key


def test_what_goes_as_the_photo() -> None:
    fits = OutgoingImage(b"full", "upscale-1-1.png", as_photo=True)
    assert (fits.photo, fits.photo_filename) == (b"full", "upscale-1-1.png")
    big = OutgoingImage(b"full", "upscale-1-1.png", as_photo=False, preview=b"small")
    assert (big.photo, big.photo_filename) == (b"small", "upscale-1-1-preview.jpg")
    assert OutgoingImage(b"full", "x.png", as_photo=False).photo is None


# --- end to end --------------------------------------------------------------------------------


async def quota(harness: Harness, user_id: int) -> tuple[int, int]:
    status = await harness.services.store.quota_status(user_id)
    return status.used, status.reserved


def uploads(harness: Harness, method: str, field: str) -> list[bytes]:
    """Every file the bot uploaded with ``method`` (answered or not)."""
    return [call.files[field].data for call in harness.telegram.calls_to(method)
            if field in call.files]


async def ask(harness: Harness, caption: str) -> dict[str, object]:
    tg = harness.telegram
    alice = harness.user(1)
    return tg.send_photo(alice, tg.private_chat(alice), make_image(), caption)


@pytest.mark.slow
async def test_huge_upscale_result_is_a_document_with_a_preview_photo_charged_once(
    harness: Harness,
) -> None:
    huge = solid_png(12_000, 8_000)
    harness.emulator.script_next_results(huge)
    request = await ask(harness, "/upscale 4")
    photo = await harness.reply_to(request, "sendPhoto", timeout=30)
    document = await harness.reply_to(request, "sendDocument", timeout=30)
    preview = photo.files["photo"].data
    assert fits_a_photo(preview)
    assert max(size_of(preview)) == RESULT_PREVIEW_MAX_SIDE
    assert "Upscale" in photo.params["caption"] and "4 images left" in photo.params["caption"]
    assert "reply_markup" in photo.params  # the buttons are on the preview
    assert document.files["document"].data == huge  # the original, byte for byte
    assert document.files["document"].filename.endswith(".png")
    await harness.settled()
    assert await quota(harness, 1) == (1, 0)
    assert len(uploads(harness, "sendPhoto", "photo")) == 1
    assert len(uploads(harness, "sendDocument", "document")) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "broken",
    [b"<?xml version='1.0'?><Error><Code>InternalError</Code></Error>",
     solid_png(1200, 800)[: len(solid_png(1200, 800)) // 2]],
    ids=["not-an-image", "truncated-png"],
)
async def test_broken_result_is_the_services_failure_refunded_and_never_forwarded(
    harness: Harness, broken: bytes
) -> None:
    harness.emulator.script_next_results(broken)
    request = await ask(harness, "/colorize")
    failure = await harness.reply_to(request, timeout=15)
    while "❌" not in failure.params["text"]:  # the "queued" status line came first
        failure = await harness.reply_to(request, timeout=15)
    assert BROKEN in failure.params["text"] and NOT_CHARGED in failure.params["text"]
    assert "JPEG" not in failure.params["text"]  # not the "send a picture" input error
    await harness.settled()
    assert await quota(harness, 1) == (0, 0)
    job = await harness.services.store.get_job(1)
    assert job.error_code == "BrokenResult"
    assert not harness.telegram.calls_to("sendPhoto")
    assert not harness.telegram.calls_to("sendDocument")
    assert not harness.telegram.calls_to("sendMediaGroup")
    assert all(broken not in call.files[name].data
               for call in harness.telegram.calls for name in call.files)


@pytest.mark.slow
async def test_one_broken_result_of_two_delivers_the_other_and_charges_one(
    harness: Harness,
) -> None:
    broken = solid_png(1200, 800)[:-300]
    harness.emulator.script_next_results(None, broken)
    request = await ask(harness, "/colorize n=2")
    sent: ApiCall = await harness.reply_to(request, "sendPhoto", timeout=15)
    assert "1 of 2" in sent.params["caption"]
    assert sent.files["photo"].data != broken
    await harness.settled()
    assert await quota(harness, 1) == (1, 0)
    assert not harness.telegram.calls_to("sendMediaGroup")
    assert not harness.telegram.calls_to("sendDocument")
