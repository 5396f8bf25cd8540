"""Masks a person draws instead of uploads: boxes in percent, and strokes painted on the photo.

Pure functions on bytes, Pillow only, nothing about Telegram; decoding (size limits, the
decompression-bomb guard, EXIF orientation) is :mod:`bot.images`'s. The ``*_async`` wrappers
only move the work off the event loop. Masks are PNG, mode L, 0 (keep) or 255 (repaint).

How a painted copy becomes a mask, and why:

* Both pictures are decoded small (a JPEG at 1/2, 1/4 or 1/8 by its decoder) and resized to
  one working size, the base's shape with the long side ``WORK_SIDE``: Telegram sends back a
  1280-px copy of a 4000-px original, or the original is the smaller one, and every later
  step then counts in working pixels whatever the sizes were. When one of them is smaller than
  that, both pass through its size first, so both lack the same fine detail.
* A light blur on both, then the largest difference over R, G and B: re-encoding (JPEG at
  quality 70-85, chroma subsampling) leaves small or thin differences, a stroke is an opaque
  colour laid over the photo. Difference, not colour, decides: a stroke may have the colour of
  the photo elsewhere, only where it covers something else does it count.
* Above ``DIFF_THRESHOLD`` counts as changed. An opening (erode, dilate) drops what is narrower
  than ``2 * OPEN_RADIUS + 1`` working pixels: JPEG specks and the one-pixel seams along sharp
  edges. A closing joins strokes broken by a patch where stroke and photo happen to agree. A
  last dilation of ``DILATE_SHARE`` of the long side lets the repainted area blend.
* Another picture is no copy: a shape off by more than ``MASK_ASPECT_TOLERANCE``, more than
  ``NOT_A_COPY_SHARE`` of the pixels changed, or the unchanged part matching only loosely
  (a copy matches within JPEG noise outside its strokes; an unrelated photo does not).
* Morphology is a box blur and a threshold (exact for a radius up to 10, see ``_dilate``):
  linear time, where Pillow's Min/MaxFilter cost the square of their size per pixel.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageChops, ImageFilter

from bot.errors import ImageError
from bot.images import MASK_ASPECT_TOLERANCE, MAX_BYTES, SizeLimits, _decode, _normalize, _open
from bot.images import _orientation as _exif_orientation

# --- boxes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A rectangle in percent of the picture's width and height, corners (x1, y1)-(x2, y2)."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        # `not (a < b)` rather than `a >= b`: NaN fails every comparison and is refused too.
        if not (0 <= self.x1 < self.x2 <= 100 and 0 <= self.y1 < self.y2 <= 100):
            raise ValueError(
                f"box needs 0 <= x1 < x2 <= 100 and 0 <= y1 < y2 <= 100, got {self}"
            )

    def pixels(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)``, right and bottom exclusive, rounded outward so even
        a thin box covers at least one pixel; a hair of slack keeps 50% of 1000 at 500."""
        width, height = size
        left = math.floor(self.x1 * width / 100 + _EPSILON)
        top = math.floor(self.y1 * height / 100 + _EPSILON)
        right = math.ceil(self.x2 * width / 100 - _EPSILON)
        bottom = math.ceil(self.y2 * height / 100 - _EPSILON)
        left, top = min(left, width - 1), min(top, height - 1)
        return left, top, max(right, left + 1), max(bottom, top + 1)


_EPSILON = 1e-9


def box_mask(size: tuple[int, int], boxes: Sequence[Box]) -> bytes:
    """PNG (mode L, 0/255) of ``size``, white inside the union of ``boxes``, black elsewhere."""
    _check_size(size)
    if not boxes:
        raise ValueError("box_mask needs at least one box")
    mask = Image.new("L", size, 0)
    for box in boxes:
        mask.paste(255, box.pixels(size))
    return _png(mask)


async def box_mask_async(size: tuple[int, int], boxes: Sequence[Box]) -> bytes:
    """:func:`box_mask` in a worker thread, off the event loop."""
    return await asyncio.to_thread(box_mask, size, boxes)


# --- strokes painted on a copy of the photo ------------------------------------------------------

