"""Drawn masks (bot/masks.py): percent boxes, strokes painted on a copy of the photo, the preview.

The photos are synthetic but photo-like (gradients, shapes, grain); the painted copies go through
what Telegram does to them: JPEG at quality 70-85 and a resize, smaller or larger.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass
from functools import cached_property

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

from bot.errors import ImageError
from bot.masks import (
    DILATE_SHARE,
    Box,
    PaintedMask,
    _dilate,
    _erode,
    box_mask,
    box_mask_async,
    painted_mask,
    painted_mask_async,
    tinted_preview,
    tinted_preview_async,
)

Size = tuple[int, int]
Point = tuple[float, float]

BASE_SIZE = (1600, 1200)
# What Telegram's brush leaves: opaque colours, one of them close to the photo under it.
STROKE_COLOURS = ((255, 255, 255), (220, 30, 30), (20, 20, 20))
CLOSE_COLOUR_DELTA = 40  # per channel, from the mean of the photo the stroke covers


# --- making photos and painting on them ----------------------------------------------------------


def photo(size: Size, seed: int = 1, palette: int = 0) -> Image.Image:
    """Gradients, a dozen flat shapes and grain, made at half size and scaled up (as a camera's
    detail is softer than its pixels), with fine noise on top."""
    width, height = size
    rng = random.Random(seed)
    half = (max(8, width // 2), max(8, height // 2))
    linear, radial = Image.linear_gradient("L"), Image.radial_gradient("L")
    bands = [linear.resize(half), radial.resize(half), linear.rotate(90).resize(half)]
    im = Image.merge("RGB", bands[palette:] + bands[:palette])
    draw = ImageDraw.Draw(im)
    for _ in range(14):
        x, y = rng.randrange(half[0]), rng.randrange(half[1])
        r = rng.randrange(half[0] // 20, half[0] // 5)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    grain = Image.effect_noise(half, 24)
    grain_rgb = Image.merge(
        "RGB", (grain, grain.rotate(180), grain.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )
    im = ImageChops.add(im, grain_rgb, offset=-128).resize(size, Image.Resampling.BICUBIC)
    fine = Image.effect_noise(size, 8)
    return ImageChops.add(im, Image.merge("RGB", (fine, fine, fine)), offset=-128)


def stroke_paths(size: Size, seed: int) -> list[tuple[list[Point], int]]:
    """Three strokes of three points each, 2-5% of the width wide, inside the middle 70%."""
    width, height = size
    rng = random.Random(seed)
    paths = []
    for _ in STROKE_COLOURS:
        points = [
            (rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height)
            for _ in range(3)
        ]
        paths.append((points, round(rng.uniform(0.02, 0.05) * width)))
    return paths


def close_stroke(im: Image.Image) -> tuple[list[Point], int, tuple[int, int, int]]:
    """A short stroke lower left, its colour CLOSE_COLOUR_DELTA from the photo it covers."""
    width, height = im.size
    points = [(0.12 * width, 0.88 * height), (0.3 * width, 0.9 * height)]
    under = im.crop((round(0.1 * width), round(0.85 * height), round(0.32 * width),
                     round(0.93 * height)))
    mean = ImageStat.Stat(under).mean
    shift = [CLOSE_COLOUR_DELTA if v < 128 else -CLOSE_COLOUR_DELTA for v in mean]
    colour = (round(mean[0] + shift[0]), round(mean[1] + shift[1]), round(mean[2] + shift[2]))
    return points, round(0.03 * width), colour


@dataclass(frozen=True)
class Painted:
    """A painted copy and where its strokes are."""

    copy: Image.Image
    strokes: list[tuple[list[Point], int]]  # every stroke's points and width
    close: Image.Image  # the region of the stroke whose colour is close to the photo's

    def region(self, grow: int) -> Image.Image:
        """The strokes' region, ``grow`` pixels wider on each side."""
        region = Image.new("L", self.copy.size, 0)
        draw = ImageDraw.Draw(region)
        for points, width in self.strokes:
            draw.line(points, fill=255, width=width + 2 * grow, joint="curve")
            # A grown line has round ends; Pillow's are square to the line, and no longer.
            r = width / 2 + grow
            for x, y in (points[0], points[-1]):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        return region

    @cached_property
    def truth(self) -> Image.Image:
        """The strokes' region dilated as the mask is."""
        return self.region(round(DILATE_SHARE * max(self.copy.size)))


def paint(im: Image.Image, seed: int = 2) -> Painted:
    """A copy of ``im`` painted with three strokes and one of nearly the photo's colour."""
    copy = im.copy()
    draw = ImageDraw.Draw(copy)
    strokes = stroke_paths(im.size, seed)
    for (points, width), colour in zip(strokes, STROKE_COLOURS, strict=True):
        draw.line(points, fill=colour, width=width, joint="curve")
    points, width, colour = close_stroke(im)
    draw.line(points, fill=colour, width=width, joint="curve")
    strokes.append((points, width))
    close = Image.new("L", im.size, 0)
    ImageDraw.Draw(close).line(points, fill=255, width=width, joint="curve")
    return Painted(copy, strokes, close)


