"""Image preparation: turn whatever a user sent into something the image models accept.

Pure functions on bytes, Pillow only, nothing about Telegram. The sync functions do the work
and are tested directly; the ``*_async`` wrappers only move that work off the event loop.

Decisions, in one place:

* Input formats: JPEG (and MPO), PNG (and APNG), WEBP, BMP, TIFF, GIF. Anything else, or no
  image at all, is ``image_not_image``; a file that starts like one of them but cannot be
  decoded to the end is ``image_corrupt``. Animated images: the first frame is used.
* At most ``MAX_INPUT_PIXELS`` (64 MP) are decoded; larger is ``image_too_many_pixels``.
* EXIF orientation is applied. Output is RGB JPEG, or RGBA PNG when the image really has
  transparency (an alpha channel that is fully opaque is dropped so the result can be JPEG).
* Sizes: every side is brought within the model's ``[min_side, max_side]`` by scaling with the
  aspect ratio kept. A ratio longer than ``max_side / min_side`` (8 for both models) cannot fit
  both bounds: up to ``MAX_ASPECT_RATIO`` (12) the long side is scaled to ``max_side`` and the
  short side is padded, centred, to ``min_side`` (mid-grey for RGB, transparent for RGBA);
  beyond it ``image_aspect_extreme``. A short side under ``MIN_INPUT_SIDE`` (32 px) is
  ``image_too_small``: blowing a thumbnail up 16 times gives the model nothing to work with.
* Pass-through: a JPEG (RGB) or PNG (RGB/RGBA) already within the model's limits and carrying no
  EXIF block is sent byte for byte after a full, validating decode. Anything with EXIF is
  re-encoded: that applies the orientation and drops metadata (GPS, camera serial) we have no
  reason to hand to a third party. Telegram's compressed photos carry no EXIF, so the common
  case is the cheap one.
* Results (``check_result``) were paid for: no input limit or bomb guard applies to them. They
  are read to the end (a non-image or a truncated file is the service's failure) and, when too
  big for a Telegram photo, get a JPEG preview that fits one; the original goes as a document.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass
from io import BytesIO

from PIL import (  # the plugins Image.open(formats=...) needs registered up front
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

from bot.api_limits import EXPAND_SCALE_RANGE, MAX_IMAGE_BYTES, QWEN_SIDE_RANGE, WANX_SIDE_RANGE
from bot.bailian.models import Model
from bot.errors import ImageError

# --- limits --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeLimits:
    """What a model accepts: pixels per side (both sides) and encoded bytes."""

    min_side: int
    max_side: int
    max_bytes: int


MAX_BYTES = MAX_IMAGE_BYTES  # the API's limit (bot.api_limits), under the name tests import

LIMITS: dict[Model, SizeLimits] = {
    Model.WANX_IMAGE_EDIT: SizeLimits(
        min_side=WANX_SIDE_RANGE[0], max_side=WANX_SIDE_RANGE[1], max_bytes=MAX_IMAGE_BYTES
    ),
    Model.QWEN_IMAGE_EDIT: SizeLimits(
        min_side=QWEN_SIDE_RANGE[0], max_side=QWEN_SIDE_RANGE[1], max_bytes=MAX_IMAGE_BYTES
    ),
}

# 64 MP covers 9000x6000 and today's 61 MP full-frame cameras; a decoded RGB copy is ~190 MB.
MAX_INPUT_PIXELS = 64_000_000
MIN_INPUT_SIDE = 32
MAX_ASPECT_RATIO = 12.0
# Mask and base may differ a little in aspect (rounding in someone's resize); beyond this the
# mask was drawn for another picture (or turned 90 degrees) and stretching it would be wrong.
MASK_ASPECT_TOLERANCE = 0.03

JPEG_QUALITIES = (92, 85, 75, 65, 50)
PAD_RGB = (128, 128, 128)
PAD_RGBA = (0, 0, 0, 0)

# Telegram sendPhoto limits (MB read as MiB, like the model limits).
TELEGRAM_PHOTO_MAX_BYTES = 10 * 1024 * 1024
TELEGRAM_PHOTO_MAX_DIMENSIONS_SUM = 10_000
TELEGRAM_PHOTO_MAX_RATIO = 20.0
# A result too big for a photo gets a preview photo this long: Telegram keeps no more of one.
RESULT_PREVIEW_MAX_SIDE = 2560
# Results (other than JPEG, decoded at 1/8) are decoded for a preview up to this many pixels:
# about 4 bytes each while it is made, ~512 MB here. /upscale 4 of an 8 MP photo fits under it.
MAX_RESULT_DECODE_PIXELS = 128_000_000

# Pillow plugins we let decode user bytes: the API's formats plus GIF; fewer decoders, less
# attack surface. The JPEG plugin also opens MPO (a camera JPEG with more pictures appended).
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
_SIGNATURES = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
# What a broken file makes Pillow's decoders raise.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)
_MIMES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
          "BMP": "image/bmp", "TIFF": "image/tiff", "GIF": "image/gif"}
_EXIF_ORIENTATION = 0x0112

# warnings.catch_warnings swaps process-wide state; serialise our own uses of it across threads.
_OPEN_LOCK = threading.Lock()
# One result preview decoded at a time: two deliveries at once would double the peak memory.
_PREVIEW_LOCK = threading.Lock()


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedImage:
    """Encoded bytes ready to send, with their MIME type and pixel size."""

    data: bytes
    mime: str
    width: int
    height: int

    def data_uri(self) -> str:
        """``data:{mime};base64,...``: how images are handed to DashScope."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says, without decoding the pixels."""

    width: int
    height: int
    format: str
    mime: str
    nbytes: int