WORK_SIDE = 768
BLUR_RADIUS = 1.5  # working pixels; evens out JPEG blocks and resampling of either copy
# Largest channel difference (0-255) after the blur that counts as a stroke. Measured on
# photo-like pictures re-encoded at quality 70-85: 99.9% of pixels differ by under 20 (a 0.32x
# copy) or 5 (same size); the rest are thin seams along sharp edges, which the opening drops.
# A stroke 40 away from the colour it covers is still found (tests/test_masks.py).
DIFF_THRESHOLD = 30
OPEN_RADIUS = 2  # drops changes narrower than 5 working pixels (0.65% of the long side)
CLOSE_RADIUS = 4  # joins strokes across gaps up to 9 working pixels
DILATE_SHARE = 0.005  # of the long side: the repainted area reaches a little past the strokes
NOT_A_COPY_SHARE = 0.6  # more than this changed: another picture, not a painted copy
# Where nothing was painted a copy differs by JPEG noise, mostly under a third of the threshold;
# between unrelated photos the small differences spread evenly up to it.
CLOSE_MATCH = DIFF_THRESHOLD // 3
MIN_CLOSE_MATCH_SHARE = 0.5
_MAX_EXACT_RADIUS = 10


@dataclass(frozen=True)
class PaintedMask:
    """The mask of a painted copy, and how much of the picture it repaints."""

    png: bytes  # PNG, mode L, 0/255, at the base image's size (after EXIF transpose)
    coverage: float  # share of the picture that will be repainted, 0..1


def painted_mask(base_raw: bytes, painted_raw: bytes) -> PaintedMask | None:
    """The mask of what was painted over ``base_raw`` in ``painted_raw``, at the base's size.

    None when ``painted_raw`` is not a copy of the base photo (another shape beyond
    ``MASK_ASPECT_TOLERANCE``, or most of it differs). Raises ``ImageError("painted_unchanged")``
    when it is the same photo with no visible strokes, and what :mod:`bot.images` raises for
    what cannot be decoded.
    """
    base_size, painted_size = _oriented_size(base_raw), _oriented_size(painted_raw)
    base_ratio = base_size[0] / base_size[1]
    if abs(painted_size[0] / painted_size[1] / base_ratio - 1) > MASK_ASPECT_TOLERANCE:
        return None
    base, painted = _decode_small(base_raw), _decode_small(painted_raw)
    work = _scaled(base_size, WORK_SIDE)
    # The smaller picture has lost detail the other still has: take the same away from both,
    # or every fine edge would count as changed.
    detail = _scaled(base_size, min(WORK_SIDE, max(base_size), max(painted_size)))
    blur = ImageFilter.GaussianBlur(BLUR_RADIUS)
    base = _resized(_resized(base, detail), work).filter(blur)
    painted = _resized(_resized(painted, detail), work).filter(blur)
    r, g, b = ImageChops.difference(base, painted).split()
    diff = ImageChops.lighter(ImageChops.lighter(r, g), b)
    histogram = diff.histogram()
    total = work[0] * work[1]
    changed = sum(histogram[DIFF_THRESHOLD:])
    unchanged = total - changed
    if changed > NOT_A_COPY_SHARE * total or (
        sum(histogram[: CLOSE_MATCH + 1]) < MIN_CLOSE_MATCH_SHARE * unchanged
    ):
        return None
    strokes = diff.point(_threshold(DIFF_THRESHOLD))
    strokes = _dilate(_erode(strokes, OPEN_RADIUS), OPEN_RADIUS)
    if strokes.getbbox() is None:
        raise ImageError("painted_unchanged", f"{changed} px over the threshold, all specks")
    strokes = _erode(_dilate(strokes, CLOSE_RADIUS), CLOSE_RADIUS)
    strokes = _dilate(strokes, max(1, round(DILATE_SHARE * WORK_SIDE)))
    mask = strokes.resize(base_size, Image.Resampling.BILINEAR).point(_threshold(128))
    coverage = mask.histogram()[255] / (base_size[0] * base_size[1])
    return PaintedMask(_png(mask), coverage)


async def painted_mask_async(base_raw: bytes, painted_raw: bytes) -> PaintedMask | None:
    """:func:`painted_mask` in a worker thread, off the event loop."""
    return await asyncio.to_thread(painted_mask, base_raw, painted_raw)


