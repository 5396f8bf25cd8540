"""The whole bot over real sockets: fake Bot API <-> Application <-> DashScope emulator, SQLite."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from PIL import Image

from tests.harness import ADMIN_ID, API_KEY, Harness, make_image, make_mask, replied_to, wait_until

pytestmark = pytest.mark.slow


def emulator_bodies(harness: Harness, endpoint: str) -> list[dict[str, Any]]:
    return [r.body for r in harness.emulator.requests_to(endpoint) if r.body is not None]


async def quota_used(harness: Harness, user_id: int) -> tuple[int, int]:
    status = await harness.services.store.quota_status(user_id)
    return status.used, status.reserved


async def test_start_welcomes_and_help_explains_in_the_users_language(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1, "Alice", language_code="en")
    li = harness.user(2, "李", language_code="zh-hans")
    start = tg.send_text(alice, tg.private_chat(alice), "/start")
    call = await harness.reply_to(start)
    assert "Send me a photo" in call.params["text"] and "/help" in call.params["text"]
    start_zh = tg.send_text(li, tg.private_chat(li), "/help")
    call = await harness.reply_to(start_zh)
    assert "蒙版" in call.params["text"]


async def test_command_menu_is_registered_in_both_languages(harness: Harness) -> None:
    zh = harness.telegram.commands(language_code="zh")
    en = harness.telegram.commands(language_code="en")
    default = harness.telegram.commands()
    assert {c["command"] for c in zh} >= {"edit", "erase", "upscale", "quota"}
    assert (
        [c["command"] for c in zh] == [c["command"] for c in en] == [c["command"] for c in default]
    )
    assert zh[0]["description"] != en[0]["description"]


async def test_edit_caption_delivers_a_photo_and_charges_one(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/edit make the sky red")
    status = await harness.reply_to(request)
    assert "Queued" in status.params["text"]
    sent = await harness.reply_to(request, "sendPhoto")
    assert "Edit" in sent.params["caption"] and "4 images left" in sent.params["caption"]
    markup = (
        json.loads(sent.params["reply_markup"])
        if isinstance(sent.params["reply_markup"], str)
        else sent.params["reply_markup"]
    )
    assert any(b["callback_data"].startswith("again:") for b in markup["inline_keyboard"][0])
    body = emulator_bodies(harness, "qwen")[0]
    content = body["input"]["messages"][0]["content"]
    assert {"text": "make the sky red"} in content
    image = next(part["image"] for part in content if "image" in part)
    assert image.startswith("data:image/")
    await harness.settled()
    assert await quota_used(harness, 1) == (1, 0)


COMMAND_CASES = [
    ("/style 转换成法国绘本风格 strength=0.7", "stylization_all", {"strength": 0.7}),
    ("/localstyle ice turn the house to ice", "stylization_local", {}),
    ("/instruct add a red hat strength=0.3", "description_edit", {"strength": 0.3}),
    ("/dewatermark", "remove_watermark", {}),
    (
        "/expand 1.5",
        "expand",
        {"top_scale": 1.5, "bottom_scale": 1.5, "left_scale": 1.5, "right_scale": 1.5},
    ),
    ("/expand left=1.2 right=1.4", "expand", {"left_scale": 1.2, "right_scale": 1.4}),
    ("/upscale 3", "super_resolution", {"upscale_factor": 3}),
    ("/colorize warm tones", "colorization", {}),
    ("/sketch a cabin sketch=yes", "doodle", {"is_sketch": True}),
    ("/cartoon the character waves seed=42 n=2", "control_cartoon_feature", {"seed": 42, "n": 2}),
]


@pytest.mark.parametrize(("caption", "function", "parameters"), COMMAND_CASES)
async def test_each_wanx_command_reaches_its_function(
    harness: Harness, caption: str, function: str, parameters: dict[str, Any]
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), caption)
    await harness.reply_to(request, "sendPhoto" if "n=2" not in caption else "sendMediaGroup")
    body = emulator_bodies(harness, "submit")[0]
    assert body["model"] == "wanx2.1-imageedit"
    assert body["input"]["function"] == function
    for key, value in parameters.items():
        assert body["parameters"][key] == pytest.approx(value)
    assert "seed" in body["parameters"]  # we choose one when the user did not
    await harness.settled()


async def test_group_reply_with_bot_name_and_upscale_also_sends_a_document(
    harness: Harness,
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    group = tg.group_chat(-100500, "Friends")
    photo = tg.send_photo(alice, group, make_image(600, 600))
    command = tg.send_text(alice, group, "/upscale@BailianTestBot 2", reply_to=photo)
    sent = await harness.reply_to(command, "sendPhoto")
    document = await harness.reply_to(command, "sendDocument")
    upload = document.files["document"].data
    assert Image.open(io.BytesIO(upload)).size == (1200, 1200)
    assert sent.params["chat_id"] in (group["id"], str(group["id"]))
    await harness.settled()


async def test_command_for_another_bot_is_ignored(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    group = tg.group_chat(-100501)
    request = tg.send_photo(alice, group, make_image(), "/edit@SomeOtherBot make it blue")
    probe = tg.send_text(alice, tg.private_chat(alice), "/quota")
    await harness.reply_to(probe)
    assert not [
        c
        for c in tg.calls
        if replied_to(c) == request["message_id"]
        and str(c.params.get("chat_id")) == str(group["id"])
    ]
    assert not harness.emulator.requests


async def test_image_sent_as_document_works(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_document(
        alice,
        tg.private_chat(alice),
        make_image(800, 600, fmt="PNG"),
        file_name="cat.png",
        mime_type="image/png",
        caption="/colorize",
    )
    await harness.reply_to(request, "sendPhoto")
    assert emulator_bodies(harness, "submit")[0]["input"]["function"] == "colorization"


async def test_erase_waits_for_the_requesters_mask_only(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1, "Alice")
    bob = harness.user(2, "Bob")
    group = tg.group_chat(-100600)
    request = tg.send_photo(alice, group, make_image(640, 480), "/erase@BailianTestBot")
    ask = await harness.reply_to(request)
    assert "mask" in ask.params["text"].lower()
    ask_message = tg.bot_message(group["id"], ask.result["message_id"])
    # Bob's image, even as a reply to the prompt, is not Alice's mask.
    tg.send_photo(bob, group, make_mask(640, 480), reply_to=ask_message)
    probe = tg.send_text(alice, tg.private_chat(alice), "/quota")
    await harness.reply_to(probe)
    assert not harness.emulator.requests_to("submit")
    mask = tg.send_photo(alice, group, make_mask(320, 240), reply_to=ask_message)
    sent = await harness.reply_to(request, "sendPhoto")
    body = emulator_bodies(harness, "submit")[0]
    assert body["input"]["function"] == "description_edit_with_mask"
    assert body["input"]["mask_image_url"].startswith("data:image/png;base64,")
    assert sent is not None and mask is not None
    await harness.settled()
    assert await quota_used(harness, 1) == (1, 0)


async def test_cancel_ends_the_mask_wait(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(), "/erase")
    await harness.reply_to(request)
    cancel = tg.send_text(alice, chat, "/cancel")
    answer = await harness.reply_to(cancel)
    assert "Cancelled" in answer.params["text"]
    later = tg.send_photo(alice, chat, make_mask(640, 480))
    keyboard = await harness.reply_to(later)  # now just a photo: the actions keyboard
    assert "What shall I do" in keyboard.params["text"]
    assert not harness.emulator.requests_to("submit")


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("/edit", "prompt"),
        ("/style 风格 n=9", "n"),
        ("/upscale 7", "upscale"),
        ("/expand ratio=16:0", "ratio"),
        ("/cartoon x strength=0.5", "strength"),
        ("/edit " + "长" * 801, "800"),
    ],
)
async def test_bad_commands_get_a_clear_message_and_cost_nothing(
    harness: Harness, caption: str, expected: str
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), caption)
    answer = await harness.reply_to(request)
    assert expected.lower() in answer.params["text"].lower()
    assert "example" in answer.params["text"].lower()
    assert not harness.emulator.requests
    assert await quota_used(harness, 1) == (0, 0)
    assert not tg.calls_to("getFile")


@pytest.mark.parametrize(
    ("data", "name", "mime"),
    [
        (b"%PDF-1.4 not an image at all", "doc.pdf", "application/pdf"),
        (make_image()[:200], "broken.jpg", "image/jpeg"),
        (b"", "empty.png", "image/png"),
    ],
)
async def test_bad_files_get_a_clear_message_and_cost_nothing(
    harness: Harness, data: bytes, name: str, mime: str
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_document(
        alice, tg.private_chat(alice), data, file_name=name, mime_type=mime, caption="/colorize"
    )
    answer = await harness.reply_to(request)
    assert re.search("image|picture", answer.params["text"], re.IGNORECASE)
    assert not harness.emulator.requests
    assert await quota_used(harness, 1) == (0, 0)


async def test_file_over_20_mb_is_refused(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_document(
        alice,
        tg.private_chat(alice),
        make_image(),
        file_name="big.jpg",
        mime_type="image/jpeg",
        caption="/colorize",
        file_size=25 * 1024 * 1024,
    )
    answer = await harness.reply_to(request)
    assert "20 MB" in answer.params["text"]
    assert not harness.emulator.requests


async def test_quota_exhaustion_is_refused_with_remaining(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    first = tg.send_photo(alice, chat, make_image(), "/colorize n=4")
    await harness.reply_to(first, "sendMediaGroup")
    await harness.settled()
    second = tg.send_photo(alice, chat, make_image(), "/colorize n=2")
    answer = await harness.reply_to(second)
    assert "1 left" in answer.params["text"]
    assert len(harness.emulator.requests_to("submit")) == 1
    assert await quota_used(harness, 1) == (4, 0)


async def test_failed_task_refunds_and_explains(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    harness.emulator.script_next_task("failed")
    tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
    failure = await tg.wait_for_call(
        "sendMessage", lambda c: "Nothing was charged" in c.params["text"]
    )
    assert "failed" in failure.params["text"]
    await harness.settled()
    assert await quota_used(harness, 1) == (0, 0)


async def test_content_refusal_is_explained(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    tg.send_photo(alice, tg.private_chat(alice), make_image(), "/edit BLOCKED-CONTENT please")
    await tg.wait_for_call(
        "sendMessage",
        lambda c: (
            "content check" in c.params["text"] and "Nothing was charged" in c.params["text"]
        ),
    )
    await harness.settled()
    assert await quota_used(harness, 1) == (0, 0)


async def test_partial_failure_charges_only_delivered_images(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    harness.emulator.script_next_task("partial", failed_images=1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize n=3")
    album = await harness.reply_to(request, "sendMediaGroup")
    assert (
        len(
            album.params["media"]
            if isinstance(album.params["media"], list)
            else json.loads(album.params["media"])
        )
        == 2
    )
    await harness.settled()
    assert await quota_used(harness, 1) == (2, 0)


async def test_large_result_is_sent_as_a_document(harness: Harness) -> None:
    """Too big for a photo: the original as a document, and a preview photo (issue 10 item 6:
    before, the document alone)."""
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(1300, 1300), "/upscale 4")
    document = await harness.reply_to(request, "sendDocument", timeout=30)
    size = Image.open(io.BytesIO(document.files["document"].data)).size
    assert size == (5200, 5200)
    [preview] = [c for c in tg.calls_to("sendPhoto") if replied_to(c) == request["message_id"]]
    assert max(Image.open(io.BytesIO(preview.files["photo"].data)).size) <= 2560
    await harness.settled()


async def test_admin_commands_work_for_admins_and_change_nothing_for_others(
    harness: Harness,
) -> None:
    tg = harness.telegram
    admin = harness.user(ADMIN_ID, "Root", username="root")
    alice = harness.user(1, "Alice", username="alice")
    admin_chat = tg.private_chat(admin)
    alice_chat = tg.private_chat(alice)
    hello = tg.send_text(alice, alice_chat, "/quota")
    await harness.reply_to(hello)

    refused = tg.send_text(alice, alice_chat, "/setquota @alice 100")
    answer = await harness.reply_to(refused)
    assert "Only admins" in answer.params["text"]
    assert (await harness.services.store.quota_status(1)).limit == 5

    for command, check in [
        ("/setquota @alice 12", "12"),
        ("/grant 1 3", "3"),
        ("/usage", "usage"),
        ("/queue", "queued"),
        ("/ban @ALICE", "banned"),
    ]:
        message = tg.send_text(admin, admin_chat, command)
        answer = await harness.reply_to(message)
        assert check in answer.params["text"].lower()
    status = await harness.services.store.quota_status(1)
    assert (status.limit, status.granted) == (12, 3)

    banned_request = tg.send_photo(alice, alice_chat, make_image(), "/colorize")
    answer = await harness.reply_to(banned_request)
    assert "blocked you" in answer.params["text"]
    assert not tg.calls_to("getFile")

    unban = tg.send_text(admin, admin_chat, "/unban 1")
    await harness.reply_to(unban)
    assert not (await harness.services.store.get_user(1)).banned  # type: ignore[union-attr]


async def test_again_button_runs_with_a_new_seed_and_refuses_others(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    bob = harness.user(2)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(), "/colorize")
    sent = await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    result_message = tg.bot_message(chat["id"], sent_message_id(sent))
    again = next(
        b["callback_data"]
        for b in markup_of(sent)["inline_keyboard"][0]
        if b["callback_data"].startswith("again:")
    )
    tg.press_button(bob, result_message, again)
    refusal = await tg.wait_for_call("answerCallbackQuery")
    assert "someone else" in refusal.params["text"]
    tg.press_button(alice, result_message, again)
    await wait_until(lambda: len(harness.emulator.requests_to("submit")) == 2)
    await harness.settled()
    seeds = [b["parameters"]["seed"] for b in emulator_bodies(harness, "submit")]
    assert seeds[0] != seeds[1]
    assert await quota_used(harness, 1) == (2, 0)


def markup_of(call: Any) -> dict[str, Any]:
    markup = call.params["reply_markup"]
    return json.loads(markup) if isinstance(markup, str) else markup


def sent_message_id(call: Any) -> int:
    return int(call.result["message_id"])


async def test_secrets_never_cross_over(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
    await harness.reply_to(request, "sendPhoto")
    await harness.settled()
    token = tg.token
    for record in harness.emulator.requests:
        assert token not in json.dumps(record.body or {})
        assert token not in json.dumps(record.headers)
        assert token not in record.path
    for raw in tg.requests_raw:
        assert API_KEY.encode() not in raw.body
        assert API_KEY not in json.dumps(dict(raw.headers))


# --- language and wording (issue 11) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("language_code", "example", "other"),
    [
        ("en", "/style turn it into a French picture book", "转换成法国绘本风格"),
        ("zh-hans", "/style 转换成法国绘本风格", "French picture book"),
    ],
)
async def test_the_example_beside_an_error_is_in_the_users_language(
    harness: Harness, language_code: str, example: str, other: str
) -> None:
    tg = harness.telegram
    alice = harness.user(1, language_code=language_code)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/style")
    answer = (await harness.reply_to(request)).params["text"]
    assert example in answer and other not in answer
    assert not harness.emulator.requests


async def test_a_chinese_users_failed_task_gets_chinese_advice_not_the_services_words(
    harness: Harness,
) -> None:
    tg = harness.telegram
    li = harness.user(2, "李", language_code="zh-hans")
    harness.emulator.script_next_task(
        "failed", code="InternalError.Algo", message="algorithm process error"
    )
    tg.send_photo(li, tg.private_chat(li), make_image(), "/colorize")
    failure = await tg.wait_for_call("sendMessage", lambda c: "未扣除额度" in c.params["text"])
    said = failure.params["text"]
    assert "请过一分钟再试" in said
    assert "algorithm" not in said and not re.search(r"[A-Za-z]{3,} [A-Za-z]{3,}", said)
    await harness.settled()
    job = await harness.services.store.get_job(1)  # the only job: the log keeps the words
    assert job.error_message is not None and "algorithm process error" in job.error_message


async def test_a_number_out_of_range_names_what_was_typed_and_the_range(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/upscale 9")
    answer = (await harness.reply_to(request)).params["text"]
    assert answer.startswith("/upscale takes 1–4 (you wrote 9)")
    assert "factor" not in answer
    assert not harness.emulator.requests


async def test_localstyle_names_an_unknown_style_then_the_picked_one(harness: Harness) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    chat = tg.private_chat(alice)
    request = tg.send_photo(alice, chat, make_image(), "/localstyle lego the cup")
    offer = await harness.reply_to(request)
    lines = offer.params["text"].split("\n")
    assert lines[0] == "“lego” is not one of the eight local styles."
    labels = {b["text"]: b["callback_data"] for row in markup_of(offer)["inline_keyboard"]
              for b in row}
    assert len(labels) == 8
    assert labels["Festive lantern"] == "pick:ls:lantern"
    assert labels["Blue-and-white porcelain"] == "pick:ls:porcelain"
    keyboard = tg.bot_message(chat["id"], offer.result["message_id"])
    tg.press_button(alice, keyboard, "pick:ls:ice")
    picked = await tg.wait_for_call(
        "editMessageText", lambda c: int(c.params["message_id"]) == offer.result["message_id"]
    )
    assert picked.params["text"] == "Local style: Ice"
    await wait_until(lambda: harness.emulator.requests_to("submit"))
    prompt = emulator_bodies(harness, "submit")[0]["input"]["prompt"]
    assert prompt == "turn the cup into ice style"
    await harness.settled()


async def test_captions_count_in_words_and_show_the_seed_only_in_private(
    harness: Harness,
) -> None:
    tg = harness.telegram
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize n=4 seed=7")
    album = await harness.reply_to(request, "sendMediaGroup")
    media = album.params["media"]
    media = json.loads(media) if isinstance(media, str) else media
    caption = media[0]["caption"]
    assert "seed 7" in caption and "1 image left this month" in caption
    await harness.settled()
    group = tg.group_chat(-100700, "Friends")
    bob = harness.user(2, "Bob")
    photo = tg.send_photo(bob, group, make_image())
    command = tg.send_text(bob, group, "/colorize@BailianTestBot seed=8", reply_to=photo)
    sent = await harness.reply_to(command, "sendPhoto")
    assert "seed" not in sent.params["caption"] and "8" not in sent.params["caption"]
    assert "4 images left this month" in sent.params["caption"]
    again = [b["text"] for b in markup_of(sent)["inline_keyboard"][0]]
    assert again[0] == "🔁 Again, new seed"
    await harness.settled()


async def test_an_edit_result_offers_again_without_a_new_seed(harness: Harness) -> None:
    tg = harness.telegram
    li = harness.user(2, "李", language_code="zh-hans")
    request = tg.send_photo(li, tg.private_chat(li), make_image(), "/edit 把天空变红")
    sent = await harness.reply_to(request, "sendPhoto")
    labels = [b["text"] for b in markup_of(sent)["inline_keyboard"][0]]
    assert labels[0] == "🔁 再来一次"
    assert "种子" not in sent.params["caption"]
    await harness.settled()