# --- decoding ------------------------------------------------------------------------------------


def _looks_like_image(raw: bytes) -> bool:
    return raw.startswith(_SIGNATURES) or (raw[:4] == b"RIFF" and raw[8:12] == b"WEBP")


def _open(raw: bytes, *, bomb_guard: bool = True) -> Image.Image:
    """Open lazily (header only); map Pillow's refusals to our keys.

    ``bomb_guard=False`` lifts Pillow's decompression-bomb cap, for results only: their size
    is what DashScope was asked for, while a user's file is whatever they sent.
    """
    if not raw:
        raise ImageError("image_not_image", "empty file")
    try:
        # Pillow warns above its own pixel cap and raises above twice that; both mean "bomb".
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if bomb_guard:
                return Image.open(BytesIO(raw), formats=ACCEPTED_FORMATS)
            # Pillow reads the cap from a module global when it opens; every open of ours holds
            # _OPEN_LOCK, so no input is opened while it is lifted.
            cap, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return Image.open(BytesIO(raw), formats=ACCEPTED_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = cap
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            "image_too_many_pixels",
            str(exc),
            max_megapixels=MAX_INPUT_PIXELS // 1_000_000,
        ) from exc
    except UnidentifiedImageError as exc:
        # A known signature that no decoder accepts is a damaged file, not a non-image.
        key = "image_corrupt" if _looks_like_image(raw) else "image_not_image"
        raise ImageError(key, str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageError("image_corrupt", str(exc)) from exc


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_INPUT_PIXELS:
        raise ImageError(
            "image_too_many_pixels",
            f"{width}x{height}",
            max_megapixels=MAX_INPUT_PIXELS // 1_000_000,
        )


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) else 1


def _decode(raw: bytes, limits: SizeLimits | None = None) -> tuple[Image.Image, bool]:
    """Fully decode the first frame with EXIF orientation applied.

    Returns the image and whether it is pristine: no EXIF and decoded at full size, so ``raw``
    itself could be sent. With ``limits``, sizes that cannot be used are refused before
    decoding, and the JPEG decoder skips detail the downscale would throw away.
    """
    im = _open(raw)
    _check_pixels(*im.size)
    drafted = False
    if limits is not None:
        # Stored (not yet rotated) size: the plan is symmetric and draft works on stored pixels.
        fit = _plan_fit(*im.size, limits)
        if im.format in ("JPEG", "MPO") and fit.content != im.size:
            drafted = im.draft(im.mode, fit.content) is not None
    try:
        im.load()  # forces the whole file through the decoder: truncation shows up here
    except _DECODE_ERRORS as exc:
        raise ImageError("image_corrupt", str(exc)) from exc
    orientation = _orientation(im)
    pristine = not drafted and not im.info.get("exif") and orientation == 1
    if orientation != 1:
        # An unreadable orientation tag is no reason to refuse the picture.
        with contextlib.suppress(*_DECODE_ERRORS):
            im = ImageOps.exif_transpose(im)
    return im, pristine