# --- a preview of what will be repainted ---------------------------------------------------------

PREVIEW_SIDE = 1280
TINT = (255, 0, 0)
TINT_OPACITY = 0.5
OUTLINE = (255, 40, 40)
OUTLINE_RADIUS = 1  # preview pixels on each side of the mask's edge
PREVIEW_QUALITY = 85


def tinted_preview(base_raw: bytes, mask_png: bytes) -> bytes:
    """JPEG of the base (long side at most ``PREVIEW_SIDE``) with the mask's area tinted red
    and outlined, so a person sees at a glance what will be repainted."""
    base = _decode_small(base_raw, PREVIEW_SIDE)
    size = _scaled(base.size, min(PREVIEW_SIDE, max(base.size)))
    base = _resized(base, size)
    mask, _ = _decode(mask_png)
    mask = mask.convert("L").resize(size, Image.Resampling.BILINEAR).point(_threshold(128))
    tinted = Image.blend(base, Image.new("RGB", size, TINT), TINT_OPACITY)
    preview = Image.composite(tinted, base, mask)
    edge = ImageChops.subtract(_dilate(mask, OUTLINE_RADIUS), _erode(mask, OUTLINE_RADIUS))
    preview.paste(OUTLINE, (0, 0, *size), edge)
    buffer = BytesIO()
    preview.save(buffer, "JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()


async def tinted_preview_async(base_raw: bytes, mask_png: bytes) -> bytes:
    """:func:`tinted_preview` in a worker thread, off the event loop."""
    return await asyncio.to_thread(tinted_preview, base_raw, mask_png)


# --- helpers -------------------------------------------------------------------------------------

# EXIF orientations 5-8 turn the picture a quarter: width and height swap.
_QUARTER_TURNS = (5, 6, 7, 8)


def _check_size(size: tuple[int, int]) -> None:
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"mask size must be positive, got {size}")


def _oriented_size(raw: bytes) -> tuple[int, int]:
    """The full size as shown, after EXIF orientation, from the header alone."""
    with _open(raw) as im:
        width, height = im.size
        return (height, width) if _exif_orientation(im) in _QUARTER_TURNS else (width, height)


def _decode_small(raw: bytes, side: int = WORK_SIDE) -> Image.Image:
    """RGB, oriented, decoded no larger than needed for a long side of ``side`` (a JPEG's
    decoder skips the rest); ``bot.images``' limits and guards apply."""
    im, _ = _decode(raw, SizeLimits(min_side=1, max_side=side, max_bytes=MAX_BYTES))
    im = _normalize(im)
    return im.convert("RGB") if im.mode != "RGB" else im


def _scaled(size: tuple[int, int], side: int) -> tuple[int, int]:
    """``size`` with its long side brought to ``side``, the shape kept."""
    scale = side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _resized(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    if im.size == size:
        return im
    return im.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _threshold(level: int) -> list[int]:
    """A lookup table for ``Image.point``: 255 from ``level`` up, 0 below."""
    return [0] * level + [255] * (256 - level)


def _dilate(mask: Image.Image, radius: int) -> Image.Image:
    """White grown by ``radius`` pixels (a square).

    A box blur and "anything above 0": a lone white pixel still leaves at least 1 after
    Pillow's two rounded passes up to radius 10 (255/21 = 12, 12/21 rounds to 1), not beyond.
    """
    if radius > _MAX_EXACT_RADIUS:
        return _dilate(_dilate(mask, _MAX_EXACT_RADIUS), radius - _MAX_EXACT_RADIUS)
    return mask.filter(ImageFilter.BoxBlur(radius)).point(_threshold(1))


def _erode(mask: Image.Image, radius: int) -> Image.Image:
    """White shrunk by ``radius`` pixels (a square): the dilation of black."""
    if radius > _MAX_EXACT_RADIUS:
        return _erode(_erode(mask, _MAX_EXACT_RADIUS), radius - _MAX_EXACT_RADIUS)
    return mask.filter(ImageFilter.BoxBlur(radius)).point(_threshold(255))


def _png(mask: Image.Image) -> bytes:
    buffer = BytesIO()
    mask.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()