def jpeg(im: Image.Image, quality: int = 75, scale: float = 1.0, **options: object) -> bytes:
    if scale != 1.0:
        size = (round(im.width * scale), round(im.height * scale))
        im = im.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=quality, **options)
    return buffer.getvalue()


def open_mask(result: PaintedMask | bytes) -> Image.Image:
    """The mask as an image, after checking it is a PNG in mode L holding only 0 and 255."""
    raw = result.png if isinstance(result, PaintedMask) else result
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    mask = Image.open(io.BytesIO(raw))
    assert mask.mode == "L"
    histogram = mask.histogram()
    assert sum(histogram[1:255]) == 0, "only black and white"
    return mask


def white(mask: Image.Image) -> int:
    return mask.histogram()[255]


def iou(mask: Image.Image, truth: Image.Image) -> float:
    return white(ImageChops.multiply(mask, truth)) / white(ImageChops.lighter(mask, truth))


@pytest.fixture(scope="module")
def base() -> Image.Image:
    return photo(BASE_SIZE)


@pytest.fixture(scope="module")
def base_raw(base: Image.Image) -> bytes:
    return jpeg(base, 92)


@pytest.fixture(scope="module")
def painted(base: Image.Image) -> Painted:
    return paint(base)


# --- painted_mask --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quality", "scale"),
    [(75, 0.32), (75, 1.0), (75, 1.25), (70, 0.64), (85, 0.5)],
    ids=["0.32x-q75", "1x-q75", "1.25x-q75", "0.64x-q70", "0.5x-q85"],
)
def test_painted_mask_is_the_strokes(
    base_raw: bytes, painted: Painted, quality: int, scale: float
) -> None:
    result = painted_mask(base_raw, jpeg(painted.copy, quality, scale))
    assert result is not None
    mask = open_mask(result)
    assert mask.size == BASE_SIZE
    truth = painted.truth
    assert iou(mask, truth) >= 0.8
    true_coverage = white(truth) / (BASE_SIZE[0] * BASE_SIZE[1])
    assert result.coverage == pytest.approx(white(mask) / (BASE_SIZE[0] * BASE_SIZE[1]))
    assert result.coverage == pytest.approx(true_coverage, rel=0.2)
    # The stroke of nearly the photo's colour is found too.
    assert white(ImageChops.multiply(mask, painted.close)) >= 0.8 * white(painted.close)


def test_far_from_the_strokes_stays_black(base_raw: bytes, painted: Painted) -> None:
    result = painted_mask(base_raw, jpeg(painted.copy, 70, 0.32))
    assert result is not None
    near = painted.region(round(0.02 * BASE_SIZE[0]))
    assert ImageChops.subtract(open_mask(result), near).getbbox() is None


@pytest.mark.parametrize(
    ("quality", "scale"), [(70, 0.32), (75, 1.0), (85, 1.25)], ids=["small", "same", "larger"]
)
def test_an_unpainted_copy_is_unchanged_not_specks(
    base: Image.Image, base_raw: bytes, quality: int, scale: float
) -> None:
    with pytest.raises(ImageError) as caught:
        painted_mask(base_raw, jpeg(base, quality, scale))
    assert caught.value.key == "painted_unchanged"


def test_dots_too_small_to_be_strokes_are_dropped(base: Image.Image, base_raw: bytes) -> None:
    copy = base.copy()
    draw = ImageDraw.Draw(copy)
    for x in range(100, 1500, 120):
        draw.rectangle((x, 600, x + 3, 603), fill=(255, 255, 255))
    with pytest.raises(ImageError) as caught:
        painted_mask(base_raw, jpeg(copy, 80))
    assert caught.value.key == "painted_unchanged"


@pytest.mark.parametrize(("seed", "palette"), [(6, 0), (7, 1), (8, 2)])
def test_another_photo_is_not_a_copy(base_raw: bytes, seed: int, palette: int) -> None:
    # Seed 6 keeps the base's colours and light, only its shapes and grain differ.
    other = photo((1024, 768), seed=seed, palette=palette)
    assert painted_mask(base_raw, jpeg(other, 80)) is None


