"""Every catalogue entry: each language written in itself, and both filled by the same params."""

from __future__ import annotations

import re
import string

import pytest

from bot.errors import (
    BotError,
    BrokenResultError,
    InvalidRequestError,
    RequestValidationError,
    TaskFailedError,
)
from bot.offline.bot_api import format_text
from bot.texts import CATALOGUE, Lang, render_error, text

# Han ideographs, and the full-width punctuation and 、。 that only Chinese writing uses. Corner
# brackets 「」『』 are not in it: the English usage of /edit names them as quotes one may type.
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3001\u3002\uff01-\uff5e]")
# A language's own name is written in its own script, in either language ("/lang zh (中文)").
CJK_ALLOWED_IN_ENGLISH = ("中文",)

# Proper names and formats that stay English in Chinese text.
NAMES = ("Telegram", "DashScope", "Qwen", "Bailian", "English")
# What is not prose: <code>…</code>, tags, entities, {placeholders}, /commands, key=value.
NOT_PROSE = re.compile(
    r"<code>.*?</code>|<[^>]*>|&\w+;|\{[^{}]*\}|/[A-Za-z_]+(?:@\S*)?|[A-Za-z_]+[=＝]\S*",
    re.DOTALL,
)
# English words in a row: separated by spaces (or a comma and spaces) only.
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:,? +[A-Za-z][A-Za-z'’-]*){2,}")

KEYS = sorted(CATALOGUE)


def english_runs(zh: str) -> list[str]:
    """Runs of three or more English words in Chinese text, outside what is not prose."""
    prose = NOT_PROSE.sub(" ", zh)
    for name in NAMES:
        prose = prose.replace(name, " ")
    return ENGLISH_RUN.findall(prose)


def placeholders(template: str) -> set[str]:
    """The names of a template's fields (``{n:image|images}`` is field ``n``)."""
    return {
        re.split(r"[.\[]", field)[0]
        for _, field, _, _ in string.Formatter().parse(template)
        if field is not None
    }


@pytest.mark.parametrize("key", KEYS)
def test_english_has_no_chinese(key: str) -> None:
    en = CATALOGUE[key].en
    for allowed in CJK_ALLOWED_IN_ENGLISH:
        en = en.replace(allowed, "")
    assert not CJK.findall(en), f"{key}: Chinese in the English text: {CJK.findall(en)}"


@pytest.mark.parametrize("key", KEYS)
def test_chinese_has_no_untranslated_english(key: str) -> None:
    runs = english_runs(CATALOGUE[key].zh)
    assert not runs, f"{key}: English sentences in the Chinese text: {runs}"


@pytest.mark.parametrize("key", KEYS)
def test_both_languages_take_the_same_placeholders(key: str) -> None:
    zh, en = CATALOGUE[key].zh, CATALOGUE[key].en
    assert zh.strip() and en.strip(), key
    assert placeholders(zh) == placeholders(en), key


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("count", [1, 2])
def test_every_entry_renders(key: str, count: int) -> None:
    params = dict.fromkeys(placeholders(CATALOGUE[key].en), count)
    for lang in Lang:
        rendered = text(key, lang, **params)
        assert "image|images" not in rendered, (key, lang)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 images left"), (1, "1 image left"), (2, "2 images left"), (-1, "-1 image left")],
)
def test_english_counts_take_the_plural_they_need(count: int, expected: str) -> None:
    assert text("caption_remaining", Lang.EN, remaining=count).startswith(expected)
    assert text("caption_remaining", Lang.EN, remaining=str(count)).startswith(expected)
    assert text("caption_remaining", Lang.ZH, remaining=count) == f"本月剩余 {count} 张"


@pytest.mark.parametrize(
    ("zh", "runs"),
    [
        ("图像处理失败：algorithm process error", ["algorithm process error"]),
        ("请把 <code>/style turn it red</code> 写在说明里", []),
        ("用 /quota 查看，或者 n=2 seed=5 选项", []),
        ("通过 Telegram 发送给 DashScope 的 Qwen 模型", []),
        ("用法：/setquota &lt;用户&gt; &lt;张数|default&gt;", []),
        ("服务说 the input image is too small", ["the input image is too small"]),
    ],
)
def test_the_english_run_check_itself(zh: str, runs: list[str]) -> None:
    assert english_runs(zh) == runs


SIZE = "The size of the input image does not meet the requirements"


@pytest.mark.parametrize(
    ("error", "key", "service_words"),
    [
        (TaskFailedError("InternalError.Algo", "algorithm process error"), "fail_try_again",
         "algorithm"),
        (TaskFailedError("InternalError.Timeout", "timed out"), "fail_try_again", "timed"),
        (TaskFailedError("TaskFailed", "algorithm process error"), "fail_try_again",
         "algorithm"),
        (TaskFailedError("TaskFailed", "the size of input image is too small or to large"),
         "fail_image_size", "input image"),
        (InvalidRequestError("InvalidParameter", SIZE, status=400), "fail_image_size",
         "requirements"),
        (TaskFailedError("TaskFailed", "oss download error"), "fail_image_unreadable", "oss"),
        (TaskFailedError("TaskFailed", "read image error"), "fail_image_unreadable", "error"),
        (InvalidRequestError("InvalidURL", "url is invalid", status=400),
         "fail_image_unreadable", "invalid"),
        (TaskFailedError("Canceled", ""), "fail_task", "Canceled"),
        (TaskFailedError("NoImage", "the task produced no image"), "fail_task", "produced"),
        (InvalidRequestError("InvalidParameter", "Field required: input.prompt", status=400),
         "fail_invalid", "Field"),
        (BrokenResultError("BrokenResult", "the size of input image: cannot identify"),
         "fail_broken_result", "identify"),
        (RequestValidationError("prompt", "longer than 800 characters"), "fail_invalid",
         "longer"),
    ],
)
def test_service_errors_are_told_as_advice_not_in_the_services_words(
    error: BotError, key: str, service_words: str
) -> None:
    assert error.key == key
    for lang in Lang:
        rendered = render_error(error, lang)
        assert rendered == text(key, lang)
        assert service_words not in rendered
    assert service_words in str(error)  # what the log and the job's error_message keep


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("lang", list(Lang))
def test_every_text_is_html_telegram_accepts(key: str, lang: Lang) -> None:
    """Messages go out in HTML parse mode: a bare ``<`` or an unknown tag would make Telegram
    refuse the whole message ("can't parse entities"), so each text is parsed as the Bot API
    does (by the local Bot API's parser) with every placeholder filled."""
    template = getattr(CATALOGUE[key], lang.value)
    rendered = text(key, lang, **dict.fromkeys(placeholders(template), 1))
    format_text(rendered, "HTML", None)  # raises BotApiError as Telegram answers 400