def _band_range(band: Image.Image) -> tuple[float, float]:
    """Lowest and highest value of a single-band image."""
    lo, hi = band.getextrema()
    assert isinstance(lo, int | float) and isinstance(hi, int | float)  # single band
    return float(lo), float(hi)


def _has_real_alpha(im: Image.Image) -> bool:
    """True when an RGBA image has at least one pixel that is not fully opaque."""
    return _band_range(im.getchannel("A"))[0] < 255


def _stretch_to_8bit(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grey to ``L``: the used range maps linearly onto 0-255."""
    wide = im if im.mode in ("I", "F") else im.convert("I")
    lo, hi = _band_range(wide)
    if hi <= lo:  # flat: no range to stretch, keep the level (16-bit read on its own scale)
        level = lo / 257 if im.mode.startswith("I;16") else lo
        return Image.new("L", im.size, round(min(255.0, max(0.0, level))))
    scale = 255.0 / (hi - lo)
    offset = -lo * scale
    return wide.point(lambda v: v * scale + offset).convert("L")


def _normalize(im: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB, or to RGBA when there is real transparency."""
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        return _stretch_to_8bit(im).convert("RGB")
    if mode == "P":
        im = im.convert("RGBA" if im.has_transparency_data else "RGB")
    elif mode == "La":
        im = im.convert("LA").convert("RGBA")
    elif mode in ("LA", "PA", "RGBa"):
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L").convert("RGB")
    elif mode not in ("RGB", "RGBA"):
        im = im.convert("RGB")  # L, CMYK, YCbCr, LAB, HSV, RGBX
    if im.mode == "RGBA" and not _has_real_alpha(im):
        im = im.convert("RGB")
    return im


# --- fitting the model's limits ------------------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    content: tuple[int, int]  # size the picture is resized to
    canvas: tuple[int, int]  # size after centred padding (== content when no padding)


def _plan_fit(width: int, height: int, limits: SizeLimits) -> _Fit:
    """Target sizes for an image of ``width`` x ``height``; refuses what cannot be used."""
    short, long_ = min(width, height), max(width, height)
    ratio = long_ / short
    if ratio > MAX_ASPECT_RATIO:
        raise ImageError(
            "image_aspect_extreme",
            f"{width}x{height}",
            ratio=f"{ratio:.1f}",
            max_ratio=f"{MAX_ASPECT_RATIO:g}",
        )
    if short < MIN_INPUT_SIDE:
        raise ImageError(
            "image_too_small", f"{width}x{height}", width=width, height=height,
            min_side=MIN_INPUT_SIDE,
        )
    landscape = width >= height

    def oriented(s: int, lg: int) -> tuple[int, int]:
        return (lg, s) if landscape else (s, lg)

    if ratio > limits.max_side / limits.min_side:
        new_long = limits.max_side
        new_short = max(1, min(limits.min_side, round(short * new_long / long_)))
        return _Fit(oriented(new_short, new_long), oriented(limits.min_side, new_long))
    if short < limits.min_side:
        new_short = limits.min_side
        new_long = min(limits.max_side, max(new_short, round(long_ * new_short / short)))
    elif long_ > limits.max_side:
        new_long = limits.max_side
        new_short = max(limits.min_side, min(new_long, round(short * new_long / long_)))
    else:
        new_short, new_long = short, long_
    size = oriented(new_short, new_long)
    return _Fit(size, size)


def _apply_fit(im: Image.Image, fit: _Fit) -> Image.Image:
    if im.size != fit.content:
        # BICUBIC: for a model's input it looks the same as LANCZOS at ~60% of the time
        # (bench/image_prep.py); reducing_gap keeps large reductions fast and alias-free.
        im = im.resize(fit.content, Image.Resampling.BICUBIC, reducing_gap=3.0)
    if fit.canvas != fit.content:
        fill = PAD_RGBA if im.mode == "RGBA" else PAD_RGB
        canvas = Image.new(im.mode, fit.canvas, fill)
        canvas.paste(im, ((fit.canvas[0] - im.width) // 2, (fit.canvas[1] - im.height) // 2))
        im = canvas
    return im


# --- encoding ------------------------------------------------------------------------------------


def _encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = BytesIO()
    im.save(buffer, fmt, **options)
    return buffer.getvalue()


def _shrunk(im: Image.Image, nbytes: int, limits: SizeLimits) -> Image.Image | None:
    """A smaller copy that should encode under the byte limit, or None at the minimum size."""
    if min(im.size) <= limits.min_side:
        return None
    # Encoded size grows roughly with the pixel count; aim a little under the limit.
    factor = max(0.5, min(0.9, math.sqrt(limits.max_bytes / nbytes) * 0.95))
    factor = max(factor, limits.min_side / min(im.size))
    size = (max(1, round(im.width * factor)), max(1, round(im.height * factor)))
    return im.resize(size, Image.Resampling.LANCZOS)


def _encode_within(im: Image.Image, limits: SizeLimits) -> PreparedImage:
    """JPEG at falling quality (or PNG for RGBA), downscaling when that is not enough."""
    current: Image.Image | None = im
    while current is not None:
        if current.mode == "RGBA":
            data = _encode(current, "PNG", compress_level=6)
            mime = "image/png"
        else:
            for quality in JPEG_QUALITIES:
                data = _encode(current, "JPEG", quality=quality, optimize=True)
                if len(data) <= limits.max_bytes:
                    break
            mime = "image/jpeg"
        if len(data) <= limits.max_bytes:
            return PreparedImage(data, mime, current.width, current.height)
        current = _shrunk(current, len(data), limits)
    raise ImageError(
        "image_too_large", f"cannot encode under {limits.max_bytes} bytes",
        max_mb=limits.max_bytes // (1024 * 1024),
    )


# --- public API ----------------------------------------------------------------------------------


def prepare_image(raw: bytes, model: Model) -> PreparedImage:
    """Decode, orient, convert and fit ``raw`` to ``model``'s limits (see the module docstring).

    Animated GIF/WEBP/APNG: the first frame is used. Raises :class:`ImageError` with keys
    ``image_not_image``, ``image_corrupt``, ``image_too_many_pixels``, ``image_too_small``,
    ``image_aspect_extreme`` or ``image_too_large``.
    """
    limits = LIMITS[model]
    im, pristine = _decode(raw, limits)
    fit = _plan_fit(im.width, im.height, limits)
    passthrough_mode = {"JPEG": ("RGB",), "PNG": ("RGB", "RGBA")}.get(im.format or "", ())
    if (
        im.mode in passthrough_mode
        and pristine
        and not getattr(im, "is_animated", False)
        and fit.canvas == fit.content == im.size
        and len(raw) <= limits.max_bytes
    ):
        return PreparedImage(raw, _MIMES[im.format or ""], im.width, im.height)
    im = _apply_fit(_normalize(im), fit)
    return _encode_within(im, limits)


def prepare_mask(raw: bytes, size: tuple[int, int]) -> PreparedImage:
    """A black/white RGB PNG at exactly ``size`` (the prepared base image's size).

    White (255) = edit, black (0) = keep. An image with real transparency is read by its alpha:
    opaque strokes (any colour) on a transparent sheet are the edit area. Otherwise grey level
    >= 128 is edit, which also cleans JPEG artefacts. The mask is resized (bilinear) before the
    threshold, so only 0 and 255 remain. Its aspect ratio must match ``size`` within 3%
    (``mask_aspect_mismatch``): a stretched mask edits the wrong place. All black is
    ``mask_empty``; all white is allowed (it edits the whole picture).
    """
    target_w, target_h = size
    if target_w <= 0 or target_h <= 0:
        raise ValueError(f"mask size must be positive, got {size}")
    im, _ = _decode(raw)
    if min(im.size) < MIN_INPUT_SIDE:
        raise ImageError(
            "image_too_small", f"mask {im.width}x{im.height}", width=im.width,
            height=im.height, min_side=MIN_INPUT_SIDE,
        )
    mask_ratio, target_ratio = im.width / im.height, target_w / target_h
    if abs(mask_ratio / target_ratio - 1) > MASK_ASPECT_TOLERANCE:
        raise ImageError(
            "mask_aspect_mismatch",
            f"mask {im.width}x{im.height} for {target_w}x{target_h}",
            mask_width=im.width, mask_height=im.height, width=target_w, height=target_h,
        )
    im = _normalize(im)
    grey = im.getchannel("A") if im.mode == "RGBA" else im.convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    binary = grey.point(lambda v: 255 if v >= 128 else 0)
    if binary.getbbox() is None:
        raise ImageError("mask_empty", "no white pixel")
    data = _encode(binary.convert("RGB"), "PNG", compress_level=6)
    return PreparedImage(data, "image/png", target_w, target_h)


# A mask is almost only black and white; a photo has its pixels all over the grey scale. The
# decision is made on a small grey copy, where JPEG noise and a mask's soft edges stay few.
MASK_LIKE_SIDE = 64
MASK_LIKE_NEAR = 24  # within this of 0 or 255 counts as black or white
MASK_LIKE_SHARE = 0.9


def looks_like_mask(raw: bytes) -> bool:
    """Whether an image reads as a mask: real transparency (strokes on a clear sheet, as
    :func:`prepare_mask` reads it), or at least 90% of its pixels near black or near white.

    Lets /erase ask before a photo sent by mistake is thresholded into a mask and paid for.
    Raises ``ImageError`` as :func:`prepare_mask` would for what is no image.
    """
    im, _ = _decode(raw)
    im = _normalize(im)
    if im.mode == "RGBA":
        return True
    im.thumbnail((MASK_LIKE_SIDE, MASK_LIKE_SIDE), Image.Resampling.NEAREST)
    histogram = im.convert("L").histogram()
    extremes = sum(histogram[:MASK_LIKE_NEAR + 1]) + sum(histogram[255 - MASK_LIKE_NEAR:])
    return extremes >= MASK_LIKE_SHARE * sum(histogram)


async def looks_like_mask_async(raw: bytes) -> bool:
    """:func:`looks_like_mask` in a worker thread, off the event loop."""
    return await asyncio.to_thread(looks_like_mask, raw)


async def prepare_image_async(raw: bytes, model: Model) -> PreparedImage:
    """:func:`prepare_image` in a worker thread, off the event loop."""
    return await asyncio.to_thread(prepare_image, raw, model)


async def prepare_mask_async(raw: bytes, size: tuple[int, int]) -> PreparedImage:
    """:func:`prepare_mask` in a worker thread, off the event loop."""
    return await asyncio.to_thread(prepare_mask, raw, size)


def image_info(raw: bytes) -> ImageInfo:
    """Size and format from the header only (no pixel decode); ``ImageError`` if not an image."""
    with _open(raw) as im:
        fmt = im.format or ""
        return ImageInfo(im.width, im.height, fmt, _MIMES.get(fmt, "application/octet-stream"),
                         len(raw))


def fits_telegram_photo(info: ImageInfo) -> bool:
    """Whether Telegram's sendPhoto takes it (else it must go as a document)."""
    if info.width <= 0 or info.height <= 0:
        return False
    return (
        info.nbytes <= TELEGRAM_PHOTO_MAX_BYTES
        and info.width + info.height <= TELEGRAM_PHOTO_MAX_DIMENSIONS_SUM
        and max(info.width, info.height) / min(info.width, info.height)
        <= TELEGRAM_PHOTO_MAX_RATIO
    )


# --- results from DashScope ----------------------------------------------------------------------

_PREVIEW_LIMITS = SizeLimits(
    min_side=1, max_side=RESULT_PREVIEW_MAX_SIDE, max_bytes=TELEGRAM_PHOTO_MAX_BYTES
)


@dataclass(frozen=True)
class CheckedResult:
    """A result read to its end, and a preview (a JPEG that fits a Telegram photo) when the
    result itself is too big for one; None when it fits, or when no photo could show it."""

    info: ImageInfo
    preview: PreparedImage | None = None

    @property
    def fits_photo(self) -> bool:
        return fits_telegram_photo(self.info)


def check_result(raw: bytes) -> CheckedResult:
    """Read a result of DashScope's to its end; make its preview when it needs one.

    A result is ours to deliver, not to judge by the limits of inputs: neither MAX_INPUT_PIXELS
    nor Pillow's bomb guard applies. Raises ImageError (``image_not_image``, ``image_corrupt``)
    for something that is not an image or is cut short. Only what is needed is decoded: a JPEG
    at 1/8 of its pixels (the whole stream still passes the decoder); a PNG needing no preview
    not at all (every chunk's CRC is checked up to IEND, which catches truncation); anything
    else, and a PNG's preview, in full, but nothing beyond MAX_RESULT_DECODE_PIXELS: such a
    result goes without a preview, checked as far as Pillow can without decoding (a PNG fully).
    """
    with _open(raw, bomb_guard=False) as im:
        fmt = im.format or ""
        info = ImageInfo(im.width, im.height, fmt, _MIMES.get(fmt, "application/octet-stream"),
                         len(raw))
        size = None if fits_telegram_photo(info) else _preview_size(im.width, im.height)
        if fmt in ("JPEG", "MPO"):
            im.draft("RGB", size or (max(1, im.width // 8), max(1, im.height // 8)))
        elif (fmt == "PNG" and size is None) or im.width * im.height > MAX_RESULT_DECODE_PIXELS:
            try:
                im.verify()
            except _DECODE_ERRORS as exc:
                raise ImageError("image_corrupt", str(exc)) from exc
            return CheckedResult(info)
        with _PREVIEW_LOCK if size is not None else contextlib.nullcontext():
            try:
                im.load()
            except _DECODE_ERRORS as exc:
                raise ImageError("image_corrupt", str(exc)) from exc
            return CheckedResult(info, None if size is None else _preview(im, size))


async def check_result_async(raw: bytes) -> CheckedResult:
    """:func:`check_result` in a worker thread, off the event loop."""
    return await asyncio.to_thread(check_result, raw)


def _preview_size(width: int, height: int) -> tuple[int, int] | None:
    """The preview's size: the long side at most RESULT_PREVIEW_MAX_SIDE; None past the ratio
    a photo may have."""
    if width <= 0 or height <= 0 or max(width, height) / min(width, height) > (
        TELEGRAM_PHOTO_MAX_RATIO
    ):
        return None
    scale = min(1.0, RESULT_PREVIEW_MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _preview(im: Image.Image, size: tuple[int, int]) -> PreparedImage:
    """``im`` at ``size`` as a JPEG within Telegram's photo limits; transparency on white."""
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = _normalize(im)  # palette, 16-bit, CMYK: to a mode the resize takes, first
    im = _normalize(im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))
    if im.mode == "RGBA":
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
        im = im.convert("RGB")
    return _encode_within(im, _PREVIEW_LIMITS)


# The API gives each *_scale in EXPAND_SCALE_RANGE, [1.0, 2.0], and calls it the expansion
# ratio in that direction. Our reading: a side's scale counts the original as 1, so left_scale
# 1.5 adds half the original width on the left, and the total width is
# width * (left_scale + right_scale - 1); likewise height with top/bottom. Centred growth on one
# axis thus multiplies it by at most 3.
MIN_EXPAND_SCALE, MAX_EXPAND_SCALE = EXPAND_SCALE_RANGE
_MAX_AXIS_GROWTH = 2 * MAX_EXPAND_SCALE - 1


def expand_scales_for_ratio(
    width: int, height: int, ratio_w: int, ratio_h: int
) -> tuple[float, float, float, float]:
    """``(top, bottom, left, right)`` scales, centred, that grow the image to ``ratio_w:ratio_h``.

    Only one axis grows (the one the ratio is short of); the same ratio gives all 1.0. Raises
    ``ImageError("expand_ratio_unreachable")`` when one side would need more than 2.0, with the
    reachable width/height ratios as ``min_ratio`` and ``max_ratio``.
    """
    if min(width, height, ratio_w, ratio_h) <= 0:
        raise ValueError("sizes and ratio terms must be positive")
    current = width / height
    target = ratio_w / ratio_h
    growth = max(target / current, current / target)
    if growth > _MAX_AXIS_GROWTH * (1 + 1e-9):
        raise ImageError(
            "expand_ratio_unreachable",
            f"{width}x{height} to {ratio_w}:{ratio_h}",
            ratio=f"{ratio_w}:{ratio_h}",
            min_ratio=f"{current / _MAX_AXIS_GROWTH:.2f}",
            max_ratio=f"{current * _MAX_AXIS_GROWTH:.2f}",
        )
    scale = min(MAX_EXPAND_SCALE, round((growth + 1) / 2, 4))
    if target > current:
        return (MIN_EXPAND_SCALE, MIN_EXPAND_SCALE, scale, scale)
    return (scale, scale, MIN_EXPAND_SCALE, MIN_EXPAND_SCALE)


# --- the Mini App's drawing (bot/web) ------------------------------------------------------------

# The copy shown to paint on: enough for a finger's precision, small enough for a phone.
DRAWING_MAX_SIDE = 1600


def drawing_copy(raw: bytes, max_side: int = DRAWING_MAX_SIDE) -> PreparedImage:
    """The photo as the Mini App shows it: EXIF orientation applied, longest side at most
    ``max_side``, RGB JPEG (transparency on white). The drawn mask comes back at its size."""
    im, _ = _decode(raw)
    im = _normalize(im)
    if im.mode == "RGBA":
        sheet = Image.new("RGB", im.size, (255, 255, 255))
        sheet.paste(im, mask=im.getchannel("A"))
        im = sheet
    im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return PreparedImage(_encode(im, "JPEG", quality=90), "image/jpeg", im.width, im.height)


def check_drawn_mask(raw: bytes, size: tuple[int, int]) -> None:
    """A mask from the Mini App must be a PNG of exactly ``size`` with something painted:
    ``ImageError("miniapp_mask_bad")`` or ``ImageError("mask_empty")`` otherwise."""
    width, height = size
    refusal = ImageError("miniapp_mask_bad", "not a PNG of the drawing's size",
                         width=width, height=height)
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        raise refusal
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(BytesIO(raw), formats=["PNG"])
        if im.size != size:
            raise refusal
        im.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, UnidentifiedImageError,
            *_DECODE_ERRORS) as exc:
        raise refusal from exc
    # Unpainted is black: a transparent pixel counts as black, as it shows on the page.
    rgba = im.convert("RGBA")
    sheet = Image.new("RGB", im.size, (0, 0, 0))
    sheet.paste(rgba, mask=rgba.getchannel("A"))
    grey = sheet.convert("L")
    if grey.point(lambda v: 255 if v >= 128 else 0).getbbox() is None:
        raise ImageError("mask_empty", "nothing painted")


async def drawing_copy_async(raw: bytes) -> PreparedImage:
    """:func:`drawing_copy` in a worker thread, off the event loop."""
    return await asyncio.to_thread(drawing_copy, raw)


async def check_drawn_mask_async(raw: bytes, size: tuple[int, int]) -> None:
    """:func:`check_drawn_mask` in a worker thread, off the event loop."""
    await asyncio.to_thread(check_drawn_mask, raw, size)
