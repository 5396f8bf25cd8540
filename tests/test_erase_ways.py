"""/erase's masks a person can make (issue 13): the photo painted over and sent back (previewed,
charged only after [Run]), and ``box=`` regions (run at once). The upload keeps working
(tests/test_erase_trap.py, tests/test_bot_flows.py); the Mini App has its own tests."""

from __future__ import annotations

import base64
import io
import random
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from bot.commands import parse_command
from bot.errors import BoxParseError
from bot.masks import Box
from bot.texts import render_error
from tests.harness import Harness

pytestmark = pytest.mark.slow

BOT = "BailianTestBot"
# Strokes, in fractions of the picture: a thick scribble over the upper-left object.
STROKES = (((0.15, 0.2), (0.35, 0.25), (0.3, 0.4)),)
STROKE_WIDTH = 0.05


def photo(width: int = 800, height: int = 600, seed: int = 7) -> Image.Image:
    """Something with a photo's variety: a gradient, shapes and fine noise."""
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.ellipse((x, y, x + rng.randrange(40, 200), y + rng.randrange(40, 200)),
                     fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    noise = Image.effect_noise((width, height), 12).convert("RGB")
    return ImageChops.add(image, noise, scale=2.0).filter(ImageFilter.SMOOTH)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def painted(base: Image.Image, scale: float = 0.5) -> tuple[bytes, Image.Image]:
    """The copy Telegram's editor sends (strokes, resized, JPEG again) and the true stroke
    region at the base's size."""
    width, height = base.size
    copy = base.copy()
    truth = Image.new("L", base.size, 0)
    for stroke in STROKES:
        points = [(x * width, y * height) for x, y in stroke]
        for canvas, colour in ((ImageDraw.Draw(copy), (230, 30, 30)),
                               (ImageDraw.Draw(truth), 255)):
            canvas.line(points, fill=colour, width=round(STROKE_WIDTH * width), joint="curve")
    resized = copy.resize((round(width * scale), round(height * scale)))
    return jpeg(resized, quality=75), truth


def sent_mask(harness: Harness) -> Image.Image:
    [body] = [r.body for r in harness.emulator.requests_to("submit") if r.body is not None]
    assert body["input"]["function"] == "description_edit_with_mask"
    uri = body["input"]["mask_image_url"]
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("L")


def overlap(mask: Image.Image, truth: Image.Image) -> float:
    """Intersection over union of two black-and-white images of one size."""
    mask = mask.resize(truth.size)
    a = [p >= 128 for p in mask.tobytes()]
    b = [p >= 128 for p in truth.tobytes()]
    union = sum(x or y for x, y in zip(a, b, strict=True))
    return sum(x and y for x, y in zip(a, b, strict=True)) / union


async def used(harness: Harness, user_id: int = 1) -> tuple[int, int]:
    status = await harness.services.store.quota_status(user_id)
    return status.used, status.reserved


async def erase_and_paint(
    harness: Harness, *, lang: str = "en", group: bool = False
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Image.Image, Any]:
    """/erase on a photo, then the same photo painted over: (chat, request, painted message,
    true stroke region, the preview call)."""
    tg = harness.telegram
    alice = harness.user(1, language_code=lang)
    chat = tg.group_chat(-100) if group else tg.private_chat(alice)
    base = photo()
    command = f"/erase@{BOT} a vase" if group else "/erase a vase"
    request = tg.send_photo(alice, chat, jpeg(base), command)
    prompt = await harness.reply_to(request)
    copy, truth = painted(base)
    reply_to = tg.bot_message(chat["id"], prompt.result["message_id"]) if group else None
    message = tg.send_photo(alice, chat, copy, None, reply_to=reply_to)
    preview = await harness.reply_to(message, "sendPhoto")
    return chat, request, message, truth, preview


def buttons(call: Any) -> list[tuple[str, str]]:
    [row] = call.params["reply_markup"]["inline_keyboard"]
    return [(b["text"], b["callback_data"]) for b in row]


async def test_the_prompt_explains_painting_first(harness: Harness) -> None:
    tg = harness.telegram
    for user_id, lang, words in ((1, "en", "brush"), (2, "zh", "画笔")):
        user = harness.user(user_id, language_code=lang)
        chat = tg.private_chat(user)
        request = tg.send_photo(user, chat, jpeg(photo()), "/erase")
        prompt = (await harness.reply_to(request)).params["text"]
        assert words in prompt
        assert prompt.index(words) < prompt.index("box=")  # painting comes first


async def test_a_painted_copy_is_previewed_then_run_with_its_strokes(harness: Harness) -> None:
    tg = harness.telegram
    chat, request, message, truth, preview = await erase_and_paint(harness)
    assert "will be repainted" in preview.params["caption"]
    labels = [label for label, _ in buttons(preview)]
    assert labels == ["▶️ Run", "↩️ Redo", "✖ Cancel"]
    tinted = Image.open(io.BytesIO(tg.file_bytes(preview.result["photo"][-1]["file_id"])))
    assert tinted.format == "JPEG"
    # Nothing ran and nothing was reserved before [Run].
    assert not harness.emulator.requests_to("submit")
    assert await used(harness) == (0, 0)

    run = buttons(preview)[0][1]
    tg.press_button(harness.users[1], tg.bot_message(chat["id"], preview.result["message_id"]),
                    run)
    result = await harness.reply_to(request, "sendPhoto")
    assert "Masked repaint" in result.params["caption"]
    assert overlap(sent_mask(harness), truth) >= 0.6
    await harness.settled()
    assert await used(harness) == (1, 0)
    # The buttons are gone, and a second press of the old one does nothing more.
    assert "reply_markup" not in tg.bot_message(chat["id"], preview.result["message_id"])
    tg.press_button(harness.users[1], tg.bot_message(chat["id"], preview.result["message_id"]),
                    run)
    again = await tg.wait_for_call("answerCallbackQuery", lambda c: "text" in c.params
                                   and "no longer current" in c.params["text"])
    assert again.params["show_alert"]
    await harness.settled()
    assert len(harness.emulator.requests_to("submit")) == 1
    assert await used(harness) == (1, 0)
    assert message["message_id"] != request["message_id"]
    # The photo was fetched once, though /erase, the painted copy and the job each needed it.
    base_file = request["photo"][-1]["file_id"]
    assert sum(c.params["file_id"] == base_file for c in tg.calls_to("getFile")) == 1


async def test_redo_waits_for_another_copy_and_the_old_preview_is_dead(harness: Harness) -> None:
    tg = harness.telegram
    chat, _, message, _, preview = await erase_and_paint(harness, lang="zh")
    redo = buttons(preview)[1][1]
    tg.press_button(harness.users[1], tg.bot_message(chat["id"], preview.result["message_id"]),
                    redo)
    answer = await harness.reply_to(message)
    assert "重新涂抹" in answer.params["text"]
    wait = await harness.services.conversations.mask_wait(chat["id"], 1)
    assert wait is not None and wait.candidate is None
    # Run under the old preview: nothing.
    run = buttons(preview)[0][1]
    tg.press_button(harness.users[1], tg.bot_message(chat["id"], preview.result["message_id"]),
                    run)
    gone = await tg.wait_for_call("answerCallbackQuery", lambda c: "text" in c.params)
    assert "预览已失效" in gone.params["text"]
    assert not harness.emulator.requests_to("submit")
    assert await used(harness) == (0, 0)


async def test_cancel_under_the_preview_ends_the_wait_and_costs_nothing(
    harness: Harness,
) -> None:
    tg = harness.telegram
    chat, _, message, _, preview = await erase_and_paint(harness)
    cancel = buttons(preview)[2][1]
    tg.press_button(harness.users[1], tg.bot_message(chat["id"], preview.result["message_id"]),
                    cancel)
    answer = await harness.reply_to(message)
    assert "Cancelled" in answer.params["text"]
    assert await harness.services.conversations.mask_wait(chat["id"], 1) is None
    assert not harness.emulator.requests_to("submit")
    assert await used(harness) == (0, 0)


async def test_the_same_photo_unpainted_is_refused_and_the_wait_stays(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    base = photo()
    request = tg.send_photo(alice, chat, jpeg(base), "/erase")
    await harness.reply_to(request)
    again = tg.send_photo(alice, chat, jpeg(base.resize((400, 300)), quality=70))
    answer = await harness.reply_to(again)
    assert "no strokes" in answer.params["text"]
    assert await harness.services.conversations.mask_wait(chat["id"], 1) is not None
    assert await used(harness) == (0, 0)


async def test_in_a_group_only_the_painter_may_run_the_preview(harness: Harness) -> None:
    tg = harness.telegram
    chat, request, _, truth, preview = await erase_and_paint(harness, group=True)
    bob = harness.user(2, "Bob")
    run = buttons(preview)[0][1]
    message = tg.bot_message(chat["id"], preview.result["message_id"])
    tg.press_button(bob, message, run)
    refused = await tg.wait_for_call("answerCallbackQuery", lambda c: "text" in c.params)
    assert "someone else" in refused.params["text"]
    assert await used(harness) == (0, 0)
    tg.press_button(harness.users[1], message, run)
    await harness.reply_to(request, "sendPhoto")
    assert overlap(sent_mask(harness), truth) >= 0.6


async def test_box_runs_at_once_with_the_boxes_as_mask(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, jpeg(photo(800, 600)),
                            "/erase box=10,20,60,80 box=70,0,100,10 a vase")
    await harness.reply_to(request, "sendPhoto")
    mask = sent_mask(harness)
    assert not [c for c in tg.calls_to("sendMessage") if "mask" in c.params.get("text", "")]
    truth = Image.new("L", mask.size, 0)
    width, height = mask.size
    for x1, y1, x2, y2 in ((10, 20, 60, 80), (70, 0, 100, 10)):
        truth.paste(255, (round(x1 * width / 100), round(y1 * height / 100),
                          round(x2 * width / 100), round(y2 * height / 100)))
    assert overlap(mask, truth) >= 0.98
    [body] = [r.body for r in harness.emulator.requests_to("submit") if r.body is not None]
    assert body["input"]["prompt"] == "a vase"
    await harness.settled()
    assert await used(harness) == (1, 0)


@pytest.mark.parametrize(("caption", "lang", "expected"), [
    ("/erase box=60,20,10,80 a vase", "en", "left < right"),
    ("/erase box=10,20,60 a vase", "en", "four numbers"),
    ("/erase box=10,20,60,180", "zh", "0 到 100"),
    ("/erase " + " ".join(["box=1,1,2,2"] * 9), "en", "At most 8"),
])
async def test_bad_boxes_are_explained_with_an_example_and_cost_nothing(
    harness: Harness, caption: str, lang: str, expected: str
) -> None:
    tg = harness.telegram
    alice = harness.user(1, language_code=lang)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, jpeg(photo()), caption)
    answer = (await harness.reply_to(request)).result["text"]  # as Telegram shows it
    assert expected in answer
    assert "box=10,20,60,80" in answer  # the example that works
    assert not harness.emulator.requests
    assert await used(harness) == (0, 0)


def test_boxes_parse_in_order_with_aliases_and_full_width_commas() -> None:
    parsed = parse_command("/erase 框=10，20，60，80 box=0,0,100,100 a vase", BOT)
    assert parsed is not None
    assert parsed.boxes == (Box(10, 20, 60, 80), Box(0, 0, 100, 100))
    assert parsed.prompt == "a vase"
    assert type(parsed).from_json(parsed.to_json()) == parsed
    with pytest.raises(BoxParseError) as caught:
        parse_command("/erase box=a,b,c,d", BOT)
    assert "“a,b,c,d”" in render_error(caught.value, "en")
