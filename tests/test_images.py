"""Image preparation on real images generated with Pillow: every output is decoded again."""

from __future__ import annotations

import base64
import functools
import random
import string
import struct
import warnings
import zlib
from collections.abc import Callable
from io import BytesIO

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from bot.bailian.models import Model
from bot.errors import ImageError
from bot.images import (
    LIMITS,
    MAX_ASPECT_RATIO,
    MAX_BYTES,
    MAX_INPUT_PIXELS,
    MIN_INPUT_SIDE,
    ImageInfo,
    PreparedImage,
    SizeLimits,
    expand_scales_for_ratio,
    fits_telegram_photo,
    image_info,
    looks_like_mask,
    looks_like_mask_async,
    prepare_image,
    prepare_image_async,
    prepare_mask,
    prepare_mask_async,
)
from bot.texts import CATALOGUE, Lang, text

WANX = Model.WANX_IMAGE_EDIT
QWEN = Model.QWEN_IMAGE_EDIT
EXIF_ORIENTATION = 0x0112

# --- helpers -------------------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = BytesIO()
    im.save(buffer, fmt, **options)
    return buffer.getvalue()


def picture(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A picture with structure (gradients in different directions per channel)."""
    grad = Image.linear_gradient("L")  # 256x256; NEAREST keeps the huge cases fast
    down = grad.resize(size, Image.Resampling.NEAREST)
    across = grad.transpose(Image.Transpose.ROTATE_90).resize(size, Image.Resampling.NEAREST)
    rgb = Image.merge("RGB", (down, across, Image.new("L", size, 90)))
    return rgb if mode == "RGB" else rgb.convert(mode)


@functools.cache
def jpeg_picture(size: tuple[int, int]) -> bytes:
    """Cached: the huge ones are shared between models."""
    return encode(picture(size), "JPEG", quality=80)


def noise(size: tuple[int, int], mode: str) -> Image.Image:
    nbytes = size[0] * size[1] * len(mode)
    return Image.frombytes(mode, size, random.Random(7).randbytes(nbytes))


def decoded(prepared: PreparedImage) -> Image.Image:
    im = Image.open(BytesIO(prepared.data))
    im.load()
    return im


def assert_fits(prepared: PreparedImage, model: Model) -> Image.Image:
    """Decode the output again and check it against every limit of ``model``."""
    limits = LIMITS[model]
    im = decoded(prepared)
    assert im.size == (prepared.width, prepared.height)
    assert {"image/jpeg": "JPEG", "image/png": "PNG"}[prepared.mime] == im.format
    assert im.mode in ("RGB", "RGBA")
    assert limits.min_side <= min(im.size) and max(im.size) <= limits.max_side
    assert len(prepared.data) <= limits.max_bytes
    return im


def expect_error(key: str, call: object, *args: object) -> ImageError:
    """Assert ``call(*args)`` raises ImageError ``key`` whose params render in both languages."""
    assert callable(call)
    with pytest.raises(ImageError) as caught:
        call(*args)
    error = caught.value
    assert error.key == key, error
    for lang in Lang:
        rendered = text(error.key, lang, **error.params)
        assert "{" not in rendered
    return error


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims ``width`` x ``height`` grey pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


# --- modes and formats ---------------------------------------------------------------------------


def _with_alpha(mode: str) -> Image.Image:
    im = picture((600, 400), "RGBA")
    im.putalpha(Image.linear_gradient("L").resize((600, 400)))
    return im.convert(mode) if mode != "RGBA" else im


def _palette(transparent: bool) -> bytes:
    im = picture((600, 400)).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    if transparent:
        return encode(im, "PNG", transparency=0)
    return encode(im, "PNG")


def _sixteen_bit(mode: str, fmt: str) -> bytes:
    # Two flat halves at 1000 and 3000: a range-scaled 8-bit result is black | white.
    im = Image.new(mode, (600, 400), 1000)
    im.paste(3000, (300, 0, 600, 400))
    return encode(im, fmt)


MODE_CASES = {
    "RGB jpeg": (lambda: encode(picture((600, 400)), "JPEG"), "image/jpeg"),
    "RGBA png": (lambda: encode(_with_alpha("RGBA"), "PNG"), "image/png"),
    "RGBA opaque png": (lambda: encode(picture((600, 400), "RGBA"), "PNG"), "image/jpeg"),
    "L png": (lambda: encode(picture((600, 400), "L"), "PNG"), "image/jpeg"),
    "LA png": (lambda: encode(_with_alpha("LA"), "PNG"), "image/png"),
    "P png": (lambda: _palette(transparent=False), "image/jpeg"),
    "P transparent png": (lambda: _palette(transparent=True), "image/png"),
    "CMYK jpeg": (lambda: encode(picture((600, 400), "CMYK"), "JPEG"), "image/jpeg"),
    "1 png": (lambda: encode(picture((600, 400), "1"), "PNG"), "image/jpeg"),
    "I;16 png": (lambda: _sixteen_bit("I;16", "PNG"), "image/jpeg"),
    "I tiff": (lambda: _sixteen_bit("I", "TIFF"), "image/jpeg"),
    "F tiff": (lambda: _sixteen_bit("F", "TIFF"), "image/jpeg"),
}


@pytest.mark.parametrize("case", list(MODE_CASES))
def test_every_mode_becomes_rgb_jpeg_or_rgba_png(case: str) -> None:
    make, mime = MODE_CASES[case]
    prepared = prepare_image(make(), WANX)
    im = assert_fits(prepared, WANX)
    assert prepared.mime == mime
    assert im.mode == ("RGBA" if mime == "image/png" else "RGB")
    # 600x400 has a short side under 512: scaled up with the aspect kept.
    assert im.size == (768, 512)
    if mime == "image/png":
        alpha = im.getchannel("A").getextrema()
        assert alpha[0] < 255  # transparency survived


@pytest.mark.parametrize("case", ["I;16 png", "I tiff", "F tiff"])
def test_wide_grey_is_scaled_over_the_full_8bit_range(case: str) -> None:
    im = decoded(prepare_image(MODE_CASES[case][0](), WANX)).convert("L")
    assert im.getpixel((100, 256)) < 10  # the 1000 half
    assert im.getpixel((668, 256)) > 245  # the 3000 half


def test_cmyk_colours_come_out_right() -> None:
    red = Image.new("CMYK", (600, 400), (0, 255, 255, 0))
    im = decoded(prepare_image(encode(red, "JPEG"), WANX))
    assert close(im.getpixel((384, 256)), (255, 0, 0), tolerance=40)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
@pytest.mark.parametrize(("model", "expected"), [(WANX, (768, 512)), (QWEN, (600, 400))])
def test_input_formats(fmt: str, model: Model, expected: tuple[int, int]) -> None:
    raw = encode(picture((600, 400)), fmt)
    im = assert_fits(prepare_image(raw, model), model)
    assert im.size == expected


# --- sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (31, 200), (200, 31)])
def test_tiny_images_are_refused_with_the_minimum(size: tuple[int, int]) -> None:
    error = expect_error("image_too_small", prepare_image, encode(picture(size), "PNG"), WANX)
    assert error.params["min_side"] == MIN_INPUT_SIDE


def test_smallest_accepted_image_is_scaled_up() -> None:
    prepared = prepare_image(encode(picture((32, 32)), "PNG"), WANX)
    assert assert_fits(prepared, WANX).size == (512, 512)


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        (WANX, (100, 80), (640, 512)),
        (QWEN, (100, 80), (480, 384)),
        (WANX, (80, 100), (512, 640)),
        (WANX, (9000, 6000), (4096, 2731)),
        (QWEN, (9000, 6000), (3072, 2048)),
        (QWEN, (6000, 9000), (2048, 3072)),
    ],
)
def test_sides_are_brought_within_limits_keeping_the_aspect(
    model: Model, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    im = assert_fits(prepare_image(jpeg_picture(size), model), model)
    assert im.size == expected


def test_extreme_ratio_is_refused() -> None:
    error = expect_error(
        "image_aspect_extreme", prepare_image, encode(picture((20000, 20)), "PNG"), WANX
    )
    assert error.params == {"ratio": "1000.0", "max_ratio": f"{MAX_ASPECT_RATIO:g}"}


@pytest.mark.parametrize(
    ("model", "size", "canvas"),
    [
        (WANX, (5000, 600), (4096, 512)),
        (QWEN, (5000, 600), (3072, 384)),
        (WANX, (600, 5000), (512, 4096)),
        (WANX, (1000, 100), (4096, 512)),  # ratio 10: scaled up, then padded
    ],
)
def test_long_thin_images_are_padded_with_grey(
    model: Model, size: tuple[int, int], canvas: tuple[int, int]
) -> None:
    im = assert_fits(prepare_image(encode(picture(size), "JPEG"), model), model)
    assert im.size == canvas
    # The border runs along the long side, the picture stays centred.
    edge = (canvas[0] // 2, 0) if canvas[0] > canvas[1] else (0, canvas[1] // 2)
    assert close(im.getpixel(edge), (128, 128, 128), tolerance=6)


def test_long_thin_transparent_image_is_padded_transparent() -> None:
    raw = encode(_with_alpha("RGBA").resize((5000, 600)), "PNG")
    prepared = prepare_image(raw, WANX)
    im = assert_fits(prepared, WANX)
    assert prepared.mime == "image/png" and im.size == (4096, 512)
    assert im.getpixel((2048, 0)) == (0, 0, 0, 0)


def test_ratio_just_under_the_cap_is_accepted() -> None:
    size = (int(60 * MAX_ASPECT_RATIO), 60)
    assert_fits(prepare_image(encode(picture(size), "PNG"), QWEN), QWEN)


# --- orientation and pass-through ----------------------------------------------------------------


def test_exif_orientation_is_applied_and_metadata_dropped() -> None:
    stored = picture((600, 400))
    ImageDraw.Draw(stored).rectangle((0, 0, 60, 60), fill=(255, 0, 0))  # stored top-left
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90 clockwise to display"
    raw = encode(stored, "JPEG", exif=exif, quality=95)
    prepared = prepare_image(raw, WANX)
    im = assert_fits(prepared, WANX)
    assert im.size == (512, 768)  # dimensions swapped
    assert close(im.getpixel((490, 20)), (255, 0, 0), tolerance=40)  # now top-right
    assert "exif" not in im.info


def test_fitting_jpeg_without_exif_passes_through_untouched() -> None:
    raw = encode(picture((1024, 768)), "JPEG", quality=90)
    prepared = prepare_image(raw, WANX)
    assert prepared.data == raw
    assert (prepared.mime, prepared.width, prepared.height) == ("image/jpeg", 1024, 768)


def test_fitting_png_with_alpha_passes_through_untouched() -> None:
    raw = encode(_with_alpha("RGBA").resize((800, 600)), "PNG")
    prepared = prepare_image(raw, QWEN)
    assert prepared.data == raw and prepared.mime == "image/png"


def test_jpeg_decoded_at_reduced_scale_is_never_passed_through() -> None:
    # 8192x4096 halves exactly to the target, so the reduced decode already "fits".
    raw = encode(picture((8192, 4096)), "JPEG", quality=70)
    prepared = prepare_image(raw, WANX)
    assert prepared.data != raw
    assert assert_fits(prepared, WANX).size == (4096, 2048)


def test_jpeg_with_exif_is_reencoded_without_it() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCamera"  # Make; orientation absent
    raw = encode(picture((1024, 768)), "JPEG", exif=exif)
    prepared = prepare_image(raw, WANX)
    assert prepared.data != raw
    assert "exif" not in assert_fits(prepared, WANX).info


# --- broken input --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_files_are_corrupt(fmt: str, keep: float) -> None:
    raw = encode(picture((800, 600)), fmt)
    expect_error("image_corrupt", prepare_image, raw[: int(len(raw) * keep)], WANX)


@pytest.mark.parametrize(
    "raw",
    [b"", random.Random(1).randbytes(5000), b"hello, this is text\n" * 50, b"%PDF-1.4\n"],
    ids=["empty", "random", "text", "pdf"],
)
def test_non_images_are_refused(raw: bytes) -> None:
    expect_error("image_not_image", prepare_image, raw, WANX)
    expect_error("image_not_image", image_info, raw)


def test_unsupported_format_is_not_an_image() -> None:
    expect_error("image_not_image", prepare_image, encode(picture((600, 400)), "PPM"), WANX)


@pytest.mark.parametrize(
    "size",
    [(20_000, 20_000), (10_000, 10_000), (9_000, 8_000)],
    ids=["pillow-error", "pillow-warning", "our-cap"],
)
def test_decompression_bombs_are_refused_before_decoding(size: tuple[int, int]) -> None:
    bomb = png_declaring(*size)
    assert len(bomb) < 200
    error = expect_error("image_too_many_pixels", prepare_image, bomb, WANX)
    assert error.params["max_megapixels"] == MAX_INPUT_PIXELS // 1_000_000
    # Under the default filters too: refused, and Pillow's warning is not let out either.
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        expect_error("image_too_many_pixels", prepare_image, bomb, WANX)
    assert not seen


# --- animation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_use_the_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (600, 400), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    raw = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(BytesIO(raw)).n_frames == 3
    im = assert_fits(prepare_image(raw, WANX), WANX)
    assert close(im.convert("RGB").getpixel((384, 256)), (255, 0, 0))


# --- byte limit ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_noise_too_big_for_jpeg_limit_is_recompressed() -> None:
    raw = encode(noise((4000, 4000), "RGB"), "TIFF")  # uncompressed: quick to write
    assert len(raw) > MAX_BYTES
    prepared = prepare_image(raw, WANX)
    assert prepared.mime == "image/jpeg"
    assert_fits(prepared, WANX)


@pytest.mark.slow
def test_noise_with_alpha_too_big_for_png_is_downscaled() -> None:
    raw = encode(noise((2000, 2000), "RGBA"), "TIFF")
    assert len(raw) > MAX_BYTES
    prepared = prepare_image(raw, WANX)
    im = assert_fits(prepared, WANX)
    assert prepared.mime == "image/png" and im.width == im.height < 2000


def test_jpeg_over_a_tight_limit_is_downscaled_but_not_below_the_minimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(LIMITS, WANX, SizeLimits(min_side=512, max_side=4096, max_bytes=400_000))
    prepared = prepare_image(encode(noise((2000, 1500), "RGB"), "BMP"), WANX)
    im = assert_fits(prepared, WANX)
    assert 512 <= im.height < 1500 and im.width / im.height == pytest.approx(4 / 3, rel=0.01)


def test_image_that_cannot_get_under_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LIMITS, WANX, SizeLimits(min_side=512, max_side=4096, max_bytes=2048))
    error = expect_error(
        "image_too_large", prepare_image, encode(noise((600, 600), "RGB"), "BMP"), WANX
    )
    assert set(error.params) == {"max_mb"}


# --- masks ---------------------------------------------------------------------------------------


def assert_binary_mask(prepared: PreparedImage, size: tuple[int, int]) -> Image.Image:
    im = decoded(prepared)
    assert prepared.mime == "image/png" and im.format == "PNG"
    assert im.size == size == (prepared.width, prepared.height)
    r, g, b = im.convert("RGB").split()
    assert r.tobytes() == g.tobytes() == b.tobytes()
    assert {value for _, value in r.getcolors()} <= {0, 255}
    return r


def _ellipse_mask(size: tuple[int, int], mode: str = "L") -> Image.Image:
    im = Image.new(mode, size, 0)
    w, h = size
    ImageDraw.Draw(im).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=255)
    return im


@pytest.mark.parametrize("target", [(800, 600), (1024, 768), (400, 300), (4096, 3072)])
def test_jpeg_mask_becomes_pure_black_and_white_at_the_exact_size(
    target: tuple[int, int],
) -> None:
    raw = encode(_ellipse_mask((800, 600)).convert("RGB"), "JPEG", quality=25)
    mask = assert_binary_mask(prepare_mask(raw, target), target)
    assert mask.getpixel((target[0] // 2, target[1] // 2)) == 255
    assert mask.getpixel((2, 2)) == 0


def test_transparent_mask_uses_opaque_strokes_as_the_edit_area() -> None:
    sheet = Image.new("RGBA", (400, 300), (255, 255, 255, 0))  # transparent white: keep
    ImageDraw.Draw(sheet).line((0, 150, 400, 150), fill=(200, 0, 0, 255), width=40)
    mask = assert_binary_mask(prepare_mask(encode(sheet, "PNG"), (800, 600)), (800, 600))
    assert mask.getpixel((400, 300)) == 255
    assert mask.getpixel((400, 50)) == 0


@pytest.mark.parametrize("mode", ["1", "L", "P", "LA", "I;16"])
def test_masks_in_other_modes(mode: str) -> None:
    im = _ellipse_mask((400, 300))
    if mode == "I;16":
        im = im.convert("I").point(lambda v: v * 257).convert("I;16")
    elif mode != "L":
        im = im.convert(mode)
    mask = assert_binary_mask(prepare_mask(encode(im, "PNG"), (512, 384)), (512, 384))
    assert mask.getpixel((256, 192)) == 255 and mask.getpixel((5, 5)) == 0


def test_mask_of_another_shape_is_refused() -> None:
    raw = encode(_ellipse_mask((300, 300)), "PNG")
    error = expect_error("mask_aspect_mismatch", prepare_mask, raw, (1024, 768))
    assert error.params == {"mask_width": 300, "mask_height": 300, "width": 1024, "height": 768}


def test_all_black_mask_is_refused() -> None:
    raw = encode(Image.new("RGB", (400, 300), (3, 3, 3)), "JPEG")
    expect_error("mask_empty", prepare_mask, raw, (400, 300))


@pytest.mark.parametrize(("mode", "white"), [("L", 250), ("I;16", 65535)])
def test_all_white_mask_edits_everything(mode: str, white: int) -> None:
    raw = encode(Image.new(mode, (400, 300), white), "PNG")
    mask = assert_binary_mask(prepare_mask(raw, (800, 600)), (800, 600))
    assert mask.getextrema() == (255, 255)


def test_broken_and_tiny_masks_are_refused() -> None:
    expect_error("image_not_image", prepare_mask, b"nope", (400, 300))
    expect_error(
        "image_too_small", prepare_mask, encode(Image.new("L", (1, 1), 255), "PNG"), (400, 300)
    )
    with pytest.raises(ValueError, match="positive"):
        prepare_mask(encode(Image.new("L", (40, 30), 255), "PNG"), (0, 300))


# --- async wrappers, data URI, info --------------------------------------------------------------


async def test_async_wrappers_give_the_sync_results() -> None:
    raw = encode(picture((100, 80)), "PNG")
    assert await prepare_image_async(raw, QWEN) == prepare_image(raw, QWEN)
    mask = encode(_ellipse_mask((100, 80)), "PNG")
    assert await prepare_mask_async(mask, (480, 384)) == prepare_mask(mask, (480, 384))
    with pytest.raises(ImageError):
        await prepare_image_async(b"", QWEN)


def test_data_uri_round_trip() -> None:
    prepared = prepare_image(encode(picture((600, 400)), "PNG"), WANX)
    uri = prepared.data_uri()
    head, payload = uri.split(",", 1)
    assert head == f"data:{prepared.mime};base64"
    assert base64.b64decode(payload, validate=True) == prepared.data


def test_image_info_reads_the_header_only() -> None:
    raw = encode(picture((1280, 720)), "PNG")
    info = image_info(raw)
    assert info == ImageInfo(1280, 720, "PNG", "image/png", len(raw))
    # A truncated body does not matter: the pixels are never decoded.
    assert image_info(raw[: len(raw) // 2]).width == 1280
    assert image_info(encode(picture((30, 20)), "JPEG")).mime == "image/jpeg"


@pytest.mark.parametrize(
    ("width", "height", "nbytes", "fits"),
    [
        (1280, 720, 100_000, True),
        (1280, 720, 10 * 1024 * 1024, True),
        (1280, 720, 10 * 1024 * 1024 + 1, False),
        (5000, 5000, 1000, True),
        (5000, 5001, 1000, False),
        (4000, 200, 1000, True),  # ratio exactly 20
        (4001, 200, 1000, False),
        (200, 4001, 1000, False),
        (0, 100, 1000, False),
    ],
)
def test_fits_telegram_photo_boundaries(width: int, height: int, nbytes: int, fits: bool) -> None:
    assert fits_telegram_photo(ImageInfo(width, height, "PNG", "image/png", nbytes)) is fits


# --- expand --------------------------------------------------------------------------------------


def test_expand_square_to_16_9_grows_left_and_right() -> None:
    top, bottom, left, right = expand_scales_for_ratio(1000, 1000, 16, 9)
    assert (top, bottom) == (1.0, 1.0)
    assert left == right
    assert 1000 * (left + right - 1) / 1000 == pytest.approx(16 / 9, rel=1e-3)


def test_expand_to_a_taller_ratio_grows_top_and_bottom() -> None:
    top, bottom, left, right = expand_scales_for_ratio(1920, 1080, 1, 1)
    assert (left, right) == (1.0, 1.0) and top == bottom
    assert 1080 * (top + bottom - 1) == pytest.approx(1920, rel=1e-3)


def test_expand_to_the_current_ratio_changes_nothing() -> None:
    assert expand_scales_for_ratio(1920, 1080, 16, 9) == (1.0, 1.0, 1.0, 1.0)


def test_expand_at_the_edge_uses_the_maximum_scale() -> None:
    assert expand_scales_for_ratio(1000, 1000, 3, 1) == (1.0, 1.0, 2.0, 2.0)


@pytest.mark.parametrize(("ratio_w", "ratio_h"), [(4, 1), (1, 4)])
def test_expand_beyond_reach_is_refused_with_the_range(ratio_w: int, ratio_h: int) -> None:
    error = expect_error(
        "expand_ratio_unreachable", expand_scales_for_ratio, 1000, 1000, ratio_w, ratio_h
    )
    assert error.params == {
        "ratio": f"{ratio_w}:{ratio_h}",
        "min_ratio": "0.33",
        "max_ratio": "3.00",
    }


def test_expand_rejects_non_positive_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        expand_scales_for_ratio(1000, 0, 16, 9)


@given(st.integers(1, 8000), st.integers(1, 8000), st.integers(1, 50), st.integers(1, 50))
def test_expand_scales_reach_the_ratio_or_refuse(w: int, h: int, rw: int, rh: int) -> None:
    try:
        top, bottom, left, right = expand_scales_for_ratio(w, h, rw, rh)
    except ImageError as error:
        assert error.key == "expand_ratio_unreachable"
        assert not (1 / 3 <= (rw / rh) / (w / h) <= 3)
        return
    assert all(1.0 <= s <= 2.0 for s in (top, bottom, left, right))
    assert top == bottom and left == right
    assert top == 1.0 or left == 1.0
    expanded = (w * (left + right - 1)) / (h * (top + bottom - 1))
    assert expanded == pytest.approx(rw / rh, rel=1e-3)


# --- the whole catalogue -------------------------------------------------------------------------


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_every_catalogue_entry_has_both_languages_with_the_same_placeholders() -> None:
    assert CATALOGUE
    for key, entry in CATALOGUE.items():
        assert entry.zh.strip(), f"{key}: empty zh"
        assert entry.en.strip(), f"{key}: empty en"
        assert _placeholders(entry.zh) == _placeholders(entry.en), key


@pytest.mark.parametrize(
    "key",
    [
        "image_not_image",
        "image_corrupt",
        "image_too_many_pixels",
        "image_too_small",
        "image_aspect_extreme",
        "image_too_large",
        "mask_empty",
        "mask_aspect_mismatch",
        "expand_ratio_unreachable",
    ],
)
def test_every_image_error_key_is_in_the_catalogue(key: str) -> None:
    assert key in CATALOGUE


# --- does it look like a mask? -----------------------------------------------------------------


def _encoded(im: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = BytesIO()
    im.save(buffer, fmt, **options)
    return buffer.getvalue()


def _black_with_white_box(mode: str = "L") -> Image.Image:
    im = Image.new(mode, (640, 480), 0)
    ImageDraw.Draw(im).ellipse((100, 80, 400, 300), fill=255 if mode == "L" else (255,) * 3)
    return im


def _photo_like(seed: int = 1) -> Image.Image:
    """Colours and greys all over the scale, as in a photo."""
    rng = random.Random(seed)
    im = Image.new("RGB", (320, 240))
    im.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                for _ in range(320 * 240)])
    return im


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: _encoded(_black_with_white_box()), True),
        (lambda: _encoded(_black_with_white_box("RGB"), "JPEG", quality=70), True),  # artefacts
        (lambda: _encoded(Image.new("L", (300, 200), 255)), True),  # all white: edit everything
        (lambda: _encoded(_photo_like()), False),
        (lambda: _encoded(_photo_like(2), "JPEG", quality=85), False),
        (lambda: _encoded(Image.new("RGB", (640, 480), (40, 120, 200)), "JPEG"), False),
        (lambda: _encoded(Image.linear_gradient("L").resize((400, 300))), False),  # grey ramp
    ],
    ids=["mask-png", "mask-jpeg", "all-white", "noise-png", "noise-jpeg", "flat-blue", "ramp"],
)
def test_looks_like_mask_tells_masks_from_photos(make: Callable[[], bytes],
                                                 expected: bool) -> None:
    assert looks_like_mask(make()) is expected


def test_strokes_on_a_transparent_sheet_are_a_mask() -> None:
    sheet = Image.new("RGBA", (640, 480), (0, 0, 0, 0))
    ImageDraw.Draw(sheet).line((50, 50, 500, 400), fill=(220, 30, 30, 255), width=40)
    assert looks_like_mask(_encoded(sheet))


def test_looks_like_mask_refuses_what_is_no_image() -> None:
    with pytest.raises(ImageError) as caught:
        looks_like_mask(b"not an image at all")
    assert caught.value.key == "image_not_image"


async def test_looks_like_mask_async_agrees() -> None:
    assert await looks_like_mask_async(_encoded(_black_with_white_box()))
    assert not await looks_like_mask_async(_encoded(_photo_like()))