def test_a_faint_other_photo_is_not_a_copy_but_a_faint_painted_one_is() -> None:
    # Two hazy photos differ by less than a stroke almost everywhere, but not by JPEG noise.
    grey = Image.new("RGB", (1024, 768), (128, 128, 128))
    hazy = Image.blend(photo((1024, 768), seed=41), grey, 0.8)
    other = Image.blend(photo((1024, 768), seed=42, palette=1), grey, 0.8)
    assert painted_mask(jpeg(hazy, 92), jpeg(other, 80)) is None
    painted = paint(hazy, seed=43)
    result = painted_mask(jpeg(hazy, 92), jpeg(painted.copy, 80))
    assert result is not None
    assert iou(open_mask(result), painted.truth) >= 0.8


@pytest.mark.parametrize(
    "crop",
    [(0, 0, 1600, 900), (0, 0, 1200, 1200), (0, 0, 1520, 1200)],
    ids=["16:9", "square", "5-percent-narrower"],
)
def test_another_shape_is_not_a_copy(
    base_raw: bytes, painted: Painted, crop: tuple[int, int, int, int]
) -> None:
    copy = painted.copy.crop(crop)
    assert painted_mask(base_raw, jpeg(copy, 80, 0.64)) is None


def test_turned_copy_is_not_a_copy(base_raw: bytes, painted: Painted) -> None:
    copy = painted.copy.transpose(Image.Transpose.ROTATE_90)
    assert painted_mask(base_raw, jpeg(copy, 80, 0.64)) is None


def test_rounded_resize_still_matches(base_raw: bytes, painted: Painted) -> None:
    # One pixel off the exact shape, as someone's resize rounds: 1281x960 for 4:3.
    copy = painted.copy.resize((1281, 960), Image.Resampling.BILINEAR)
    result = painted_mask(base_raw, jpeg(copy))
    assert result is not None
    assert iou(open_mask(result), painted.truth) >= 0.8


def test_exif_rotated_base_gives_a_mask_as_shown() -> None:
    upright = photo((900, 1200), seed=11)  # portrait, as the phone shows it
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to show": the stored pixels lie on their side
    base_raw = jpeg(upright.transpose(Image.Transpose.ROTATE_90), 92, exif=exif.tobytes())
    painted = paint(upright, seed=12)
    result = painted_mask(base_raw, jpeg(painted.copy, 75, 1280 / 1200))
    assert result is not None
    mask = open_mask(result)
    assert mask.size == (900, 1200)
    assert iou(mask, painted.truth) >= 0.8


def test_small_original_and_larger_painted_png() -> None:
    small = photo((640, 480), seed=21)
    painted = paint(small, seed=22)
    buffer = io.BytesIO()
    larger = painted.copy.resize((960, 720), Image.Resampling.LANCZOS)
    larger.save(buffer, "PNG", compress_level=1)
    result = painted_mask(jpeg(small, 85), buffer.getvalue())
    assert result is not None
    mask = open_mask(result)
    assert mask.size == (640, 480)
    assert iou(mask, painted.truth) >= 0.8


def test_not_an_image_is_refused(base_raw: bytes) -> None:
    with pytest.raises(ImageError) as caught:
        painted_mask(base_raw, b"this is text, not a picture")
    assert caught.value.key == "image_not_image"


async def test_painted_mask_async(base_raw: bytes, painted: Painted) -> None:
    result = await painted_mask_async(base_raw, jpeg(painted.copy, 75, 0.32))
    assert result is not None
    assert iou(open_mask(result), painted.truth) >= 0.8


@pytest.mark.parametrize("radius", [1, 4, 10, 13])
def test_box_blur_morphology_grows_and_shrinks_by_exact_squares(radius: int) -> None:
    # bot.masks relies on how Pillow rounds a box blur; a change there must show here.
    side = 2 * radius + 1
    dot = Image.new("L", (64, 64), 0)
    dot.putpixel((32, 32), 255)
    grown = _dilate(dot, radius)
    assert grown.getbbox() == (32 - radius, 32 - radius, 33 + radius, 33 + radius)
    assert white(grown) == side * side
    hole = Image.new("L", (64, 64), 255)
    hole.putpixel((32, 32), 0)
    assert 64 * 64 - white(_erode(hole, radius)) == side * side


# --- box_mask ------------------------------------------------------------------------------------


def test_one_box_covers_its_pixels_exactly() -> None:
    mask = open_mask(box_mask((200, 100), [Box(10, 20, 50, 60)]))
    assert mask.size == (200, 100)
    assert mask.getbbox() == (20, 20, 100, 60)
    assert white(mask) == 80 * 40


def test_several_and_overlapping_boxes_are_their_union() -> None:
    boxes = [Box(0, 0, 10, 10), Box(5, 5, 20, 20), Box(80, 50, 90, 100)]
    mask = open_mask(box_mask((100, 100), boxes))
    # 10x10 and 15x15 overlapping by 5x5, and a separate 10x50.
    assert white(mask) == 100 + 225 - 25 + 500
    assert mask.getpixel((85, 99)) == 255
    assert mask.getpixel((50, 50)) == 0


def test_the_whole_picture_is_all_white() -> None:
    mask = open_mask(box_mask((333, 211), [Box(0, 0, 100, 100)]))
    assert mask.size == (333, 211)
    assert white(mask) == 333 * 211


def test_edges_round_outward() -> None:
    # 10.5% of 100 px starts inside pixel 10; 20.2% ends inside pixel 20: both are covered.
    mask = open_mask(box_mask((100, 100), [Box(10.5, 10.5, 20.2, 20.2)]))
    assert mask.getbbox() == (10, 10, 21, 21)
    # On a pixel boundary nothing is added (float noise in 33.3% of 1000 included).
    assert open_mask(box_mask((1000, 10), [Box(0, 0, 33.3, 100)])).getbbox() == (0, 0, 333, 10)


@pytest.mark.parametrize(
    "box", [Box(50, 50, 50.01, 50.01), Box(99.999, 99.999, 100, 100), Box(0, 0, 1e-6, 1e-6)]
)
def test_a_tiny_box_still_covers_a_pixel(box: Box) -> None:
    mask = open_mask(box_mask((300, 200), [box]))
    assert mask.size == (300, 200)
    assert 1 <= white(mask) <= 4


@pytest.mark.parametrize(
    "corners",
    [(10, 10, 10, 20), (20, 10, 10, 20), (-1, 0, 10, 10), (0, 0, 100.5, 10), (0, 0, math.nan, 1)],
)
def test_a_box_must_have_ordered_corners_within_the_picture(
    corners: tuple[float, float, float, float],
) -> None:
    with pytest.raises(ValueError, match="box needs"):
        Box(*corners)


def test_box_mask_needs_a_box_and_a_size() -> None:
    with pytest.raises(ValueError):
        box_mask((100, 100), [])
    with pytest.raises(ValueError):
        box_mask((0, 100), [Box(0, 0, 50, 50)])


async def test_box_mask_async() -> None:
    mask = open_mask(await box_mask_async((64, 48), [Box(0, 0, 50, 50)]))
    assert mask.getbbox() == (0, 0, 32, 24)


# --- tinted_preview ------------------------------------------------------------------------------


def test_preview_tints_the_mask_and_leaves_the_rest(base: Image.Image, base_raw: bytes) -> None:
    mask_png = box_mask(BASE_SIZE, [Box(10, 10, 40, 40)])
    raw = tinted_preview(base_raw, mask_png)
    assert raw.startswith(b"\xff\xd8\xff")
    preview = Image.open(io.BytesIO(raw))
    assert preview.format == "JPEG"
    assert preview.size == (1280, 960)  # from 1600x1200
    shown = base.resize(preview.size, Image.Resampling.BILINEAR)
    inside = (round(0.15 * 1280), round(0.15 * 960), round(0.35 * 1280), round(0.35 * 960))
    outside = (round(0.55 * 1280), round(0.55 * 960), round(0.95 * 1280), round(0.95 * 960))
    before = ImageStat.Stat(shown.crop(inside)).mean
    after = ImageStat.Stat(preview.crop(inside)).mean
    # Half way to pure red: redder than it was, whatever it was.
    assert after[0] - (after[1] + after[2]) / 2 > before[0] - (before[1] + before[2]) / 2 + 40
    expected = [(b + t) / 2 for b, t in zip(before, (255, 0, 0), strict=True)]
    assert all(abs(a - e) < 4 for a, e in zip(after, expected, strict=True))
    # Outside, the same picture: the same colours, and no edge drawn (grain aside).
    unchanged = zip(ImageStat.Stat(preview.crop(outside)).mean,
                    ImageStat.Stat(shown.crop(outside)).mean, strict=True)
    assert all(abs(a - b) < 2 for a, b in unchanged)
    smooth = ImageFilter.GaussianBlur(3)
    difference = ImageChops.difference(preview.crop(outside).filter(smooth),
                                       shown.crop(outside).filter(smooth))
    assert max(ImageStat.Stat(difference).extrema, key=lambda e: e[1])[1] < 16


def test_preview_keeps_a_small_photo_small() -> None:
    small = photo((640, 480), seed=31)
    raw = tinted_preview(jpeg(small, 90), box_mask((640, 480), [Box(0, 0, 100, 100)]))
    preview = Image.open(io.BytesIO(raw))
    assert preview.size == (640, 480)
    # All of it is tinted: red leads everywhere.
    red, green, blue = ImageStat.Stat(preview).mean
    assert red > green + 40 and red > blue + 40


async def test_preview_of_a_painted_mask(base_raw: bytes, painted: Painted) -> None:
    result = painted_mask(base_raw, jpeg(painted.copy, 75, 0.32))
    assert result is not None
    preview = Image.open(io.BytesIO(await tinted_preview_async(base_raw, result.png)))
    assert max(preview.size) == 1280
